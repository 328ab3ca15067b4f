"""Observation and reward normalisation (SB3's VecNormalize): the running statistics against numpy
references, the merge across envs and devices, and the loop engine's use of them.

References, written here independently of a2c_jax: the exact mean and variance of everything
seen (with the prior of mean 0, variance 1 and weight 1e-4 as one more pooled group), SB3's
batch-by-batch update in float64 numpy, and a numpy loop of the discounted return.
"""

import json
import os
import subprocess
import sys
import textwrap

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import a2c_jax
from a2c_jax import functional as af
from a2c_jax.training import Trainer
from a2c_jax.training._normalization import Normalizer
from a2c_jax.training._presets import TrainConfig
from a2c_jax.training._update import Rollout

PRIOR = 1e-4
EPS = 1e-8


def exact_stats(samples):
    """Mean and variance of the prior (mean 0, var 1, weight 1e-4) pooled with ``samples``
    ``[N, *shape]``, in float64: the statistics of everything seen."""
    x = np.asarray(samples, np.float64)
    n = x.shape[0]
    m = x.mean(axis=0)
    total = n + PRIOR
    mean = n * m / total
    # pooled second moment about the pooled mean: each group's variance plus its offset squared
    second = (PRIOR * (1.0 + mean**2) + (((x - mean) ** 2).sum(axis=0))) / total
    return mean, second, total


def sb3_like_update(mean, var, count, batch):
    """One batch merged as SB3's RunningMeanStd.update does (float64 numpy, written here)."""
    b = np.asarray(batch, np.float64)
    b_mean, b_var, b_count = b.mean(axis=0), b.var(axis=0), b.shape[0]
    delta = b_mean - mean
    tot = count + b_count
    new_mean = mean + delta * b_count / tot
    m2 = var * count + b_var * b_count + delta**2 * count * b_count / tot
    return new_mean, m2 / tot, tot


@pytest.mark.parametrize("jit", [False, True])
def test_running_stats_equal_the_exact_moments_of_everything_seen(jit):
    rng = np.random.default_rng(0)
    update = jax.jit(af.update_running_stats) if jit else af.update_running_stats
    stats = af.init_running_stats((3,))
    ref = (np.zeros(3), np.ones(3), PRIOR)
    seen = []
    for size in (1, 7, 32, 5, 64):   # batches of several sizes, features of several scales
        batch = (rng.normal(size=(size, 3)) * [1.0, 10.0, 0.01] + [5.0, -3.0, 0.2]).astype(np.float32)
        seen.append(batch)
        stats = update(stats, batch)
        ref = sb3_like_update(*ref, batch)
        mean, var, count = exact_stats(np.concatenate(seen))
        np.testing.assert_allclose(stats.mean, mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(stats.var, var, rtol=1e-4)
        np.testing.assert_allclose(stats.count, count, rtol=1e-6)
        np.testing.assert_allclose(ref[0], mean, rtol=1e-10, atol=1e-12)  # the references agree
        np.testing.assert_allclose(ref[1], var, rtol=1e-10)
    assert stats.mean.dtype == stats.var.dtype == stats.count.dtype == jnp.float32


def test_a_rollout_at_once_equals_step_by_step_and_env_blocks_merged():
    """``[T, E, d]`` merged at once = T merges of ``[E, d]`` = the two halves of the envs
    (each device's block) merged from their moments: exact merges, up to float rounding."""
    rng = np.random.default_rng(1)
    S = rng.normal(2.0, 3.0, size=(6, 8, 2)).astype(np.float32)
    first = rng.normal(size=(4, 2)).astype(np.float32)
    start = af.update_running_stats(af.init_running_stats((2,)), first)
    at_once = af.update_running_stats(start, S)
    step = start
    for t in range(6):
        step = af.update_running_stats(step, S[t])
    blocks = start
    for half in (S[:, :4], S[:, 4:]):
        h = half.reshape(-1, 2).astype(np.float64)
        blocks = af.merge_running_stats(blocks, h.mean(0).astype(np.float32),
                                        h.var(0).astype(np.float32), float(len(h)))
    for other in (step, blocks):
        for a, b in zip(at_once, other):
            np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-6)
    mean, var, count = exact_stats(np.concatenate([first, S.reshape(-1, 2)]))
    np.testing.assert_allclose(at_once.mean, mean, rtol=1e-5)
    np.testing.assert_allclose(at_once.var, var, rtol=1e-5)
    np.testing.assert_allclose(at_once.count, count, rtol=1e-6)


def test_normalize_and_scale_against_numpy():
    stats = af.RunningStats(jnp.array([1.0, -2.0]), jnp.array([4.0, 0.0]), jnp.array(10.0))
    x = np.array([[3.0, -2.0], [100.0, -1.0], [-50.0, -3.0]], np.float32)
    z = np.clip((x - [1.0, -2.0]) / np.sqrt(np.array([4.0, 0.0]) + EPS), -5.0, 5.0)
    np.testing.assert_allclose(af.normalize(stats, x, 5.0), z, rtol=1e-6)
    r = np.array([1.0, -30.0, 0.5], np.float32)
    scalar = af.RunningStats(jnp.array(0.3), jnp.array(9.0), jnp.array(5.0))
    np.testing.assert_allclose(af.scale(scalar, r, 2.0), np.clip(r / np.sqrt(9.0 + EPS), -2, 2),
                               rtol=1e-6)
    with pytest.raises(AssertionError):   # a sample of another shape than the statistics'
        af.normalize(stats, np.zeros((3, 3)), 5.0)


def numpy_reward_normalizer(R, done, gamma, clip, state=None):
    """SB3's reward normalisation, step by step: ``(state, normalised R)``; ``state`` is
    ``(mean, var, count, ret [E])`` in float64."""
    T, E = R.shape
    mean, var, count, ret = state or (0.0, 1.0, PRIOR, np.zeros(E))
    out = np.zeros((T, E))
    for t in range(T):
        ret = ret * gamma + R[t]
        mean, var, count = sb3_like_update(mean, var, count, ret)
        out[t] = np.clip(R[t] / np.sqrt(var + EPS), -clip, clip)
        ret = np.where(done[t], 0.0, ret)
    return (mean, var, count, ret), out


def test_reward_normalizer_against_a_numpy_loop_of_the_discounted_return():
    rng = np.random.default_rng(2)
    stats, ret = af.init_running_stats(()), jnp.zeros(5)
    ref = None
    fn = jax.jit(af.normalize_rewards, static_argnames=())
    for _ in range(3):   # three rollouts, the state carried over
        R = rng.normal(-1.0, 4.0, size=(7, 5)).astype(np.float32)
        done = rng.uniform(size=(7, 5)) < 0.2
        stats, ret, out = fn(stats, ret, R, done, gamma=0.95, clip=1.0)
        ref, expected = numpy_reward_normalizer(R, done, 0.95, 1.0, ref)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ret, ref[3], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(stats.mean, ref[0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(stats.var, ref[1], rtol=1e-5)
        np.testing.assert_allclose(stats.count, ref[2], rtol=1e-6)
    assert np.any(np.abs(expected) == 1.0)   # some rewards were clipped


TWO_DEVICES = textwrap.dedent(r"""
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import json, jax, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from a2c_jax import functional as af
    assert len(jax.devices()) == 2
    rng = np.random.default_rng(3)
    S = rng.normal(1.0, 2.0, size=(5, 8, 3)).astype(np.float32)       # [T, E, d]
    R = rng.normal(size=(5, 8)).astype(np.float32)
    done = rng.uniform(size=(5, 8)) < 0.3
    def both(S, R, done):
        obs = af.update_running_stats(af.init_running_stats((3,)), S)
        ret, acc, out = af.normalize_rewards(af.init_running_stats(()), jax.numpy.zeros(8), R,
                                             done, gamma=0.9, clip=10.0)
        return obs, ret, acc, out
    one = jax.jit(both)(S, R, done)
    mesh = Mesh(np.asarray(jax.devices()), ("envs",))
    by_env = NamedSharding(mesh, P(None, "envs"))
    put = lambda x: jax.device_put(x, by_env)
    two = jax.jit(both)(put(S), put(R), put(done))
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
               for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(two)))
    print("RESULT " + json.dumps({
        "diff": diff, "devices": len(put(S).sharding.device_set),
        "obs": [np.asarray(x).tolist() for x in two[0]],
        "ret": [float(x) for x in two[1]], "out": np.asarray(two[3]).tolist(),
        "S": S.tolist(), "R": R.tolist(), "done": done.tolist()}))
""")


def test_statistics_of_envs_sharded_over_two_devices_equal_one_devices():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", TWO_DEVICES], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert out["devices"] == 2
    assert out["diff"] < 1e-5
    S = np.array(out["S"])
    mean, var, count = exact_stats(S.reshape(-1, 3))
    np.testing.assert_allclose(out["obs"][0], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["obs"][1], var, rtol=1e-5)
    np.testing.assert_allclose(out["obs"][2], count, rtol=1e-6)
    (m, v, c, _), expected = numpy_reward_normalizer(np.array(out["R"]), np.array(out["done"]),
                                                     0.9, 10.0)
    np.testing.assert_allclose(out["ret"], [m, v, c], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["out"], expected, rtol=1e-5, atol=1e-6)


# ---- the loop engine ---------------------------------------------------------------------------

CONFIG = TrainConfig(num_envs=4, n_steps=5, hidden=(8,), normalize_obs=True,
                     normalize_reward=True, clip_obs=5.0, gamma=0.9)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A short Pendulum run with both normalisations, its raw rollouts recorded, saved half-way and
    at the end."""
    tr = Trainer("Pendulum-v1", CONFIG, seed=0)
    raw = []
    update = tr._update

    def recording(rollout):
        raw.append(jax.tree.map(np.array, rollout))
        return update(rollout)

    tr._update = recording
    tmp = tmp_path_factory.mktemp("norm")
    tr.run(400, progress=False)
    tr.save(tmp / "half")
    tr.run(800, progress=False)
    tr.save(tmp / "end")
    yield tr, raw, tmp
    tr.close()


def test_the_loop_engines_saved_statistics_equal_the_numpy_reference(trained):
    tr, raw, tmp = trained
    assert len(raw) == 800 // 20
    S = np.concatenate([r.S for r in raw])                      # [T_all, E, 3], raw
    loaded = Trainer.load(tmp / "end")
    obs, ret = jax.device_get((loaded.norm.obs, loaded.norm.ret))
    mean, var, count = exact_stats(S.reshape(-1, 3))
    np.testing.assert_allclose(obs.mean, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(obs.var, var, rtol=1e-4)
    np.testing.assert_allclose(obs.count, count, rtol=1e-6)
    R = np.concatenate([r.R for r in raw])
    done = np.concatenate([r.terminated | r.truncated for r in raw])
    (m, v, c, acc), _ = numpy_reward_normalizer(R.astype(np.float64), done, CONFIG.gamma, 10.0)
    np.testing.assert_allclose([ret.mean, ret.var, ret.count], [m, v, c], rtol=1e-5)
    np.testing.assert_allclose(jax.device_get(loaded.norm.ret_acc), acc, rtol=1e-5)
    # raw rewards make the episode returns (Pendulum's episodes: 200 steps)
    assert loaded.returns == tr.returns and len(tr.returns) == 4
    np.testing.assert_allclose(tr.returns[0], R[:200, 0].astype(np.float64).sum(), rtol=1e-5)
    loaded.close()


def test_the_loop_engine_resumes_bitwise_with_its_statistics(trained):
    tr, _, tmp = trained
    resumed = Trainer.load(tmp / "half")
    resumed.run(800, progress=False)
    for a, b in zip(jax.tree.leaves((tr.state, tr.norm)), jax.tree.leaves((resumed.state, resumed.norm))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    resumed.close()


def test_evaluation_and_the_exported_policy_apply_the_frozen_statistics(trained):
    tr, _, tmp = trained
    obs = jax.device_get(tr.norm.obs)
    S = np.random.default_rng(4).uniform(-8, 8, size=(6, 3)).astype(np.float32)
    Z = np.clip((S - obs.mean) / np.sqrt(obs.var + EPS), -5.0, 5.0).astype(np.float32)
    expected = np.asarray(tr.pi.dist_params(Z[0])["mu"])   # the network on normalised input
    assert not np.allclose(expected, tr.pi.dist_params(S[0])["mu"])
    np.testing.assert_allclose(tr.policy(0).dist_params(S[0])["mu"], expected, rtol=1e-5)
    tr.export(tmp / "policy")
    pi = a2c_jax.load_policy(tmp / "policy")
    np.testing.assert_allclose(pi.dist_params(S[0])["mu"], expected, rtol=1e-5)
    np.testing.assert_allclose(pi.mode(S[1]), tr.pi.mode(Z[1]), rtol=1e-5)
    # the statistics stay frozen: evaluating changes nothing
    before = jax.device_get(tr.norm)
    tr.evaluate(1)
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(jax.device_get(tr.norm))):
        np.testing.assert_array_equal(a, b)


def test_what_is_switched_off_holds_nothing_and_non_box_observations_are_refused():
    box = gymnasium.spaces.Box(-1.0, 1.0, (3,))
    off = Normalizer(TrainConfig(), box)
    assert off.init(4) == ((), (), ()) and not off.active
    rollout = Rollout(*[np.ones((2, 4))] * 7, np.ones(4))
    assert off.rollout(off.init(4), rollout)[1] is rollout        # nothing traced, nothing done
    only_obs = Normalizer(TrainConfig(normalize_obs=True), box).init(4)
    assert only_obs.ret == () and only_obs.ret_acc == () and only_obs.obs.mean.shape == (3,)
    with pytest.raises(ValueError, match="Box"):
        Normalizer(TrainConfig(normalize_obs=True), gymnasium.spaces.Discrete(4))
