"""SimpleTD against TD errors and value losses recomputed in numpy from the pre-update params."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import host_copy, make_batch, np_value

from a2c_jax.td_learning import SimpleTD
from a2c_jax.value_losses import huber, mse


def np_td_error(params, batch, target_params=None):
    """Rn + In * v_targ(S_next) - v(S), float64 numpy."""
    target_params = params if target_params is None else target_params
    return batch.Rn + batch.In * np_value(target_params, batch.S_next) - np_value(params, batch.S)


def np_coax_td_error(params, batch, target_params=None):
    """The default (Huber, delta 1) TD error: -B dL/dv(S) = clip(G - v(S), -1, 1)."""
    return np.clip(np_td_error(params, batch, target_params), -1.0, 1.0)


def np_huber(err, w, delta=1.0):
    a = np.abs(err)
    return np.mean(w * np.where(a <= delta, 0.5 * a**2, delta * (a - 0.5 * delta)))


def np_mse(err, w):
    return np.mean(w * 0.5 * err**2)


def test_update_returns_pre_update_td_error(v, rng):
    """update(..., return_td_error=True) returns Rn + In v(S') - v(S) of the params before it."""
    batch = make_batch(rng, 16)
    td = SimpleTD(v, optimizer=optax.sgd(0.05), loss_function=mse)
    before = host_copy(v.params)
    metrics, td_error = td.update(batch, return_td_error=True)
    want = np_td_error(before, batch)
    assert td_error.shape == (16,)
    np.testing.assert_allclose(td_error, want, rtol=1e-5, atol=1e-5)
    assert metrics["SimpleTD/td_error"] == pytest.approx(np.mean(want), abs=1e-5)
    assert metrics["SimpleTD/td_error_abs"] == pytest.approx(np.mean(np.abs(want)), abs=1e-5)
    assert metrics["SimpleTD/skipped"] == 0.0
    changed = jax.tree.map(lambda a, b: not np.allclose(np.asarray(a), b), v.params, before)
    assert all(jax.tree.leaves(changed)), "every parameter should move under SGD"
    # a second update reports the TD error of the params the first one produced
    after_first = host_copy(v.params)
    _, td_error2 = td.update(batch, return_td_error=True)
    np.testing.assert_allclose(td_error2, np_td_error(after_first, batch), rtol=1e-5, atol=1e-5)
    assert not np.allclose(td_error2, td_error)


def quartic(y_true, y_pred, w=None):
    """A custom loss, mean(w (y_pred - y_true)^4) / 4: -B dL/dv = (G - v)^3 at unit weights."""
    w = jnp.ones_like(y_pred) if w is None else w
    return jnp.mean(w * (y_pred - y_true) ** 4) / 4


def _hand_td_error(loss_name, err):
    """-B dL/dv(S) worked out by hand for each loss, from err = G - v(S) (float64)."""
    if loss_name == "mse":  # L = mean(0.5 (v - G)^2): -B dL/dv = G - v
        return err
    if loss_name == "huber":  # quadratic inside |err| <= 1, linear (slope 1) outside
        return np.where(np.abs(err) <= 1.0, err, np.sign(err))
    return err**3  # quartic: -B * (v - G)^3 / B


@pytest.mark.parametrize("loss_name", ["mse", "huber", "default", "quartic"])
def test_td_error_is_minus_b_dloss_dv(v, rng, loss_name):
    """update(..., return_td_error=True) and td_error() give -B dL/dv(S), computed by hand per loss.

    The errors straddle Huber's delta, and W is not uniform: the TD error ignores W (coax calls
    the loss's gradient without weights), while the loss metric uses it.
    """
    batch = make_batch(rng, 32, reward_scale=3.0)
    batch = batch._replace(W=rng.uniform(0.2, 2.0, size=32).astype(np.float32))
    loss_function = {"mse": mse, "huber": huber, "default": None, "quartic": quartic}[loss_name]
    td = SimpleTD(v, optimizer=optax.sgd(0.01), loss_function=loss_function)
    err = np_td_error(host_copy(v.params), batch)
    assert np.any(np.abs(err) < 1) and np.any(np.abs(err) > 1)
    want = _hand_td_error("huber" if loss_name == "default" else loss_name, err)
    np.testing.assert_allclose(td.td_error(batch), want, rtol=1e-4, atol=1e-5)
    metrics, td_error = td.update(batch, return_td_error=True)
    np.testing.assert_allclose(td_error, want, rtol=1e-4, atol=1e-5)
    assert metrics["SimpleTD/td_error"] == pytest.approx(np.mean(want), rel=1e-4, abs=1e-5)
    if loss_name == "default":
        assert td.loss_function is huber  # coax's default


def test_td_error_from_loss_free_function(rng):
    """The pure helper, jitted: -B dL/dy_pred against numpy for Huber with delta 0.5."""
    from functools import partial

    from a2c_jax.td_learning import td_error_from_loss

    y_true = rng.normal(scale=2, size=10).astype(np.float32)
    y_pred = rng.normal(scale=2, size=10).astype(np.float32)
    got = jax.jit(td_error_from_loss, static_argnums=0)(partial(huber, delta=0.5), y_true, y_pred)
    np.testing.assert_allclose(got, np.clip(y_true - y_pred, -0.5, 0.5), rtol=1e-5, atol=1e-6)


def test_sgd_step_matches_numpy_gradient(v, rng):
    """One SGD step (mse loss) moves the params by -lr * the numpy finite-difference gradient."""
    batch = make_batch(rng, 8, reward_scale=0.5)
    lr = 1e-3
    td = SimpleTD(v, optimizer=optax.sgd(lr), loss_function=mse)
    before = host_copy(v.params)

    def np_loss(flat):
        p = unflatten(flat)
        G = batch.Rn + batch.In * np_value(before, batch.S_next)  # target is held fixed
        return np_mse(np_value(p, batch.S) - G, batch.W)

    leaves, treedef = jax.tree.flatten(before)
    sizes = [x.size for x in leaves]

    def unflatten(flat):
        parts = np.split(flat, np.cumsum(sizes)[:-1])
        return jax.tree.unflatten(
            treedef, [p.reshape(x.shape) for p, x in zip(parts, leaves, strict=True)]
        )

    flat = np.concatenate([x.ravel() for x in leaves]).astype(np.float64)
    eps = 1e-6
    grad = np.array(
        [(np_loss(flat + eps * e) - np_loss(flat - eps * e)) / (2 * eps) for e in np.eye(flat.size)]
    )
    metrics = td.update(batch)
    assert metrics["SimpleTD/loss"] == pytest.approx(np_loss(flat), rel=1e-5, abs=1e-7)
    after = np.concatenate([np.asarray(x).ravel() for x in jax.tree.leaves(v.params)])
    np.testing.assert_allclose(after, flat - lr * grad, rtol=1e-5, atol=1e-6)


def test_v_targ_copy_used_for_target(v, rng):
    """With v_targ = v.copy() (then perturbed), the target uses v_targ's params, v(S) uses v's."""
    batch = make_batch(rng, 12)
    v_targ = v.copy()
    v_targ.params = jax.tree.map(lambda x: x + 0.3, v_targ.params)
    td = SimpleTD(v, v_targ=v_targ, optimizer=optax.adam(0.01))
    params, targ = host_copy(v.params), host_copy(v_targ.params)
    want = np_coax_td_error(params, batch, targ)
    assert not np.allclose(want, np_coax_td_error(params, batch))  # the perturbation matters
    np.testing.assert_allclose(td.td_error(batch), want, rtol=1e-5, atol=1e-5)
    _, td_error = td.update(batch, return_td_error=True)
    np.testing.assert_allclose(td_error, want, rtol=1e-5, atol=1e-5)
    # v_targ is not touched by the update (and its buffers were not donated)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), b), v_targ.params, targ)


@pytest.mark.parametrize("loss_function", [None, huber, mse])
def test_value_loss_metric(v, rng, loss_function):
    """The reported loss equals numpy huber/mse of the pre-update TD errors weighted by W."""
    batch = make_batch(rng, 32, reward_scale=3.0)  # errors on both sides of huber's delta = 1
    td = SimpleTD(v, loss_function=loss_function)
    assert td.loss_function in (huber, mse)  # the default is one of the two documented losses
    np_loss = np_huber if td.loss_function is huber else np_mse
    err = np_td_error(host_copy(v.params), batch)
    assert np.any(np.abs(err) < 1) and np.any(np.abs(err) > 1)
    metrics = td.update(batch)
    assert metrics["SimpleTD/loss"] == pytest.approx(np_loss(err, batch.W), rel=1e-5)


def test_value_losses_vs_numpy(rng):
    """value_losses.huber/mse vs numpy, with and without weights, jit and eager."""
    y_true = rng.normal(scale=2, size=20).astype(np.float32)
    y_pred = rng.normal(scale=2, size=20).astype(np.float32)
    w = rng.uniform(size=20).astype(np.float32)
    err = y_pred.astype(np.float64) - y_true
    for fn, ref in [(huber, np_huber), (mse, np_mse)]:
        assert float(fn(y_true, y_pred)) == pytest.approx(ref(err, 1.0), rel=1e-5)
        assert float(jax.jit(fn)(y_true, y_pred, w)) == pytest.approx(ref(err, w), rel=1e-5)
        with jax.disable_jit():
            assert float(fn(y_true, y_pred, w)) == pytest.approx(ref(err, w), rel=1e-5)
    assert float(huber(y_true, y_pred, delta=0.5)) == pytest.approx(
        np_huber(err, 1.0, 0.5), rel=1e-5
    )


def test_td_error_fn_jit_and_eager_agree(v, rng):
    """The pure td_error_fn gives the numpy TD error with and without jit."""
    batch = make_batch(rng, 6)
    td = SimpleTD(v)
    key = jax.random.PRNGKey(0)
    _, _, jitted = jax.jit(td.td_error_fn)(v.params, v.function_state, key, batch)
    with jax.disable_jit():
        _, _, eager = td.td_error_fn(v.params, v.function_state, key, batch)
    want = np_coax_td_error(host_copy(v.params), batch)
    np.testing.assert_allclose(jitted, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(eager, want, rtol=1e-5, atol=1e-5)


def test_non_finite_reward_skips_update(v, rng):
    """A NaN in Rn never reaches the params: params and optimizer state unchanged, skipped == 1."""
    batch = make_batch(rng, 8)
    td = SimpleTD(v)
    td.update(batch)  # a normal step first, so the optimizer state is non-trivial
    params, opt_state = host_copy(v.params), host_copy(td.optimizer_state)
    bad = batch._replace(Rn=batch.Rn.copy())
    bad.Rn[3] = np.nan
    metrics = td.update(bad)
    assert metrics["SimpleTD/skipped"] == 1.0
    jax.tree.map(np.testing.assert_array_equal, host_copy(v.params), params)
    jax.tree.map(np.testing.assert_array_equal, host_copy(td.optimizer_state), opt_state)
    assert td.update(batch)["SimpleTD/skipped"] == 0.0


def test_grads_and_metrics_then_apply_equals_update(v, rng):
    """grads_and_metrics + apply_grads gives the same params as update (same batch, same start)."""
    batch = make_batch(rng, 8)
    v2 = v.copy()
    td1, td2 = SimpleTD(v, optimizer=optax.adam(0.01)), SimpleTD(v2, optimizer=optax.adam(0.01))
    td1.update(batch)
    grads, _, metrics = td2.grads_and_metrics(batch)
    td2.apply_grads(grads)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
        host_copy(v.params),
        host_copy(v2.params),
    )


def test_pure_step_under_jit_matches_update(v, rng):
    """The fused pure step, jitted by the caller, matches update() on a copy."""
    batches = [make_batch(rng, 8) for _ in range(3)]
    td = SimpleTD(v, optimizer=optax.adam(0.01))
    params = jax.tree.map(jnp.array, host_copy(v.params))
    opt_state = jax.tree.map(jnp.array, host_copy(td.optimizer_state))
    step = jax.jit(td.step)
    for b in batches:
        params, opt_state, _ = step(params, opt_state, b, None, None)
        td.update(b)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
        host_copy(params),
        host_copy(v.params),
    )


def test_simple_td_rejects_bad_inputs(v, pi, batch):
    """SimpleTD needs a V, and update() a TransitionBatch."""
    with pytest.raises(TypeError):
        SimpleTD(pi)
    td = SimpleTD(v)
    with pytest.raises(TypeError):
        td.update(dict(batch._asdict()))
