"""Pure return and advantage estimators, over explicit arrays (rlax's shape).

Time runs along axis 0. A GAE sequence is ``[T]`` (one env; ``jax.vmap`` over envs) or ``[T, B]``
(``B`` envs side by side); an n-step target is per transition, ``[B]``.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def n_step_target(r_t: chex.Array, discount_t: chex.Array, v_t: chex.Array) -> chex.Array:
    """The n-step bootstrapped target ``G_t = r_t + discount_t * v_t``, gradient stopped, ``[B]``.

    In coax's names this is ``Rn + In * v(S_next)``: ``r_t = Rn = Σ_{k<n} γ^k r_{t+k}`` (the
    discounted sum of the next ``n`` rewards), ``discount_t = In`` (``γ^n``, or ``0`` when the
    episode terminated first), ``v_t = v(S_next)`` (Sutton & Barto 2018, §7.1, eq. 7.1).

    Args:
        r_t: the discounted n-step reward sums ``[B]``.
        discount_t: the bootstrap discounts ``[B]``.
        v_t: the values of the bootstrap states ``[B]``.

    Returns:
        The targets ``[B]``; no gradient flows through them.
    """
    chex.assert_rank([r_t, discount_t, v_t], 1)
    chex.assert_type([r_t, discount_t, v_t], float)
    chex.assert_equal_shape([r_t, discount_t, v_t])
    return jax.lax.stop_gradient(r_t + discount_t * v_t)


def _gae(r_t: chex.Array, discount_t: chex.Array, v_tm1: chex.Array, v_t: chex.Array,
         decay_t: chex.Array) -> chex.Array:
    """The GAE recursion, ``A_t = δ_t + decay_t A_{t+1}``, on checked arrays of one shape."""
    delta_t = r_t + discount_t * v_t - v_tm1

    def step(adv_tp1: chex.Array, xs: tuple[chex.Array, chex.Array]) -> tuple[chex.Array, chex.Array]:
        delta, decay = xs
        adv = delta + decay * adv_tp1
        return adv, adv

    _, adv_t = jax.lax.scan(step, jnp.zeros_like(r_t[0]), (delta_t, decay_t), reverse=True)
    return adv_t


def generalized_advantage_estimation(r_t: chex.Array, discount_t: chex.Array,
                                     lambda_: chex.Numeric | chex.Array, v_tm1: chex.Array,
                                     v_t: chex.Array) -> chex.Array:
    """Generalized advantage estimation (Schulman et al. 2016, arXiv:1506.02438, eq. 16).

    For ``t`` from ``T-1`` down to ``0``, with ``A_T = 0``::

        δ_t = r_t + discount_t v_t - v_tm1_t,    A_t = δ_t + discount_t λ_t A_{t+1}

    ``v_tm1[t]`` is the value of the state where action ``t`` was taken, ``v_t[t]`` the value of
    the state it led to: usually ``v_t = concat(v_tm1[1:], [v_T])``. ``discount_t`` is ``γ``, or
    ``0`` where the episode terminated after step ``t``. A time-limit truncation after step ``t``
    bootstraps but does not continue the trace: pass ``discount_t[t] = γ``, ``v_t[t]`` the value
    of the final observation and ``λ_t = 0`` there. ``λ = 0`` gives the one-step TD error
    ``δ_t``, ``λ = 1`` the discounted return minus ``v_tm1``.
    :func:`a2c_jax.reward_tracing.compute_gae` is this recursion with coax's argument names.

    Args:
        r_t: the rewards ``[T]`` or ``[T, B]``.
        discount_t: the discounts, same shape.
        lambda_: the GAE ``λ``: a scalar, or per step (same shape as ``r_t``).
        v_tm1: the values of the states acted in, same shape.
        v_t: the values of the states reached (the bootstraps), same shape.

    Returns:
        The advantages ``A_t``, the shape of ``r_t``. Gradients flow through ``v_tm1`` and
        ``v_t``; stop them in the caller where the advantages are a target.
    """
    chex.assert_rank(r_t, {1, 2})
    chex.assert_type([r_t, discount_t, v_tm1, v_t], float)
    chex.assert_equal_shape([r_t, discount_t, v_tm1, v_t])
    if jnp.ndim(lambda_) > 0:
        chex.assert_equal_shape([r_t, lambda_])
    return _gae(r_t, discount_t, v_tm1, v_t, discount_t * lambda_)
