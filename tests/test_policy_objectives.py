"""VanillaPG and PPOClip against gradients of losses written independently in jax.numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import device_copy, host_copy, jnp_logits, make_batch, np_log_softmax, np_logits

from a2c_jax.policy_objectives import PPOClip, VanillaPG
from a2c_jax.regularizers import EntropyRegularizer
from a2c_jax.td_learning import SimpleTD


def ref_log_pi(params, batch):
    logp_all = jax.nn.log_softmax(jnp_logits(params, batch.S))
    return jnp.take_along_axis(logp_all, jnp.asarray(batch.A)[:, None], axis=1)[:, 0]


def ref_vpg_loss(params, batch, Adv, beta=0.0):
    """-mean(W Adv log π(A|S)) - β mean(W H[π(.|S)]), written without the library."""
    logp_all = jax.nn.log_softmax(jnp_logits(params, batch.S))
    entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=1)
    return -jnp.mean(batch.W * Adv * ref_log_pi(params, batch)) - beta * jnp.mean(batch.W * entropy)


def ref_ppo_loss(params, batch, Adv, eps):
    ratio = jnp.exp(ref_log_pi(params, batch) - batch.logP)
    surrogate = jnp.minimum(ratio * Adv, jnp.clip(ratio, 1 - eps, 1 + eps) * Adv)
    return -jnp.mean(batch.W * surrogate)


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    a, b = host_copy(a), host_copy(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


@pytest.fixture
def adv(rng):
    return rng.normal(size=16).astype(np.float32)


def test_vanilla_pg_gradient(pi, batch, adv):
    """VanillaPG's gradient and loss equal jax.grad of -mean(W Adv log_softmax(logits)[A])."""
    vpg = VanillaPG(pi)
    grads, _, metrics = vpg.grads_and_metrics(batch, adv)
    params = device_copy(pi.params)
    assert_trees_close(grads, jax.grad(ref_vpg_loss)(params, batch, adv))
    assert metrics["VanillaPG/loss"] == pytest.approx(
        float(ref_vpg_loss(params, batch, adv)), rel=1e-5, abs=1e-6
    )


def test_entropy_regularizer_gradient(pi, batch, adv):
    """With EntropyRegularizer(β) the gradient includes -β ∇ mean(W H), as in the reference."""
    beta = 0.3
    vpg = VanillaPG(pi, regularizer=EntropyRegularizer(pi, beta=beta))
    grads, _, metrics = vpg.grads_and_metrics(batch, adv)
    params = device_copy(pi.params)
    assert_trees_close(grads, jax.grad(ref_vpg_loss)(params, batch, adv, beta))
    logp = np_log_softmax(np_logits(params, batch.S))
    h = -(np.exp(logp) * logp).sum(1)
    assert metrics["VanillaPG/entropy"] == pytest.approx(h.mean(), rel=1e-5)


def test_vanilla_pg_update_is_one_sgd_step(pi, batch, adv):
    """update() with optax.sgd(lr) moves params by -lr * the reference gradient."""
    lr = 0.1
    vpg = VanillaPG(pi, optimizer=optax.sgd(lr))
    params = device_copy(pi.params)
    expected = jax.tree.map(
        lambda p, g: p - lr * g, params, jax.grad(ref_vpg_loss)(params, batch, adv)
    )
    metrics = vpg.update(batch, adv)
    assert metrics["VanillaPG/skipped"] == 0.0
    assert_trees_close(pi.params, expected)


def test_ppo_clip_equals_vanilla_pg_at_ratio_one(pi, batch, adv):
    """With batch.logP = current log π(A|S) (ratio 1), PPOClip's gradient equals VanillaPG's."""
    logp_now = np_log_softmax(np_logits(pi.params, batch.S))[np.arange(16), batch.A]
    b = batch._replace(logP=logp_now.astype(np.float32))
    g_ppo, _, m_ppo = PPOClip(pi, epsilon=0.2).grads_and_metrics(b, adv)
    g_vpg, _, _ = VanillaPG(pi).grads_and_metrics(b, adv)
    assert_trees_close(g_ppo, g_vpg, rtol=1e-4, atol=1e-6)
    assert m_ppo["PPOClip/ratio"] == pytest.approx(1.0, abs=1e-5)
    assert m_ppo["PPOClip/clip_fraction"] == 0.0


@pytest.mark.parametrize("eps", [0.05, 0.2])
def test_ppo_clip_gradient_off_policy(pi, batch, adv, eps):
    """PPOClip with ratios far from 1: loss and gradient equal jax.grad of the clipped surrogate."""
    ppo = PPOClip(pi, epsilon=eps)
    grads, _, metrics = ppo.grads_and_metrics(batch, adv)
    params = device_copy(pi.params)
    ratio = np.exp(np.asarray(ref_log_pi(params, batch)) - batch.logP)
    assert np.any(np.abs(ratio - 1) > eps)  # some samples are clipped
    assert_trees_close(grads, jax.grad(ref_ppo_loss)(params, batch, adv, eps))
    assert metrics["PPOClip/loss"] == pytest.approx(
        float(ref_ppo_loss(params, batch, adv, eps)), rel=1e-5, abs=1e-6
    )
    assert metrics["PPOClip/clip_fraction"] == pytest.approx(np.mean(np.abs(ratio - 1) > eps))


def test_bad_inputs(pi, batch, adv):
    """Adv of the wrong shape, epsilon <= 0 and a batch without logP raise ValueError."""
    vpg = VanillaPG(pi)
    with pytest.raises(ValueError, match="Adv"):
        vpg.update(batch, adv[:5])
    with pytest.raises(ValueError, match="Adv"):
        vpg.update(batch, adv[:, None])
    for eps in (0.0, -0.1):
        with pytest.raises(ValueError):
            PPOClip(pi, epsilon=eps)
    ppo = PPOClip(pi)
    with pytest.raises(ValueError):
        ppo.epsilon = 0.0
    assert ppo.epsilon == 0.2
    with pytest.raises(ValueError, match="logP"):
        ppo.update(batch._replace(logP=None), adv)
    with pytest.raises(ValueError):
        EntropyRegularizer(pi, beta=-1.0)
    with pytest.raises(TypeError):
        VanillaPG(pi, regularizer="entropy")
    with pytest.raises(TypeError):
        vpg.update(dict(batch._asdict()), adv)


def test_hyperparameter_change_does_not_recompile(pi, batch, adv):
    """Changing ppo.epsilon and the regularizer's beta changes the result but not the cache size."""
    reg = EntropyRegularizer(pi, beta=0.0)
    ppo = PPOClip(pi, regularizer=reg, epsilon=0.2)
    params = device_copy(pi.params)
    _, _, m1 = ppo.grads_and_metrics(batch, adv)
    ppo.epsilon = 0.1
    _, _, m2 = ppo.grads_and_metrics(batch, adv)
    reg.beta = 0.5
    grads, _, m3 = ppo.grads_and_metrics(batch, adv)
    assert ppo._grads_jit._cache_size() == 1
    assert m1["PPOClip/loss"] == pytest.approx(
        float(ref_ppo_loss(params, batch, adv, 0.2)), rel=1e-5
    )
    assert m2["PPOClip/loss"] == pytest.approx(
        float(ref_ppo_loss(params, batch, adv, 0.1)), rel=1e-5
    )
    assert m3["PPOClip/loss"] != pytest.approx(m2["PPOClip/loss"])  # beta took effect

    def loss_with_entropy(p):
        logp_all = jax.nn.log_softmax(jnp_logits(p, batch.S))
        h = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=1)
        return ref_ppo_loss(p, batch, adv, 0.1) - 0.5 * jnp.mean(batch.W * h)

    assert_trees_close(grads, jax.grad(loss_with_entropy)(params))
    # the fused update step: several updates with changing hyperparameters, one compilation
    for eps in (0.3, 0.15, 0.25):
        ppo.epsilon = eps
        reg.beta = eps / 10
        ppo.update(batch, adv)
    assert ppo._step_jit._cache_size() == 1


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_gradient_is_skipped(pi, batch, adv, bad):
    """A NaN/inf advantage never reaches the params: params, opt state unchanged; skipped == 1."""
    vpg = VanillaPG(pi, optimizer=optax.adam(0.01))
    vpg.update(batch, adv)  # a normal step first, so the adam moments are non-zero
    params, opt_state = host_copy(pi.params), host_copy(vpg.optimizer_state)
    bad_adv = adv.copy()
    bad_adv[2] = bad
    metrics = vpg.update(batch, bad_adv)
    assert metrics["VanillaPG/skipped"] == 1.0
    jax.tree.map(np.testing.assert_array_equal, host_copy(pi.params), params)
    jax.tree.map(np.testing.assert_array_equal, host_copy(vpg.optimizer_state), opt_state)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(host_copy(pi.params)))
    # apply_grads skips non-finite gradients too
    grads = jax.tree.map(lambda x: jnp.full_like(x, bad), pi.params)
    vpg.apply_grads(grads)
    jax.tree.map(np.testing.assert_array_equal, host_copy(pi.params), params)
    assert vpg.update(batch, adv)["VanillaPG/skipped"] == 0.0


def test_fused_step_under_user_jit_and_scan(pi, rng):
    """vpg.step inside a user's jit and lax.scan gives the same params as update() in a loop."""
    batches = [make_batch(rng, 8) for _ in range(3)]
    advs = [rng.normal(size=8).astype(np.float32) for _ in range(3)]
    vpg = VanillaPG(pi, optimizer=optax.adam(0.05))
    params0, opt0 = host_copy(pi.params), host_copy(vpg.optimizer_state)

    @jax.jit
    def train(params, opt_state, stacked_batches, stacked_advs):
        def body(carry, xs):
            params, opt_state, metrics = vpg.step(*carry, *xs)
            return (params, opt_state), metrics["VanillaPG/loss"]

        return jax.lax.scan(body, (params, opt_state), (stacked_batches, stacked_advs))

    stacked = jax.tree.map(lambda *xs: np.stack(xs), *batches)
    (p_scan, o_scan), losses = train(
        device_copy(params0), device_copy(opt0), stacked, np.stack(advs)
    )
    step = jax.jit(vpg.step)
    p_jit, o_jit = device_copy(params0), device_copy(opt0)
    ref_losses = []
    for b, a in zip(batches, advs, strict=True):
        ref_losses.append(float(ref_vpg_loss(p_jit, b, a)))
        p_jit, o_jit, _ = step(p_jit, o_jit, b, a)
    loop_losses = [vpg.update(b, a)["VanillaPG/loss"] for b, a in zip(batches, advs, strict=True)]
    assert_trees_close(p_scan, pi.params)
    assert_trees_close(p_jit, pi.params)
    assert_trees_close(o_scan, vpg.optimizer_state)
    np.testing.assert_allclose(losses, loop_losses, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5, atol=1e-6)


def test_loss_fn_jit_and_eager_agree(pi, batch, adv):
    """The pure loss_fn gives the same loss with and without jit, equal to the reference."""
    ppo = PPOClip(pi, regularizer=EntropyRegularizer(pi, beta=0.1))
    args = (pi.params, pi.function_state, ppo.hyperparams, jax.random.PRNGKey(0), batch, adv)
    loss_jit, _ = jax.jit(ppo.loss_fn)(*args)
    with jax.disable_jit():
        loss_eager, _ = ppo.loss_fn(*args)
    assert float(loss_jit) == pytest.approx(float(loss_eager), rel=1e-5, abs=1e-6)
    params = device_copy(pi.params)
    logp_all = jax.nn.log_softmax(jnp_logits(params, batch.S))
    h = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=1)
    ref = ref_ppo_loss(params, batch, adv, 0.2) - 0.1 * jnp.mean(batch.W * h)
    assert float(loss_jit) == pytest.approx(float(ref), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("field, bad", [
    ("W", lambda b: b.W[:, None]),          # [B, 1]: would broadcast to [B, B] in the loss
    ("W", lambda b: b.W[:1]),               # [1]: would broadcast to [B]
    ("logP", lambda b: b.logP[:, None]),
    ("Rn", lambda b: b.Rn[:, None]),
    ("In", lambda b: b.In[:-1]),
    ("S", lambda b: b.S[:-1]),
    ("S_next", lambda b: b.S_next[:1]),     # a batch of 1 would broadcast
    ("A", lambda b: b.A[:-1]),
])
def test_batch_fields_with_the_wrong_rows_are_refused_by_every_updater(pi, v, batch, adv, field,
                                                                      bad):
    """A field whose shape is not [B] (scalars) or [B, ...] (arrays) raises a ValueError naming the
    field, from every updater entry point, before anything is computed or changed."""
    bad_batch = batch._replace(**{field: bad(batch)})
    before = (device_copy(pi.params), device_copy(v.params))
    calls = [
        lambda: VanillaPG(pi).update(bad_batch, adv),
        lambda: PPOClip(pi).update(bad_batch, adv),
        lambda: VanillaPG(pi).grads_and_metrics(bad_batch, adv),
        lambda: SimpleTD(v).update(bad_batch),
        lambda: SimpleTD(v).grads_and_metrics(bad_batch),
        lambda: SimpleTD(v).td_error(bad_batch),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=rf"TransitionBatch\.{field} has (shape|type)"):
            call()
    for old, new in zip(before, (pi.params, v.params)):
        jax.tree.map(np.testing.assert_array_equal, host_copy(old), host_copy(new))


def test_regularizer_and_action_checks(pi, v, batch, adv):
    """EntropyRegularizer needs a Policy and a finite beta; a host batch with actions outside the
    Discrete space, or non-integer actions, is refused before the step (it would only show as a
    non-finite loss and a silently skipped update)."""
    with pytest.raises(TypeError, match="Policy"):
        EntropyRegularizer(v)
    with pytest.raises(ValueError, match="finite"):
        EntropyRegularizer(pi, beta=float("inf"))
    vpg = VanillaPG(pi)
    A = np.asarray(batch.A)
    for bad in (np.where(np.arange(len(A)) == 3, 2, A), np.where(np.arange(len(A)) == 0, -1, A)):
        with pytest.raises(ValueError, match="outside"):
            vpg.update(batch._replace(A=bad.astype(A.dtype)), adv)
    with pytest.raises(ValueError, match="integer"):
        vpg.update(batch._replace(A=A.astype(np.float32)), adv)
    vpg.update(batch._replace(A=A), adv)
