"""sync_shared_params against a numpy weighted average, and the coax recipe loop around it."""

import gymnasium
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import func_pi, func_v, host_copy

import a2c_jax
from a2c_jax.utils import sync_shared_params


def module(rng, *shapes):
    return {f"p{i}": rng.normal(size=s).astype(np.float32) for i, s in enumerate(shapes)}


@pytest.fixture
def three(rng):
    """Three params dicts: 'torso' in all, 'mid' in 0 and 2, private heads in each."""
    torso = [
        {"torso/linear": module(rng, (3, 4), (4,)), "torso/linear_1": module(rng, (4,))}
        for _ in range(3)
    ]
    mid = [module(rng, (2, 2)) for _ in range(2)]
    return [
        {**torso[0], "mid": mid[0], "head0": module(rng, (4, 1))},
        {**torso[1], "head1": module(rng, (4, 2))},
        {**torso[2], "mid": mid[1], "head2/linear": module(rng, (4, 3))},
    ]


def np_average(values, weights):
    w = np.asarray(weights, np.float64)
    return sum(wi * np.asarray(x, np.float64) for wi, x in zip(w / w.sum(), values, strict=True))


@pytest.mark.parametrize("weights", [None, [1.0, 2.0, 5.0], [0.0, 1.0, 3.0]])
def test_weighted_average_vs_numpy(three, weights):
    """Modules in 2 or 3 dicts are averaged (weights renormalised over owners); others untouched."""
    w = [1.0, 1.0, 1.0] if weights is None else weights
    out = sync_shared_params(*three, weights=weights)
    assert isinstance(out, tuple) and len(out) == 3
    for i in range(3):
        assert set(out[i]) == set(three[i])
    for name in ("torso/linear", "torso/linear_1"):
        for leaf in three[0][name]:
            want = np_average([p[name][leaf] for p in three], w)
            for i in range(3):
                np.testing.assert_allclose(out[i][name][leaf], want, rtol=1e-5, atol=1e-6)
    for leaf in three[0]["mid"]:
        want = np_average([three[0]["mid"][leaf], three[2]["mid"][leaf]], [w[0], w[2]])
        np.testing.assert_allclose(out[0]["mid"][leaf], want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out[2]["mid"][leaf], want, rtol=1e-5, atol=1e-6)
    for i, head in enumerate(("head0", "head1", "head2/linear")):
        for leaf, x in three[i][head].items():
            np.testing.assert_array_equal(out[i][head][leaf], x)


def test_two_dicts_default_is_plain_mean(rng):
    """Two dicts, default weights: the shared module becomes the elementwise mean."""
    a = {"torso/linear": module(rng, (2, 3)), "pi": module(rng, (3,))}
    b = {"torso/linear": module(rng, (2, 3)), "v": module(rng, (1,))}
    a_out, b_out = sync_shared_params(a, b)
    want = (a["torso/linear"]["p0"].astype(np.float64) + b["torso/linear"]["p0"]) / 2
    np.testing.assert_allclose(a_out["torso/linear"]["p0"], want, rtol=1e-6)
    np.testing.assert_allclose(b_out["torso/linear"]["p0"], want, rtol=1e-6)
    np.testing.assert_array_equal(a_out["pi"]["p0"], a["pi"]["p0"])
    np.testing.assert_array_equal(b_out["v"]["p0"], b["v"]["p0"])


def test_unscoped_heads_with_different_shapes_raise(env):
    """Heads that are not name-scoped collide as 'linear_2' with different shapes: ValueError."""

    def func_v_flat(S, is_training):
        X = jax.nn.relu(hk.Linear(8)(S))
        X = jax.nn.relu(hk.Linear(8)(X))
        return jnp.ravel(hk.Linear(1)(X))

    def func_pi_flat(S, is_training):
        X = jax.nn.relu(hk.Linear(8)(S))
        X = jax.nn.relu(hk.Linear(8)(X))
        return {"logits": hk.Linear(2)(X)}

    v = a2c_jax.V(func_v_flat, env, random_seed=0)
    pi = a2c_jax.Policy(func_pi_flat, env, random_seed=0)
    assert "linear_2" in v.params and "linear_2" in pi.params
    with pytest.raises(ValueError, match="linear_2"):
        sync_shared_params(pi.params, v.params)


def test_mismatched_leaf_names_raise(rng):
    """A shared module with different parameter names in two dicts raises ValueError naming it."""
    a = {"torso": {"w": np.zeros((2, 2), np.float32)}}
    b = {"torso": {"kernel": np.zeros((2, 2), np.float32)}}
    with pytest.raises(ValueError, match="torso"):
        sync_shared_params(a, b)


@pytest.mark.parametrize(
    "weights", [[1.0], [1.0, 2.0, 3.0], [1.0, -1.0], [0.0, 0.0], [np.nan, 1.0], [np.inf, 1.0]]
)
def test_bad_weights_raise(rng, weights):
    """Wrong length, negative, all-zero or non-finite weights raise ValueError."""
    a = {"torso": module(rng, (2,))}
    b = {"torso": module(rng, (2,))}
    with pytest.raises(ValueError):
        sync_shared_params(a, b, weights=weights)


def test_bad_arguments_raise(rng):
    """No params at all -> ValueError; a non-dict -> TypeError."""
    with pytest.raises(ValueError):
        sync_shared_params()
    with pytest.raises(TypeError):
        sync_shared_params({"torso": module(rng, (2,))}, [1, 2])


def test_zero_weights_on_a_modules_owners_raise(rng):
    """weights=[0, 0, 1], 'torso' only in dicts 0 and 1: a ValueError naming it (0/0 would be NaN)."""
    a, b = {"torso": module(rng, (2, 2))}, {"torso": module(rng, (2, 2))}
    c = {"head": module(rng, (2,))}
    with pytest.raises(ValueError, match="torso"):
        sync_shared_params(a, b, c, weights=[0.0, 0.0, 1.0])


def test_recipe_loop_with_sync_and_donation():
    """coax's A2C recipe loop with sync_shared_params: params stay valid and finite under donation.

    Reference: the synced torso equals the numpy mean of the two torsos right after each sync, and
    every array of pi.params / v.params can still be read after the (donating) updates.
    """
    env = a2c_jax.wrappers.TrainMonitor(gymnasium.make("CartPole-v1"))
    v = a2c_jax.V(func_v, env, random_seed=1)
    pi = a2c_jax.Policy(func_pi, env, random_seed=2)
    vanilla_pg = a2c_jax.policy_objectives.VanillaPG(pi, optimizer=optax.adam(0.01))
    simple_td = a2c_jax.td_learning.SimpleTD(v, optimizer=optax.adam(0.02))
    tracer = a2c_jax.reward_tracing.NStep(n=5, gamma=0.9)
    buffer = a2c_jax.experience_replay.SimpleReplayBuffer(capacity=32, random_seed=0)
    n_updates = 0
    for ep in range(12):  # enough episodes to fill the 32-transition buffer a few times
        s, info = env.reset(seed=ep)
        for _ in range(env.spec.max_episode_steps):
            a, logp = pi(s, return_logp=True)
            s_next, r, done, truncated, info = env.step(a)
            tracer.add(s, a, r, done or truncated, logp)
            while tracer:
                buffer.add(tracer.pop())
            if len(buffer) == buffer.capacity:
                for _ in range(2):
                    batch = buffer.sample(batch_size=8)
                    metrics_v, td_error = simple_td.update(batch, return_td_error=True)
                    metrics_pi = vanilla_pg.update(batch, td_error)
                    env.record_metrics(metrics_v)
                    env.record_metrics(metrics_pi)
                    torso_pi = host_copy(pi.params["torso/linear"])
                    torso_v = host_copy(v.params["torso/linear"])
                    pi.params, v.params = a2c_jax.utils.sync_shared_params(pi.params, v.params)
                    for leaf in torso_pi:
                        want = (torso_pi[leaf].astype(np.float64) + torso_v[leaf]) / 2
                        np.testing.assert_allclose(pi.params["torso/linear"][leaf], want, rtol=1e-5)
                        np.testing.assert_allclose(v.params["torso/linear"][leaf], want, rtol=1e-5)
                    n_updates += 1
            if done or truncated:
                break
            s = s_next
    assert n_updates >= 4
    # every buffer of both objects is still alive (not donated away) and finite
    for tree in (pi.params, v.params):
        assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(tree))
    v(s)
    pi(s)
    env.close()


# ---- the one module comparison behind soft_update, ActorCritic and sync_shared_params ----------


def test_first_differing_module():
    from a2c_jax.utils._sync import first_differing_module, module_signature

    f32, f16 = np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float16)
    a = {"torso/linear": {"w": f32}, "torso/linear_1": {"w": f32}, "pi/linear": {"w": f32}}
    b = {"torso/linear": {"w": f32}, "torso/linear_1": {"w": f16}, "v/linear": {"w": f32[:1]}}
    c = {"torso/linear": {"w": f32}, "torso/linear_1": {"w": f32[:, :2]}}
    assert module_signature(a, "torso", scope=True, dtypes=False) == {
        "torso/linear": {"w": (2, 3)}, "torso/linear_1": {"w": (2, 3)}}
    assert module_signature(a, "torso", scope=False, dtypes=False) == {}
    # scopes: dtypes only count when asked; the first tree that differs is named by index
    assert first_differing_module((a, b), ["torso"], scope=True, dtypes=False) is None
    assert first_differing_module((a, b), ["torso"], scope=True, dtypes=True) == ("torso", 1)
    assert first_differing_module((a, b, c), ["torso"], scope=True, dtypes=False) == ("torso", 2)
    # modules: one present in a single tree differs
    names = sorted(set(a) | set(b))
    assert first_differing_module((a, b), names, scope=False, dtypes=False) == ("pi/linear", 1)
    assert first_differing_module((a, a), names, scope=False, dtypes=True) is None
