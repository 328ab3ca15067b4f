"""Pure losses of actor-critic learning, over explicit arrays (rlax's shape).

Every function here is free, pure and jittable; it checks ranks and shapes at trace time (a
``[B, 1]`` column passed where ``[B]`` is expected would otherwise broadcast into ``[B, B]``) and
adds no ``jit`` of its own. In coax's batched names: ``logp_t`` is ``log π(A|S)``, ``logp_old_t``
the batch's ``logP``, ``adv_t`` is ``Adv``, ``w_t`` is ``W``, ``v_t`` is ``v(S)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp

from ..proba_dists import BaseProbaDist

#: ``loss(y_true, y_pred, w) -> scalar``, the weighted mean over the batch (``a2c_jax.value_losses``)
ValueLossFn = Callable[..., chex.Array]
#: distribution parameters: a dict of batched arrays, e.g. ``{'logits': [B, n]}``
DistParams = Any


def _weighted_mean(x_t: chex.Array, w_t: chex.Array | None) -> chex.Array:
    if w_t is None:
        return jnp.mean(x_t)
    chex.assert_equal_shape([x_t, w_t])
    return jnp.mean(w_t * x_t)


def policy_gradient_loss(logp_t: chex.Array, adv_t: chex.Array,
                         w_t: chex.Array | None = None) -> chex.Array:
    """The policy-gradient (REINFORCE) loss, what :class:`~a2c_jax.policy_objectives.VanillaPG`
    minimises.

    ``L = -mean_t(w_t * adv_t * logp_t)``; its gradient is ``-E[adv ∇ log π(a|s)]`` (Williams 1992,
    "Simple statistical gradient-following algorithms"; with ``adv_t`` a TD error this is A2C,
    Mnih et al. 2016, arXiv:1602.01783).

    Args:
        logp_t: ``log π(a_t|s_t)`` under the parameters being differentiated, ``[B]``.
        adv_t: the advantages ``[B]``; the gradient is stopped through them.
        w_t: optional per-sample weights ``[B]`` (e.g. importance weights ``W``).

    Returns:
        The scalar loss.
    """
    chex.assert_rank([logp_t, adv_t], 1)
    chex.assert_type([logp_t, adv_t], float)
    chex.assert_equal_shape([logp_t, adv_t])
    adv_t = jax.lax.stop_gradient(adv_t)
    if w_t is None:
        return -jnp.mean(adv_t * logp_t)
    chex.assert_equal_shape([logp_t, w_t])
    return -jnp.mean(w_t * adv_t * logp_t)


def importance_ratio(logp_t: chex.Array, logp_old_t: chex.Array) -> chex.Array:
    """The likelihood ratio ``ρ_t = π(a_t|s_t) / π_old(a_t|s_t) = exp(logp_t - logp_old_t)``, ``[B]``.

    Args:
        logp_t: ``log π(a_t|s_t)`` under the current parameters, ``[B]``.
        logp_old_t: ``log π_old(a_t|s_t)``, recorded when the action was taken, ``[B]``.
    """
    chex.assert_rank([logp_t, logp_old_t], 1)
    chex.assert_type([logp_t, logp_old_t], float)
    chex.assert_equal_shape([logp_t, logp_old_t])
    return jnp.exp(logp_t - jax.lax.stop_gradient(logp_old_t))


def clip_fraction(ratio_t: chex.Array, epsilon: chex.Numeric) -> chex.Array:
    """The fraction of samples whose ratio lies outside ``[1 - ε, 1 + ε]``: ``mean(|ρ_t - 1| > ε)``.

    PPO's usual diagnostic (a fraction near 1 means the policy moved too far from ``π_old``).

    Args:
        ratio_t: the ratios ``ρ_t`` from :func:`importance_ratio`, ``[B]``.
        epsilon: the clipping range ``ε``, a scalar (may be traced).

    Returns:
        A float32 scalar in ``[0, 1]``.
    """
    chex.assert_rank(ratio_t, 1)
    chex.assert_type(ratio_t, float)
    return jnp.mean((jnp.abs(ratio_t - 1) > epsilon).astype(jnp.float32))


def clipped_surrogate_loss(logp_t: chex.Array, logp_old_t: chex.Array, adv_t: chex.Array,
                           epsilon: chex.Numeric, w_t: chex.Array | None = None) -> chex.Array:
    """PPO's clipped surrogate loss, what :class:`~a2c_jax.policy_objectives.PPOClip` minimises.

    ``L = -mean_t(w_t * min(ρ_t adv_t, clip(ρ_t, 1-ε, 1+ε) adv_t))`` with
    ``ρ_t = exp(logp_t - logp_old_t)`` (Schulman et al. 2017, "Proximal Policy Optimization
    Algorithms", arXiv:1707.06347, eq. 7). At ``ρ_t = 1`` its gradient equals
    :func:`policy_gradient_loss`'s. The ratio and the clip fraction, which PPOClip reports as
    metrics, are :func:`importance_ratio` and :func:`clip_fraction`.

    Args:
        logp_t: ``log π(a_t|s_t)`` under the parameters being differentiated, ``[B]``.
        logp_old_t: ``log π_old(a_t|s_t)`` at collection time, ``[B]``; gradient stopped.
        adv_t: the advantages ``[B]``; gradient stopped.
        epsilon: the clipping range ``ε > 0``, a scalar (may be traced).
        w_t: optional per-sample weights ``[B]``.

    Returns:
        The scalar loss.
    """
    chex.assert_rank([logp_t, logp_old_t, adv_t], 1)
    chex.assert_type([logp_t, logp_old_t, adv_t], float)
    chex.assert_equal_shape([logp_t, logp_old_t, adv_t])
    adv_t = jax.lax.stop_gradient(adv_t)
    ratio_t = importance_ratio(logp_t, logp_old_t)
    clipped_t = jnp.clip(ratio_t, 1 - epsilon, 1 + epsilon)
    surrogate_t = jnp.minimum(ratio_t * adv_t, clipped_t * adv_t)
    return -_weighted_mean(surrogate_t, w_t)


def _batch_size(dist_params: DistParams) -> int:
    """``B``, the leading axis that every leaf of ``dist_params`` shares."""
    leaves = jax.tree.leaves(dist_params)
    if not leaves:
        raise ValueError("dist_params holds no arrays")
    chex.assert_tree_has_only_ndarrays(dist_params)
    chex.assert_rank(leaves[0], set(range(1, 33)))
    chex.assert_equal_shape_prefix(leaves, 1)
    return leaves[0].shape[0]


def entropy_loss(proba_dist: BaseProbaDist, dist_params: DistParams,
                 w_t: chex.Array | None = None) -> chex.Array:
    """The entropy bonus as a loss: ``L = -mean_t(w_t * H[π(.|s_t)])``.

    Minimising it raises the policy's entropy, which keeps it exploring (Mnih et al. 2016,
    arXiv:1602.01783, §4; Williams & Peng 1991). The entropy is ``proba_dist.entropy``.

    Args:
        proba_dist: the policy's distribution, e.g. ``pi.proba_dist``.
        dist_params: its parameters for ``s_t``, each leaf ``[B, ...]``.
        w_t: optional per-sample weights ``[B]``.

    Returns:
        The scalar loss.
    """
    n = _batch_size(dist_params)
    entropy_t = proba_dist.entropy(dist_params)
    chex.assert_shape(entropy_t, (n,))
    return -_weighted_mean(entropy_t, w_t)


def kl_divergence(proba_dist: BaseProbaDist, dist_params: DistParams,
                  prior_params: DistParams) -> chex.Array:
    """``KL[p_t || q_t]`` per sample, ``[B]``, from ``proba_dist.kl_divergence``.

    Args:
        proba_dist: the policy's distribution.
        dist_params: the parameters of ``p``, each leaf ``[B, ...]``.
        prior_params: the parameters of ``q``, each leaf ``[B, ...]`` or ``[1, ...]`` (one prior
            for every sample, broadcast over the batch).
    """
    _batch_size(dist_params)
    chex.assert_trees_all_equal_structs(dist_params, prior_params)

    def broadcast(q: chex.Array, p: chex.Array) -> chex.Array:
        chex.assert_rank(q, p.ndim)
        return jnp.broadcast_to(q, p.shape)

    prior_params = jax.tree.map(broadcast, prior_params, dist_params)
    return proba_dist.kl_divergence(dist_params, prior_params)


def kl_divergence_loss(proba_dist: BaseProbaDist, dist_params: DistParams,
                       prior_params: DistParams, w_t: chex.Array | None = None) -> chex.Array:
    """A penalty that keeps the policy near a prior: ``L = mean_t(w_t * KL[π(.|s_t) || q_t])``.

    (Coax's ``KLDivRegularizer``; the KL penalty of Schulman et al. 2017, arXiv:1707.06347, §4,
    with a fixed ``q``.)

    Args:
        proba_dist: the policy's distribution.
        dist_params: its parameters for ``s_t``, each leaf ``[B, ...]``.
        prior_params: the prior's parameters, each leaf ``[B, ...]`` or ``[1, ...]``.
        w_t: optional per-sample weights ``[B]``.

    Returns:
        The scalar loss.
    """
    return _weighted_mean(kl_divergence(proba_dist, dist_params, prior_params), w_t)


def value_loss(v_t: chex.Array, target_t: chex.Array, loss_fn: ValueLossFn,
               w_t: chex.Array | None = None) -> chex.Array:
    """The regression of values onto targets: ``L = loss_fn(target_t, v_t, w_t)``.

    With :func:`~a2c_jax.value_losses.mse` this is ``mean_t(w_t * ½ (target_t - v_t)²)``, the
    critic's loss of A3C (Mnih et al. 2016, arXiv:1602.01783); the default of
    :class:`~a2c_jax.td_learning.SimpleTD` is :func:`~a2c_jax.value_losses.huber`.

    Args:
        v_t: the predictions ``[B]`` (differentiated).
        target_t: the targets ``[B]``, e.g. :func:`n_step_target`; the gradient is stopped.
        loss_fn: ``loss(y_true, y_pred, w) -> scalar``, the weighted mean over the batch.
        w_t: optional per-sample weights ``[B]`` (passed on as ``w``; ``None`` as it is).

    Returns:
        The scalar loss.
    """
    chex.assert_rank([v_t, target_t], 1)
    chex.assert_type([v_t, target_t], float)
    chex.assert_equal_shape([v_t, target_t])
    if w_t is not None:
        chex.assert_equal_shape([v_t, w_t])
    return loss_fn(jax.lax.stop_gradient(target_t), v_t, w_t)


def td_error_from_loss(loss_fn: ValueLossFn, target_t: chex.Array, v_t: chex.Array) -> chex.Array:
    """coax's TD error ``δ_t = -B * ∂L/∂v_t``: the negative gradient of the value loss, ``[B]``.

    ``L = loss_fn(target_t, v_t, ones)`` is the batch-mean loss, so ``-B * ∂L/∂v_t`` is the
    per-sample error signal: ``target_t - v_t`` under :func:`~a2c_jax.value_losses.mse`, that
    difference clipped to ``[-delta, delta]`` under :func:`~a2c_jax.value_losses.huber`. The
    weights are ones (coax calls the loss without ``W``): ``W`` weights the regression, not the
    error that is handed on as an advantage. The result carries no gradient.

    Args:
        loss_fn: ``loss(y_true, y_pred, w) -> scalar``, the weighted mean over the batch.
        target_t: the targets ``[B]`` (``y_true``), gradient already stopped.
        v_t: the predictions ``[B]`` (``y_pred``).
    """
    chex.assert_rank([target_t, v_t], 1)
    chex.assert_type([target_t, v_t], float)
    chex.assert_equal_shape([target_t, v_t])
    ones = jnp.ones_like(v_t)
    grad = jax.grad(lambda y: loss_fn(target_t, y, ones))(v_t)
    return jax.lax.stop_gradient(-v_t.shape[0] * grad)
