"""The loop engine over several devices and processes against one device in one process.

With the same global envs and seed, a run split over two devices of one process, or over two
processes (jax.distributed on localhost, gloo, one CPU device each), counts the same episodes at
the same env steps and ends with the same parameters up to the float reassociation of the
gradient all-reduce; the processes hold bitwise the same parameters. This rests on each env's
action depending on its global index and the step key only, not on the batch it is sampled in
(tested here directly too).

The device count and the distributed runtime are fixed when JAX starts, so the runs over two
devices or two processes are Python subprocesses that write their figures and parameters.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium
import jax
import numpy as np
import pytest

from a2c_jax.training import Trainer, build_functions, preset
from a2c_jax.training._trainer import sample_per_env

# (env, algo, config changes, env steps, reward threshold): a low threshold on CartPole, so that
# solved_at_step is reached (at the same step) during a short run; Pendulum has Box actions
RUNS = [
    ("CartPole-v1", "a2c", {}, 4000, 26.5),
    ("CartPole-v1", "ppo", {"n_steps": 8, "batch_size": 16, "n_epochs": 2}, 640, None),
    ("Pendulum-v1", "a2c", {}, 1000, None),   # 4 episodes of 200 steps
]

# trains RUNS in order; argv: out folder, processes, process id, port, devices ("default": one
# per process, or "all" of this process's), the tests' folder
SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    out, n, pid, port, which = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    if n > 1:
        from a2c_jax.training._distributed import initialize
        initialize(f"127.0.0.1:{port}", n, pid)
    import jax
    sys.path.insert(0, sys.argv[6])
    from test_loop_multiprocess import RUNS, figures, train
    devices = None if which == "default" else jax.devices()
    results = []
    for i, run in enumerate(RUNS):
        trainer, params = train(*run, devices=devices)
        np.savez(f"{out}/params-{which}-{pid}-{i}.npz", *params)
        results.append(figures(trainer))
        trainer.close()
    if which == "all" and n == 1:
        from a2c_jax.training import preset, Trainer
        try:
            Trainer("CartPole-v1", preset("CartPole-v1", "a2c").replace(num_envs=3),
                    devices=jax.devices())
        except ValueError as err:
            results.append(str(err))
    with open(f"{out}/figures-{which}-{pid}.json", "w") as f:
        json.dump(results, f)
""")


def train(env_id: str, algo: str, changes: dict, steps: int, threshold: float | None,
          devices: list | None = None) -> tuple[Trainer, list[np.ndarray]]:
    """One short run of 4 global envs, seed 1; the trainer and its parameters' leaves."""
    config = preset(env_id, algo).replace(num_envs=4, hidden=(16,), **changes)
    trainer = Trainer(env_id, config, seed=1, devices=devices)
    if threshold is not None:
        trainer.reward_threshold = threshold
    trainer.run(steps, progress=False)
    return trainer, [np.asarray(x) for x in jax.tree.leaves(trainer.params())]


def figures(trainer: Trainer) -> dict:
    """The learning figures every process must agree on (the losses only up to float
    reassociation, so not those), and where the run's envs and parameters were, as JSON."""
    s = trainer.summary()
    curves = trainer.curves()
    return json.loads(json.dumps({
        "returns": trainer.returns, "ends": trainer.ends, "recent": list(trainer.recent),
        "env_steps": trainer.env_steps, "updates": trainer.updates,
        "solved_at_step": trainer.solved_at_step, "episodes": s["episodes"],
        "final_mean_return": s["final_mean_return"],
        "mean100": curves["mean100"].tolist(), "curve_episodes": curves["episodes"].tolist(),
        "devices": len(trainer.devices), "processes": jax.process_count(),
        "sharded_over": len(jax.tree.leaves(trainer.state.pi_params)[0].sharding.device_set),
        "slice": [trainer.env_slice.start, trainer.env_slice.stop],
        "local_envs": len(trainer.ep_return)}))


@pytest.fixture(scope="module")
def one_device() -> list[tuple[dict, list[np.ndarray]]]:
    """RUNS in this process, on its one device: the reference."""
    out = []
    for run in RUNS:
        trainer, params = train(*run)
        out.append((figures(trainer), params))
        trainer.close()
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(out: Path, processes: int, which: str, devices: int = 1) -> list[tuple[list, list]]:
    """SCRIPT as ``processes`` processes with ``devices`` CPU devices each; per process, its
    figures (one dict per run of RUNS) and its parameters (one list of leaves per run)."""
    out.mkdir()
    script = out / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, str(script), str(out), str(processes), str(i),
                               port, which, str(Path(__file__).parent)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(processes)]
    try:
        logs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    results = []
    for i in range(processes):
        figs = json.loads((out / f"figures-{which}-{i}.json").read_text())
        params = []
        for r in range(len(RUNS)):
            with np.load(out / f"params-{which}-{i}-{r}.npz") as z:
                params.append([z[k] for k in sorted(z.files, key=lambda s: int(s[4:]))])
        results.append((figs, params))
    return results


def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert [x.shape for x in a] == [x.shape for x in b]
    return max(float(np.max(np.abs(x.astype(np.float64) - y))) for x, y in zip(a, b))


KEYS = ("returns", "ends", "recent", "env_steps", "updates", "solved_at_step", "episodes",
        "final_mean_return", "mean100", "curve_episodes")
RETURNS = ("returns", "recent", "final_mean_return", "mean100")


def assert_same_figures(a: dict, b: dict, run: tuple) -> None:
    """Equal figures. With Box actions (Pendulum) the actions follow the parameters' last bits,
    so the returns agree only up to float rounding (the same episodes at the same steps)."""
    if run[0] == "CartPole-v1":
        assert {k: a[k] for k in KEYS} == {k: b[k] for k in KEYS}, run
        return
    assert ({k: a[k] for k in KEYS if k not in RETURNS}
            == {k: b[k] for k in KEYS if k not in RETURNS}), run
    for k in RETURNS:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6, err_msg=f"{run}: {k}")


@pytest.mark.slow
def test_two_devices_of_one_process_match_one_device(tmp_path, one_device):
    """One process, 4 envs split over 2 devices (the state replicated, the rollout sharded by
    env) vs a process with 1 device: the same episodes, parameters equal up to the
    reassociation of the gradient sum. 3 envs cannot be split over 2 devices."""
    ((figs, params),) = _run(tmp_path / "two", 1, "all", devices=2)
    assert "multiple of the number of devices (2)" in figs.pop()
    diffs = []
    for r, (two, (one, one_params)) in enumerate(zip(figs, one_device)):
        assert two["devices"] == 2 and two["sharded_over"] == 2 and two["local_envs"] == 4
        assert one["devices"] == 1 and one["sharded_over"] == 1 and two["processes"] == 1
        assert_same_figures(two, one, RUNS[r])
        assert two["episodes"] > 0
        diffs.append(_max_diff(params[r], one_params))
    assert figs[0]["solved_at_step"] is not None   # the low threshold was reached
    print("max |two devices - one device| per run:", diffs)
    assert max(diffs) < 1e-5


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path, one_device):
    """Two processes (2 envs each, the default devices: one per process) vs one process with
    the same 4 global envs: the same episodes, steps and curves in both processes, the same
    parameters, bitwise, in both, and equal to one process's up to float reassociation."""
    (f0, p0), (f1, p1) = _run(tmp_path / "procs", 2, "default")
    ref, ref_params = [f for f, _ in one_device], [p for _, p in one_device]
    diffs = []
    for r in range(len(RUNS)):
        a, b, c = f0[r], f1[r], ref[r]
        assert a["processes"] == 2 and a["devices"] == 2 and c["devices"] == 1
        assert (a["slice"], b["slice"]) == ([0, 2], [2, 4])
        assert a["local_envs"] == b["local_envs"] == 2
        assert {k: a[k] for k in KEYS} == {k: b[k] for k in KEYS}   # every process: the same
        assert_same_figures(a, c, RUNS[r])
        assert all(np.array_equal(x, y) for x, y in zip(p0[r], p1[r]))
        diffs.append(_max_diff(p0[r], ref_params[r]))
    assert ref[0]["solved_at_step"] is not None
    print("max |two processes - one process| per run:", diffs)
    assert max(diffs) < 1e-5


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_an_envs_action_does_not_depend_on_its_batch(env_id):
    """Env k's action and log-probability come from its row and the key fold_in(step_key, k)
    alone: the same among 8 envs, among 4, or as the second half (envs 4..7) of another process,
    and equal to sampling that one row with that key."""
    env = gymnasium.make(env_id)
    config = preset(env_id, "a2c").replace(hidden=(16,))
    pi, _ = build_functions(env, config, seed=0)
    rng = np.random.default_rng(0)
    S = rng.uniform(-1, 1, size=(8, *env.observation_space.shape)).astype(np.float32)
    S[5] = S[6]   # the same observation: different envs still draw their own actions
    step_key = jax.random.PRNGKey(42)

    @jax.jit
    def sample(S, first):
        return sample_per_env(pi, pi.params, pi.function_state, step_key, S, first)

    A8, logP8 = (np.asarray(x) for x in sample(S, 0))
    A_lo, logP_lo = (np.asarray(x) for x in sample(S[:4], 0))
    A_hi, logP_hi = (np.asarray(x) for x in sample(S[4:], 4))
    np.testing.assert_array_equal(np.concatenate([A_lo, A_hi]), A8)
    np.testing.assert_allclose(np.concatenate([logP_lo, logP_hi]), logP8, rtol=1e-6, atol=1e-6)
    for k in range(8):
        a, logp = pi.sample_fn(pi.params, pi.function_state, jax.random.fold_in(step_key, k),
                               S[k:k + 1])
        # another compiled program: Box actions may differ in the last bit
        np.testing.assert_allclose(np.asarray(a)[0], A8[k], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(np.asarray(logp)[0], logP8[k], rtol=1e-6, atol=1e-6)
    if env_id == "Pendulum-v1":   # continuous: two envs with one observation, two actions
        assert not np.array_equal(A8[5], A8[6])
    env.close()


def test_the_trainers_act_samples_per_env():
    """The loop engine's compiled act: a trainer over 4 envs gives envs 0..3 the actions a trainer
    over 8 gives them, from the same parameters and act key."""
    config = preset("CartPole-v1", "a2c").replace(hidden=(16,))
    four = Trainer("CartPole-v1", config.replace(num_envs=4), seed=3)
    eight = Trainer("CartPole-v1", config.replace(num_envs=8), seed=3)
    S = np.random.default_rng(1).uniform(-0.2, 0.2, size=(8, 4)).astype(np.float32)
    key = jax.random.PRNGKey(7)
    st = eight.state
    packed8, next8 = eight._act(st.pi_params, st.pi_state, key, S)
    packed4, next4 = four._act(st.pi_params, st.pi_state, key, S[:4])
    np.testing.assert_array_equal(np.asarray(packed4)[:, 0], np.asarray(packed8)[:4, 0])
    np.testing.assert_array_equal(np.asarray(next4), np.asarray(next8))
    four.close()
    eight.close()
