"""Observation and reward normalisation, the slow part: the jitted engine's statistics against the
numpy references of tests/test_normalize.py on the engine's own raw transitions, its bitwise
resume and export, and both engines with their envs over two devices. Slow: every test compiles
an engine (the 2-device ones in a subprocess)."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from test_normalize import EPS, exact_stats, numpy_reward_normalizer

import a2c_jax
from a2c_jax.training._jit import JitTrainer
from a2c_jax.training._presets import TrainConfig

pytestmark = pytest.mark.slow

CONFIG = TrainConfig(num_envs=4, n_steps=50, hidden=(8,), normalize_obs=True,
                     normalize_reward=True, clip_obs=5.0, gamma=0.9)


@pytest.fixture(scope="module")
def trainer():
    return JitTrainer("Pendulum-v1", CONFIG, seed=0)


def test_the_updates_statistics_equal_the_numpy_reference_of_its_raw_transitions(trainer):
    """Two rollouts' updates (the engine's pure ``_update``); the raw transitions come from the
    same ``_env_step`` scan from the same state, so they are the ones the update saw."""
    tr = trainer
    st = jax.tree.map(lambda x: x[0], tr.state)
    hparams = tr._hparams()
    rollout = jax.jit(lambda s: jax.lax.scan(tr._env_step, s, None, length=CONFIG.n_steps))
    update = jax.jit(lambda s: tr._update(hparams, s, None)[0])
    S, R, done = [], [], []
    for _ in range(5):   # 250 steps per env: Pendulum's episodes (200 steps) end in between
        _, (S_t, _, _, R_t, term, trunc, _) = rollout(st)
        S.append(np.asarray(S_t)), R.append(np.asarray(R_t))
        done.append(np.asarray(term | trunc))
        st = update(st)
    S, R, done = np.concatenate(S), np.concatenate(R), np.concatenate(done)
    assert done.any()
    mean, var, count = exact_stats(S.reshape(-1, 3))
    obs = jax.device_get(st.obs_stats)
    np.testing.assert_allclose(obs.mean, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(obs.var, var, rtol=1e-4)
    np.testing.assert_allclose(obs.count, count, rtol=1e-6)
    (m, v, c, acc), _ = numpy_reward_normalizer(R.astype(np.float64), done, CONFIG.gamma, 10.0)
    ret = jax.device_get(st.ret_stats)
    np.testing.assert_allclose([ret.mean, ret.var, ret.count], [m, v, c], rtol=1e-5)
    np.testing.assert_allclose(st.ret_acc, acc, rtol=1e-5)
    # raw rewards make the episode returns
    np.testing.assert_allclose(jax.device_get(st.ring)[:4], R[:200].sum(axis=0), rtol=1e-5)


def test_resume_is_bitwise_and_the_exported_policy_applies_the_statistics(trainer, tmp_path):
    tr = trainer
    tr.run(400, progress=False, chunks=2)
    tr.save(tmp_path / "ck")
    resumed = JitTrainer.load(tmp_path / "ck")
    tr.run(800, progress=False, chunks=2)
    resumed.run(800, progress=False, chunks=2)
    for a, b in zip(jax.tree.leaves(tr.state), jax.tree.leaves(resumed.state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    obs = jax.tree.map(lambda x: np.asarray(x)[0], tr.state.obs_stats)
    S = np.random.default_rng(5).uniform(-8, 8, size=(2, 3)).astype(np.float32)
    Z = np.clip((S - obs.mean) / np.sqrt(obs.var + EPS), -5.0, 5.0).astype(np.float32)
    expected = np.asarray(tr.pi.dist_params_fn(*jax.tree.map(lambda x: x[0], (
        tr.state.pi_params, tr.state.pi_state)), None, Z)["mu"])
    np.testing.assert_allclose(tr.policy(0).dist_params(S[0])["mu"], expected[0], rtol=1e-5)
    tr.export(tmp_path / "policy")
    pi = a2c_jax.load_policy(tmp_path / "policy")
    np.testing.assert_allclose(pi.dist_params(S[1])["mu"], expected[1], rtol=1e-5)


TWO_DEVICES = textwrap.dedent(r"""
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import json, jax, numpy as np
    from a2c_jax.training._jit import JitTrainer
    from a2c_jax.training._presets import TrainConfig
    config = TrainConfig(num_envs=4, n_steps=10, hidden=(8,), normalize_obs=True,
                         normalize_reward=True)
    one = JitTrainer("Pendulum-v1", config, seed=2, devices=jax.devices()[:1])
    two = JitTrainer("Pendulum-v1", config, seed=2, devices=jax.devices())
    for t in (one, two):
        t.run(400, progress=False, chunks=1)
    pick = lambda t: (t.state.obs_stats, t.state.ret_stats, t.state.ret_acc, t.state.pi_params)
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
               for a, b in zip(jax.tree.leaves(pick(one)), jax.tree.leaves(pick(two))))
    print("RESULT " + json.dumps({
        "diff": diff, "ret_acc_devices": len(two.state.ret_acc.sharding.device_set),
        "count": float(np.asarray(two.state.obs_stats.count)[0])}))
""")


def test_envs_sharded_over_two_devices_give_one_devices_statistics():
    proc = subprocess.run([sys.executable, "-c", TWO_DEVICES], capture_output=True, text=True,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert out["ret_acc_devices"] == 2
    assert out["diff"] < 1e-4
    np.testing.assert_allclose(out["count"], 400 + 1e-4, rtol=1e-6)


LOOP_TWO_DEVICES = textwrap.dedent(r"""
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import json, sys, jax, numpy as np
    from a2c_jax.training import Trainer
    from a2c_jax.training._presets import TrainConfig
    config = TrainConfig(num_envs=4, n_steps=5, hidden=(8,), normalize_obs=True,
                         normalize_reward=True)
    one = Trainer("Pendulum-v1", config, seed=2, devices=jax.devices()[:1])
    two = Trainer("Pendulum-v1", config, seed=2, devices=jax.devices())
    for t in (one, two):
        t.run(400, progress=False)
    two.save(sys.argv[1])
    back = Trainer.load(sys.argv[1])   # on one device
    for t in (one, two, back):
        t.run(800, progress=False)
    def host(t):
        return jax.device_get((t._local(t.norm.obs), t._local(t.norm.ret), t._norm_on_host()[2],
                               t._local(t.state.pi_params)))
    def diff(a, b):
        return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
                   for x, y in zip(jax.tree.leaves(host(a)), jax.tree.leaves(host(b))))
    print("RESULT " + json.dumps({"two": diff(one, two), "back": diff(two, back),
                                  "ret_acc_devices": len(two.norm.ret_acc.sharding.device_set)}))
""")


def test_the_loop_engine_over_two_devices_gives_one_devices_statistics(tmp_path):
    """The envs split over a mesh of two devices: the statistics (merged in the update's one
    compiled call) equal one device's; its checkpoint continues on one device."""
    proc = subprocess.run([sys.executable, "-c", LOOP_TWO_DEVICES, str(tmp_path / "ck")],
                          capture_output=True, text=True,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert out["ret_acc_devices"] == 2
    assert out["two"] < 1e-5 and out["back"] < 1e-5
