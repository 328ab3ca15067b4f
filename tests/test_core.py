"""V and Policy against numpy forward passes and log-softmax, plus their input/output checks."""

import gymnasium
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import (
    func_pi,
    func_v,
    host_copy,
    make_batch,
    np_log_softmax,
    np_logits,
    np_value,
    torso,
)

import a2c_jax
from a2c_jax.td_learning import SimpleTD


class SpacesEnv(gymnasium.Env):
    """A do-nothing env with the given spaces (for construction-time checks)."""

    def __init__(self, observation_space, action_space):
        self.observation_space = observation_space
        self.action_space = action_space


def cartpole_states(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)


# ---- V --------------------------------------------------------------------------------------


def test_v_matches_numpy_forward(v):
    """v(s) and v.batch(S) equal the numpy forward pass of the same params."""
    S = cartpole_states(5)
    want = np_value(v.params, S)
    np.testing.assert_allclose([v(s) for s in S], want, rtol=1e-5, atol=1e-6)
    got = v.batch(S)
    assert got.shape == (5,)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert isinstance(v(S[0]), float)


def test_v_pure_function_jit_and_eager_agree(v):
    """The pure batched apply gives the numpy values, with and without jit."""
    S = cartpole_states(3)
    key = jax.random.PRNGKey(0)
    out_jit, _ = jax.jit(v.function, static_argnums=4)(v.params, v.function_state, key, S, False)
    with jax.disable_jit():
        out_eager, _ = v.function(v.params, v.function_state, key, S, False)
    np.testing.assert_allclose(out_jit, np_value(v.params, S), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out_eager, out_jit, rtol=1e-6, atol=1e-6)


def test_v_value_transform(env):
    """With value_transform=(f, f⁻¹) v returns f⁻¹(func(S)) (numpy reference)."""
    transform = (lambda x: 2.0 * x, lambda y: 0.5 * y + 1.0)
    v = a2c_jax.V(func_v, env, value_transform=transform, random_seed=1)
    S = cartpole_states(4)
    np.testing.assert_allclose(v.batch(S), 0.5 * np_value(v.params, S) + 1.0, rtol=1e-5, atol=1e-6)


def test_v_discrete_observations_one_hot():
    """Discrete(5, start=2) observations are one-hot: v(s) == w[s - 2] of a bias-free Linear."""

    def func(S, is_training):
        return jnp.ravel(hk.Linear(1, with_bias=False)(S))

    v = a2c_jax.V(
        func,
        SpacesEnv(gymnasium.spaces.Discrete(5, start=2), gymnasium.spaces.Discrete(2)),
        random_seed=0,
    )
    w = np.asarray(v.params["linear"]["w"])[:, 0]
    np.testing.assert_allclose([v(s) for s in range(2, 7)], w, rtol=1e-6)
    np.testing.assert_allclose(v.batch(np.array([6, 2, 4])), w[[4, 0, 2]], rtol=1e-6)


def test_v_wrong_output_shape(env):
    """A value function returning [B, 1] instead of [B] raises ValueError at construction."""

    def func(S, is_training):
        return hk.Linear(1)(S)

    with pytest.raises(ValueError, match=r"\[B\]"):
        a2c_jax.V(func, env)


def test_wrong_observation_shape(v, pi):
    """An observation (or batch) of the wrong shape raises ValueError."""
    with pytest.raises(ValueError):
        v(np.zeros(3, np.float32))
    with pytest.raises(ValueError):
        pi(np.zeros(5, np.float32))
    with pytest.raises(ValueError):
        pi.dist_params(np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError):
        v.batch(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError):
        pi.batch(np.zeros(4, np.float32))


def test_params_setter_checks(v):
    """Setting params: wrong tree structure -> TypeError, wrong leaf shape -> ValueError."""
    good = host_copy(v.params)
    v.params = good  # accepted
    missing = {k: x for k, x in good.items() if k != "v/linear"}
    with pytest.raises(TypeError):
        v.params = missing
    bad_shape = jax.tree.map(lambda x: x, good)
    bad_shape["v/linear"] = {"b": np.zeros(1, np.float32), "w": np.zeros((9, 1), np.float32)}
    with pytest.raises(ValueError, match="v/linear"):
        v.params = bad_shape
    with pytest.raises(TypeError):
        v.function_state = {"something": {"x": np.zeros(1)}}
    np.testing.assert_array_equal(v.params["v/linear"]["w"], good["v/linear"]["w"])


def test_setters_convert_float_dtypes_and_refuse_other_kinds(v, rng):
    """float16/float64 params are converted to the held float32 (never trained at another
    precision); integer params, and a float Adam moment given as int8, raise naming the leaf."""
    good = host_copy(v.params)
    v.params = jax.tree.map(lambda x: x.astype(np.float16), good)
    assert {x.dtype for x in jax.tree.leaves(v.params)} == {np.dtype(np.float32)}
    np.testing.assert_allclose(v.params["v/linear"]["w"], good["v/linear"]["w"].astype(np.float16))
    v.params = jax.tree.map(lambda x: x.astype(np.float64), good)
    assert {x.dtype for x in jax.tree.leaves(v.params)} == {np.dtype(np.float32)}
    with pytest.raises(TypeError, match=r"linear.*dtype int32, expected float32"):
        v.params = jax.tree.map(lambda x: x.astype(np.int32), good)
    td = SimpleTD(v, optimizer=optax.adam(0.01), flatten_optimizer=False)
    opt = host_copy(td.optimizer_state)
    td.optimizer_state = opt  # same dtypes: accepted
    with pytest.raises(TypeError, match="dtype"):
        td.optimizer_state = jax.tree.map(
            lambda x: x.astype(np.int8) if x.dtype == np.float32 else x, opt)
    td.update(make_batch(rng, 8))  # still trains after the refused calls


def test_v_copy_is_independent(v, rng):
    """v.copy() keeps its own params: updating v leaves the copy's values (numpy ref) unchanged."""
    v_copy = v.copy()
    before = host_copy(v.params)
    td = SimpleTD(v, optimizer=optax.sgd(0.1))
    td.update(make_batch(rng, 8))
    S = cartpole_states(4)
    np.testing.assert_allclose(v_copy.batch(S), np_value(before, S), rtol=1e-5, atol=1e-6)
    assert not np.allclose(v.batch(S), np_value(before, S))
    # the copy's arrays survived the donation of v's
    jax.tree.map(
        lambda a, b: np.testing.assert_array_equal(np.asarray(a), b), v_copy.params, before
    )


# ---- Policy, discrete -------------------------------------------------------------------------


def test_pi_logp_is_exact_log_softmax(pi):
    """pi(s, return_logp=True): logp == numpy log_softmax(pi.dist_params(s)['logits'])[a]."""
    for s in cartpole_states(20, seed=3):
        a, logp = pi(s, return_logp=True)
        assert isinstance(a, int) and a in (0, 1)
        logits = pi.dist_params(s)["logits"]
        np.testing.assert_allclose(logits, np_logits(pi.params, s[None])[0], rtol=1e-5, atol=1e-6)
        assert logp == pytest.approx(np_log_softmax(logits)[a], abs=1e-6)


def test_pi_mode_is_argmax(pi):
    """pi.mode(s) == argmax of the numpy logits; its logp is that action's log_softmax."""
    for s in cartpole_states(6, seed=4):
        logits = np_logits(pi.params, s[None])[0]
        a, logp = pi.mode(s, return_logp=True)
        assert a == int(np.argmax(logits))
        assert logp == pytest.approx(np_log_softmax(logits)[a], abs=1e-6)


def test_pi_sample_frequencies(env):
    """Actions sampled by pi.batch follow softmax(logits) within 5 standard errors."""

    def func(S, is_training):
        logits = jnp.array([0.3, -0.4, 1.1]) + 0.0 * hk.Linear(3)(S)
        return {"logits": logits}

    pi3 = a2c_jax.Policy(
        func, SpacesEnv(env.observation_space, gymnasium.spaces.Discrete(3)), random_seed=0
    )
    N = 6000
    A, logP = pi3.batch(np.zeros((N, 4), np.float32), return_logp=True)
    p = np.exp(np_log_softmax(np.array([0.3, -0.4, 1.1])))
    freq = np.bincount(A, minlength=3) / N
    np.testing.assert_array_less(np.abs(freq - p), 5 * np.sqrt(p * (1 - p) / N))
    np.testing.assert_allclose(logP, np.log(p)[A], rtol=1e-5)


def test_pi_discrete_start_offset(env):
    """Discrete(3, start=5): actions lie in {5, 6, 7} and logp == log_softmax[a - 5]."""

    def func(S, is_training):
        return {"logits": hk.Linear(3)(S)}

    pi5 = a2c_jax.Policy(
        func, SpacesEnv(env.observation_space, gymnasium.spaces.Discrete(3, start=5)), random_seed=0
    )
    seen = set()
    for s in cartpole_states(40, seed=5):
        a, logp = pi5(s, return_logp=True)
        seen.add(a)
        assert logp == pytest.approx(np_log_softmax(pi5.dist_params(s)["logits"])[a - 5], abs=1e-6)
    assert seen <= {5, 6, 7} and len(seen) >= 2


def test_pi_batch_shapes(pi, v):
    """pi.batch -> A [B] ints in range, logP [B] == log_softmax; v.batch -> [B]."""
    S = cartpole_states(7)
    A, logP = pi.batch(S, return_logp=True)
    assert A.shape == (7,) and logP.shape == (7,)
    assert set(np.unique(A)) <= {0, 1}
    np.testing.assert_allclose(
        logP, np_log_softmax(np_logits(pi.params, S))[np.arange(7), A], atol=1e-6
    )
    assert pi.batch(S).shape == (7,)
    assert v.batch(S).shape == (7,)


def test_pi_seeded_sampling_reproducible(env):
    """Two policies with the same seed sample the same actions."""
    p1, p2 = (a2c_jax.Policy(func_pi, env, random_seed=11) for _ in range(2))
    S = cartpole_states(30)
    assert [p1(s) for s in S] == [p2(s) for s in S]


# ---- Policy, Box ------------------------------------------------------------------------------


def test_pi_box_actions_in_bounds_and_logp_consistent(pi_box, box_env):
    """Box policy: actions inside the bounds; logp == proba_dist.log_proba(a) == numpy formula."""
    space = box_env.action_space
    low, high = float(space.low[0]), float(space.high[0])
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = rng.uniform(-1, 1, size=3).astype(np.float32)
        a, logp = pi_box(s, return_logp=True)
        assert a.shape == (1,) and a.dtype == space.dtype
        assert low < a[0] < high
        dp = pi_box.dist_params(s)
        lib = pi_box.proba_dist.log_proba({k: x[None] for k, x in dp.items()}, a[None])
        assert logp == pytest.approx(float(lib[0]), abs=1e-5)
        # numpy: N(u; mu, σ²) / |da/du| with a = c + h tanh(u)
        c, h = (high + low) / 2, (high - low) / 2
        y = (float(a[0]) - c) / h
        u = np.arctanh(y)
        mu, lv = float(dp["mu"][0]), float(dp["logvar"][0])
        ref = -0.5 * (np.log(2 * np.pi) + lv + (u - mu) ** 2 / np.exp(lv)) - np.log(h * (1 - y * y))
        assert logp == pytest.approx(ref, abs=1e-3)
    A, logP = pi_box.batch(rng.uniform(-1, 1, size=(9, 3)).astype(np.float32), return_logp=True)
    assert A.shape == (9, 1) and logP.shape == (9,)
    assert np.all((low < A) & (high > A))


# ---- construction errors ------------------------------------------------------------------------


def test_unsupported_action_space(env):
    """A MultiDiscrete action space raises TypeError naming the space."""
    bad = SpacesEnv(env.observation_space, gymnasium.spaces.MultiDiscrete([2, 3]))
    with pytest.raises(TypeError, match="MultiDiscrete"):
        a2c_jax.Policy(func_pi, bad)


def test_unsupported_observation_space(env):
    """An observation space without a default preprocessor raises TypeError naming it."""
    bad = SpacesEnv(gymnasium.spaces.Text(5), env.action_space)
    with pytest.raises(TypeError, match="Text"):
        a2c_jax.V(func_v, bad)


def test_policy_missing_logits(env):
    """A Discrete policy function without 'logits' raises ValueError naming the expected key."""

    def func(S, is_training):
        return {"mu": hk.Linear(2)(torso(S, is_training))}

    with pytest.raises(ValueError, match="logits"):
        a2c_jax.Policy(func, env)


def test_policy_wrong_number_of_logits(env):
    """Three logits for a Discrete(2) space raise ValueError."""

    def func(S, is_training):
        return {"logits": hk.Linear(3)(S)}

    with pytest.raises(ValueError, match="logits"):
        a2c_jax.Policy(func, env)


def test_policy_not_a_dict(env):
    """A policy function returning a bare array raises ValueError."""

    def func(S, is_training):
        return hk.Linear(2)(S)

    with pytest.raises(ValueError):
        a2c_jax.Policy(func, env)


def test_not_callable(env):
    """func must be callable."""
    with pytest.raises(TypeError):
        a2c_jax.V("not a function", env)
