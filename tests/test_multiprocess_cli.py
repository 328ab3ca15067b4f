"""`a2c-jax train` over several processes: the options' one-line errors, a mismatched or missing
process, and a process killed mid-run (the others stop within a bound, naming it)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cmd(tmp_path, port: int, n: int, i: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "a2c_jax", "train", "--env", "CartPole-v1", "--engine", "jit",
            "--algo", "ppo", "--num-envs", "4", "--no-progress", "--out", str(tmp_path / "run"),
            "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(n), "--process-id",
            str(i), *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "JAX_PLATFORMS": "cpu"}


def _error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("a2c-jax: error:")]
    assert len(lines) == 1, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize("args, says", [
    (["--num-processes", "2", "--process-id", "2", "--coordinator", "127.0.0.1:1234"],
     "--process-id must be between 0 and 1"),
    (["--num-processes", "0", "--process-id", "0", "--coordinator", "127.0.0.1:1234"],
     "--num-processes must be >= 1"),
    (["--num-processes", "2", "--process-id", "0", "--coordinator", "localhost"],
     "--coordinator must be HOST:PORT"),
    (["--num-processes", "2", "--process-id", "0"], "go together"),
    (["--num-processes", "2", "--process-id", "0", "--coordinator", "127.0.0.1:1234",
      "--devices", "1"], "--devices is for one process"),
])
def test_bad_options_one_line(tmp_path, args, says, capsys):
    # refused before the process joins anything: in this process
    from a2c_jax import cli

    status = cli.main(["train", "--env", "CartPole-v1", "--engine", "jit",
                       "--out", str(tmp_path / "run"), *args])
    assert status == 2
    assert says in _error_line(capsys.readouterr().err)


def test_unreachable_coordinator_and_missing_process(tmp_path):
    port = _free_port()
    t0 = time.monotonic()
    r = subprocess.run(_cmd(tmp_path, port, 2, 1, "--join-timeout", "3"), capture_output=True,
                       text=True, env=_env(), timeout=120)
    assert r.returncode == 2 and time.monotonic() - t0 < 60
    assert f"cannot reach the coordinator 127.0.0.1:{port} within 3 s" in _error_line(r.stderr)
    # process 0 alone waits for the other, then says so in one line
    r = subprocess.run(_cmd(tmp_path, port, 2, 0, "--join-timeout", "3"), capture_output=True,
                       text=True, env=_env(), timeout=120)
    assert r.returncode == 2
    assert "could not join the 2-process run within 3 s" in _error_line(r.stderr)


@pytest.mark.slow
def test_mismatched_settings_refused_in_every_process(tmp_path):
    port = _free_port()
    procs = [subprocess.Popen(_cmd(tmp_path, port, 2, 0, "--steps", "2048"),
                              stderr=subprocess.PIPE, text=True, env=_env()),
             subprocess.Popen(_cmd(tmp_path, port, 3, 1, "--steps", "2048"),
                              stderr=subprocess.PIPE, text=True, env=_env())]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 2
        assert "process 1 was started with other settings than process 0" in _error_line(err)


@pytest.mark.slow
def test_killed_process_stops_the_others_within_a_minute(tmp_path):
    port = _free_port()
    procs = [subprocess.Popen(_cmd(tmp_path, port, 2, i, "--steps", "50000000",
                                   "--checkpoint-every", "0", "--algo", "a2c"),
                              stderr=subprocess.PIPE, text=True, env=_env()) for i in range(2)]
    try:
        # training has begun once process 0 has created its TensorBoard files
        deadline = time.monotonic() + 120
        while not list((tmp_path / "run").glob("tensorboard/*/events*")):
            assert time.monotonic() < deadline and procs[0].poll() is None
            time.sleep(0.5)
        time.sleep(3)
        procs[1].kill()
        t0 = time.monotonic()
        _, err = procs[0].communicate(timeout=90)
        waited = time.monotonic() - t0
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert waited <= 60, waited
    assert procs[0].returncode == 1
    line = _error_line(err)
    assert "process 0 of 2 lost process 1" in line


def _two_processes(tmp_path, out: str, engine: str, steps: int, *extra: str) -> None:
    port = _free_port()
    cmd = [sys.executable, "-m", "a2c_jax", "train", "--env", "CartPole-v1", "--engine", engine,
           "--algo", "a2c", "--num-envs", "4", "--steps", str(steps), "--no-progress",
           "--checkpoint-every", "0", "--out", str(tmp_path / out),
           "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", *extra]
    procs = [subprocess.Popen(cmd + ["--process-id", str(i)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=_env()) for i in range(2)]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    for p, out_text in zip(procs, outs):
        assert p.returncode == 0, out_text[-3000:]


def _saved(run: Path) -> tuple[dict, list]:
    """The learning figures of ``run``'s summary and its checkpoint's arrays (read as one process
    reads any checkpoint)."""
    import json

    import jax

    from a2c_jax.utils._checkpoint import load_checkpoint

    summary = json.loads((run / "summary.json").read_text())
    figures = {k: summary[k] for k in ("env_steps", "updates", "episodes", "final_mean_return",
                                       "solved_at_step", "eval_mean_return", "processes")}
    st = load_checkpoint(run / "checkpoint")
    learner = st["state"] if st["engine"] == "jit" else st["learner"]
    return figures, jax.tree.leaves(learner)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["loop", "jit"])
def test_two_processes_checkpoint_together_and_resume_bitwise(tmp_path, engine):
    """Both processes save one checkpoint (process 0 writes it, with each process's envs);
    restarting both with --resume continues exactly as the run that was not stopped."""
    import numpy as np

    steps = 400   # 20 updates of 4 envs x 5 steps: whole jit-engine chunks either way
    _two_processes(tmp_path, "straight", engine, 2 * steps)
    _two_processes(tmp_path, "resumed", engine, steps)
    files = sorted(p.name for p in (tmp_path / "resumed" / "checkpoint").iterdir())
    if engine == "loop":
        assert {"envs.process-0.json", "envs.process-1.json"} <= set(files), files
    _two_processes(tmp_path, "resumed", engine, 2 * steps, "--resume")
    (f_straight, a_straight), (f_resumed, a_resumed) = (_saved(tmp_path / name)
                                                        for name in ("straight", "resumed"))
    assert f_straight["processes"] == 2
    assert f_resumed == f_straight
    assert len(a_resumed) == len(a_straight)
    assert all(np.array_equal(x, y) for x, y in zip(a_resumed, a_straight))
    if engine == "jit":
        return
    # one process evaluates and exports the run the two processes saved (its envs: reset)
    for args in (["eval", str(tmp_path / "resumed"), "--episodes", "2"],
                 ["export", str(tmp_path / "resumed"), "--out", str(tmp_path / "policy")]):
        r = subprocess.run([sys.executable, "-m", "a2c_jax", *args], capture_output=True,
                           text=True, env=_env(), timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "policy" / "manifest.json").is_file()
