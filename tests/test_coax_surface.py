"""coax's A2C/PPO surface on V and Policy: soft_update, copy, value transforms, composite
observation spaces, KLDivRegularizer and the signature check, each against an independent reference."""

import gymnasium
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import device_copy, func_pi, func_v, host_copy, jnp_logits, make_batch

import a2c_jax
from a2c_jax.policy_objectives import VanillaPG
from a2c_jax.regularizers import KLDivRegularizer
from a2c_jax.value_transforms import LogTransform, ValueTransform


def test_soft_update_against_numpy(env):
    """params become (1 - tau) own + tau other, leaf by leaf; tau 0 and 1 are exact."""
    v, other = a2c_jax.V(func_v, env, random_seed=1), a2c_jax.V(func_v, env, random_seed=7)
    own, theirs = host_copy(v.params), host_copy(other.params)
    v.soft_update(other, tau=0.25)
    jax.tree.map(lambda got, a, b: np.testing.assert_allclose(got, 0.75 * a + 0.25 * b, rtol=1e-6),
                 host_copy(v.params), own, theirs)
    jax.tree.map(np.testing.assert_array_equal, host_copy(other.params), theirs)  # untouched
    before = host_copy(v.params)
    v.soft_update(other, tau=0.0)
    jax.tree.map(np.testing.assert_array_equal, host_copy(v.params), before)
    v.soft_update(other, tau=1.0)
    jax.tree.map(np.testing.assert_array_equal, host_copy(v.params), theirs)


def test_soft_update_policy_target_follows(env):
    """coax's PPO pattern: pi_old = pi.copy(); pi_old.soft_update(pi, tau) converges to pi."""
    pi = a2c_jax.Policy(func_pi, env, random_seed=2)
    pi_old = pi.copy()
    pi.params = jax.tree.map(lambda x: x + 1.0, pi.params)
    for _ in range(200):
        pi_old.soft_update(pi, tau=0.1)
    # the gap shrinks by 0.9 per step: 0.9**200 ~ 7e-10 of the initial gap of 1
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5),
                 host_copy(pi_old.params), host_copy(pi.params))


def test_soft_update_errors(env):
    v = a2c_jax.V(func_v, env, random_seed=1)
    with pytest.raises(ValueError, match=r"tau must be in \[0, 1\], got 1.5"):
        v.soft_update(v.copy(), tau=1.5)
    with pytest.raises(ValueError, match="tau"):
        v.soft_update(v.copy(), tau=-0.1)
    with pytest.raises(TypeError, match="needs another V"):
        v.soft_update(a2c_jax.Policy(func_pi, env, random_seed=1), tau=0.1)

    def wider(S, is_training):
        with hk.experimental.name_scope("torso"):
            X = jax.nn.relu(hk.Linear(16)(S))
        with hk.experimental.name_scope("v"):
            return hk.Linear(1)(X).ravel()

    with pytest.raises(ValueError, match="module 'torso/linear' differs"):
        v.soft_update(a2c_jax.V(wider, env), tau=0.1)

    def renamed(S, is_training):
        return hk.Linear(1, name="other")(S).ravel()

    with pytest.raises(ValueError, match="module '(other|torso/linear|v/linear)' differs"):
        v.soft_update(a2c_jax.V(renamed, env), tau=0.1)


def test_copy_deep_is_independent(env, rng):
    """A deep copy's params are separate arrays: updating the original leaves the copy alone."""
    v = a2c_jax.V(func_v, env, random_seed=1)
    v_copy = v.copy(deep=True)
    before = host_copy(v_copy.params)
    a2c_jax.td_learning.SimpleTD(v).update(make_batch(rng, 8))
    jax.tree.map(np.testing.assert_array_equal, host_copy(v_copy.params), before)
    assert not np.allclose(host_copy(v.params)["v/linear"]["w"], before["v/linear"]["w"])


def test_log_transform_against_numpy():
    x = np.array([-1e4, -3.0, -0.5, 0.0, 0.5, 3.0, 1e4], np.float32)
    for scale in (1.0, 10.0):
        t = LogTransform(scale)
        want = np.sign(x) * scale * np.log(1 + np.abs(x.astype(np.float64)) / scale)
        np.testing.assert_allclose(t.transform_func(x), want, rtol=1e-6)
        np.testing.assert_allclose(t.inverse_func(t.transform_func(x)), x, rtol=1e-5)
    with pytest.raises(ValueError, match="scale"):
        LogTransform(0.0)


def test_v_with_value_transform_object(env, rng):
    """V accepts a coax-style transform object; values come back through the inverse."""
    t = LogTransform()
    v = a2c_jax.V(func_v, env, value_transform=t, random_seed=1)
    plain = a2c_jax.V(func_v, env, random_seed=1)  # same init: func's raw outputs agree
    S = rng.normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(v.batch(S), np.asarray(t.inverse_func(plain.batch(S))), rtol=1e-6)

    class CoaxStyle:  # duck-typed, as coax's ValueTransform subclasses are
        transform_func, inverse_func = staticmethod(jnp.tanh), staticmethod(jnp.arctanh)

    assert isinstance(a2c_jax.V(func_v, env, value_transform=CoaxStyle()).value_transform,
                      ValueTransform)
    with pytest.raises(TypeError, match="value_transform"):
        a2c_jax.V(func_v, env, value_transform=jnp.tanh)


def test_td_error_under_a_value_transform(env, rng):
    """With LogTransform and MSE, the loss regresses func(S) on transform(G), so the TD error
    -B dL/dfunc(S) is transform(G) - func(S), in the transformed space (as coax)."""
    from conftest import np_value

    t = LogTransform()
    v = a2c_jax.V(func_v, env, value_transform=t, random_seed=1)
    td = a2c_jax.td_learning.SimpleTD(v, loss_function=a2c_jax.value_losses.mse)
    batch = make_batch(rng, 12, reward_scale=5.0)
    params = host_copy(v.params)
    out, out_next = np_value(params, batch.S), np_value(params, batch.S_next)  # func's outputs
    G = batch.Rn + batch.In * np.sign(out_next) * np.expm1(np.abs(out_next))  # value space
    want = np.sign(G) * np.log1p(np.abs(G)) - out
    np.testing.assert_allclose(td.td_error(batch), want, rtol=1e-4, atol=1e-5)
    _, td_error = td.update(batch, return_td_error=True)
    np.testing.assert_allclose(td_error, want, rtol=1e-4, atol=1e-5)


class _TupleObs(gymnasium.ObservationWrapper):
    """CartPole seen as a pair (the observation and twice it)."""

    def __init__(self, env):
        super().__init__(env)
        self.observation_space = gymnasium.spaces.Tuple((env.observation_space,) * 2)

    def observation(self, o):
        return (o, 2 * o)


class _DictObs(gymnasium.ObservationWrapper):
    def __init__(self, env):
        super().__init__(env)
        self.observation_space = gymnasium.spaces.Dict(
            {"x": env.observation_space, "d": gymnasium.spaces.Discrete(3)})

    def observation(self, o):
        return {"x": o, "d": 2}


@pytest.mark.parametrize("wrapper", [_TupleObs, _DictObs])
def test_composite_observations_reach_func_as_batched_pytrees(wrapper):
    """func receives a tuple/dict of batched arrays (Discrete one-hot), and the updaters and the
    tracer carry them: coax's default preprocessor."""
    env = wrapper(gymnasium.make("CartPole-v1"))
    seen = []

    def flat(S):
        seen.append(jax.tree.map(lambda x: (x.shape, str(x.dtype)), S))
        return jnp.concatenate([x.reshape(x.shape[0], -1) for x in jax.tree.leaves(S)], axis=1)

    def fv(S, is_training):
        return hk.Linear(1)(flat(S)).ravel()

    def fpi(S, is_training):
        return {"logits": hk.Linear(2)(flat(S))}

    v, pi = a2c_jax.V(fv, env, random_seed=0), a2c_jax.Policy(fpi, env, random_seed=0)
    first = seen[0]
    if wrapper is _TupleObs:
        assert first == (((1, 4), "float32"), ((1, 4), "float32"))
    else:
        assert first == {"d": ((1, 3), "float32"), "x": ((1, 4), "float32")}
    td, pg = a2c_jax.td_learning.SimpleTD(v), VanillaPG(pi)
    tracer = a2c_jax.reward_tracing.NStep(n=2, gamma=0.9)
    s, _ = env.reset(seed=0)
    for _ in range(20):
        a, logp = pi(s, return_logp=True)
        s_next, r, term, trunc, _ = env.step(a)
        tracer.add(s, a, r, term or trunc, logp)
        while tracer:
            b = tracer.pop()
            assert jax.tree.map(np.shape, b.S) == jax.tree.map(lambda x: (1, *np.shape(x)), s)
            _, td_error = td.update(b, return_td_error=True)
            assert pg.update(b, td_error)["VanillaPG/skipped"] == 0.0
        s = env.reset()[0] if term or trunc else s_next
    assert np.isfinite(v(s))
    if wrapper is _DictObs:  # one observation with a missing key, or an extra one
        with pytest.raises(ValueError, match=r"keys \['d', 'x'\]"):
            v({"x": s["x"]})
        with pytest.raises(ValueError, match=r"keys \['d', 'x'\]"):
            pi({**s, "extra": 0})
    S2 = jax.tree.map(lambda x: np.stack([x, x]), s)
    assert pi.batch(S2).shape == (2,)
    with pytest.raises(ValueError, match="batch sizes"):
        v.batch(jax.tree.map(lambda x, k: np.stack([x] * k), s,
                             (2, 3) if wrapper is _TupleObs else {"d": 2, "x": 3}))


def test_kl_div_regularizer_gradient(pi, batch, rng):
    """VanillaPG + KLDivRegularizer(β, priors): the gradient of -mean(W Adv log π) +
    β mean(W KL(π || prior)), written without the library, for default and given priors."""
    adv = rng.normal(size=16).astype(np.float32)
    prior_logits = np.array([0.3, -1.2], np.float32)
    for priors, q_logits in ((None, np.zeros(2, np.float32)), ({"logits": prior_logits}, prior_logits)):
        beta = 0.7
        reg = KLDivRegularizer(pi, beta=beta, priors=priors)
        vpg = VanillaPG(pi, regularizer=reg)

        def ref_loss(params):
            logp_all = jax.nn.log_softmax(jnp_logits(params, batch.S))
            logq = jax.nn.log_softmax(jnp.asarray(q_logits))
            kl = jnp.sum(jnp.exp(logp_all) * (logp_all - logq), axis=1)
            log_pi = jnp.take_along_axis(logp_all, jnp.asarray(batch.A)[:, None], axis=1)[:, 0]
            return -jnp.mean(batch.W * adv * log_pi) + beta * jnp.mean(batch.W * kl), jnp.mean(kl)

        grads, _, metrics = vpg.grads_and_metrics(batch, adv)
        params = device_copy(pi.params)
        (want_loss, want_kl), want = jax.value_and_grad(ref_loss, has_aux=True)(params)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                     host_copy(grads), host_copy(want))
        assert metrics["VanillaPG/loss"] == pytest.approx(float(want_loss), rel=1e-5, abs=1e-6)
        assert metrics["VanillaPG/kl_div"] == pytest.approx(float(want_kl), rel=1e-5, abs=1e-7)


def test_kl_div_regularizer_errors(pi, v, pi_box):
    with pytest.raises(TypeError, match="needs the Policy"):
        KLDivRegularizer(v)
    with pytest.raises(ValueError, match="beta"):
        KLDivRegularizer(pi, beta=-1.0)
    with pytest.raises(ValueError, match=r"keys \['logits'\]"):
        KLDivRegularizer(pi, priors={"mu": np.zeros(2)})
    with pytest.raises(ValueError, match=r"priors\['logits'\] has shape \(3,\)"):
        KLDivRegularizer(pi, priors={"logits": np.zeros(3)})
    with pytest.raises(ValueError, match=r"priors\['logits'\] must be finite"):
        KLDivRegularizer(pi, priors={"logits": np.array([0.0, np.nan])})
    # a Box policy's default prior is the standard normal of the unsquashed variate
    reg = KLDivRegularizer(pi_box)
    assert set(reg.priors) == {"mu", "logvar"}
    assert all(np.all(x == 0) and x.shape == (1, 1) for x in reg.priors.values())


def test_func_without_is_training_is_a_clear_error(env):
    def func_v_one_arg(S):
        return hk.Linear(1)(S).ravel()

    with pytest.raises(TypeError, match=r"func_v_one_arg\(S\) is not.*is_training"):
        a2c_jax.V(func_v_one_arg, env)
    with pytest.raises(TypeError, match="is_training"):
        a2c_jax.Policy(lambda S: {"logits": hk.Linear(2)(S)}, env)
    # *args and defaults are fine
    a2c_jax.V(lambda S, *rest: hk.Linear(1)(S).ravel(), env)
