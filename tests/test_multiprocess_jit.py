"""The jit engine over two processes (jax.distributed on localhost, gloo) against one process with
two devices and one process with one device: the same global envs and seed give the same
learning figures, and parameters equal up to the float reassociation of the gradient all-reduce.

Each configuration runs in its own Python process (the device count and the distributed runtime
are fixed when JAX starts), training a few updates and writing its parameters and summary."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    out, n, pid, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if n > 1:
        from a2c_jax.training._distributed import initialize
        initialize(f"127.0.0.1:{port}", n, pid)
    import jax
    from a2c_jax.training import JitTrainer, preset
    algo = sys.argv[5]
    changes = {"n_steps": 8, "batch_size": 16, "n_epochs": 2} if algo == "ppo" else {}
    config = preset("CartPole-v1", algo).replace(num_envs=4, hidden=(16,), **changes)
    jt = JitTrainer("CartPole-v1", config, seed=3)
    jt.run(20 * jt.steps_per_update, progress=False, chunks=2)
    s = jt.summary()
    leaves = [np.asarray(x.addressable_data(0)) for x in
              jax.tree.leaves((jt.state.pi_params, jt.state.v_params))]
    np.savez(f"{out}/params-{pid}.npz", *leaves)
    keep = ("env_steps", "updates", "episodes", "final_mean_return", "solved_at_step", "processes")
    curves = {k: v.tolist() for k, v in jt.curves().items() if k in ("mean100", "episodes")}
    with open(f"{out}/summary-{pid}.json", "w") as f:
        json.dump({**{k: s[k] for k in keep}, "devices": len(s["devices"]), "curves": curves}, f)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(tmp: Path, algo: str, processes: int = 1, devices: int = 1) -> list[tuple[dict, list]]:
    """Runs the script as ``processes`` processes (each with ``devices`` CPU devices); each one's
    ``(summary, parameter leaves)``."""
    tmp.mkdir()
    script = tmp / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp), str(processes), str(i), port,
                               algo], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for i in range(processes)]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    results = []
    for i in range(processes):
        summary = json.loads((tmp / f"summary-{i}.json").read_text())
        with np.load(tmp / f"params-{i}.npz") as z:
            results.append((summary, [z[k] for k in sorted(z.files, key=lambda s: int(s[4:]))]))
    return results


def _max_diff(a: list, b: list) -> float:
    assert [x.shape for x in a] == [x.shape for x in b]
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def _figures(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("devices", "processes")}


@pytest.mark.parametrize("algo", ["ppo"])   # shuffled minibatches; A2C: tests/test_multiprocess_cli.py
def test_two_processes_match_two_devices_and_one_device(tmp_path, algo):
    two_procs = _run(tmp_path / "procs", algo, processes=2)
    two_devs = _run(tmp_path / "devs", algo, devices=2)
    one = _run(tmp_path / "one", algo)
    (s0, p0), (s1, p1) = two_procs
    assert s0["processes"] == 2 and s0["devices"] == 2 and two_devs[0][0]["devices"] == 2
    # every process holds the same parameters, bitwise, and reports the same figures
    assert all(np.array_equal(x, y) for x, y in zip(p0, p1))
    assert s0 == s1
    # two processes run the same program as one process over two devices
    assert _figures(s0) == _figures(two_devs[0][0])
    assert _max_diff(p0, two_devs[0][1]) == 0.0
    # and one device: the same episodes; parameters up to the gradients' summation order
    assert _figures(s0) == _figures(one[0][0])
    assert _max_diff(p0, one[0][1]) < 1e-5
