"""Generalized advantage estimation in coax's names, over the functional GAE's reverse ``lax.scan``."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from ..functional._returns import _gae


def compute_gae(rewards: chex.Array, values: chex.Array, next_value: chex.Array,
                dones: chex.Array, gamma: float = 0.99, lam: float = 0.95, *,
                truncated: chex.Array | None = None,
                final_values: chex.Array | None = None) -> tuple[chex.Array, chex.Array]:
    """Generalized advantage estimation (Schulman et al. 2015, arXiv:1506.02438).

    For ``t`` from ``T-1`` down to 0, with ``v_{T} = next_value``::

        delta_t = r_t + γ v_{t+1} (1 - d_t) - v_t
        A_t     = delta_t + γ λ (1 - d_t) A_{t+1}
        returns = A + values

    ``lam=0`` gives the one-step TD error, ``lam=1`` the Monte Carlo return minus ``values``.
    With ``dones`` alone (the tutorial's form) every episode end is a termination.

    Truncation-aware form: ``dones`` marks *terminations*; ``truncated[t]`` marks a time-limit
    cut after step ``t`` and ``final_values[t]`` is ``v`` of that step's final observation. A
    truncated step bootstraps from it, ``delta_t = r_t + γ final_values_t - v_t``, and, like a
    termination, stops the recursion (the next step belongs to a new episode).

    Args:
        rewards: ``r_t``, shape ``[T]`` or ``[T, B]`` (``B`` parallel envs).
        values: ``v(s_t)``, same shape.
        next_value: ``v(s_T)``, the value after the last step: ``[]`` or ``[B]``.
        dones: episode ended (or terminated, with ``truncated``) after step ``t``: same shape as
            ``rewards``; bool or float.
        gamma: discount factor.
        lam: the GAE λ.
        truncated: optional, same shape as ``rewards``.
        final_values: ``v`` of the final observation where ``truncated``; required with it.

    Returns:
        ``(advantages, returns)``, each the shape of ``rewards``.

    This is :func:`a2c_jax.functional.generalized_advantage_estimation` (one recursion, shared)
    with ``discount_t = γ (1 - d_t)``, ``v_tm1 = values``, ``v_t = values`` shifted by one step
    (``final_values`` where truncated) and ``λ_t = 0`` where truncated.
    """
    for name, x in (("gamma", gamma), ("lam", lam)):
        # checked when concrete; a traced gamma/lam (inside a user's jit) is the caller's to check
        if not isinstance(x, jax.core.Tracer) and not 0.0 <= float(x) <= 1.0:
            raise ValueError(f"compute_gae: {name} must be in [0, 1], got {x}")
    if final_values is not None and truncated is None:
        raise ValueError("compute_gae: final_values is only used with truncated (which steps a "
                         "time limit cut); pass both or neither")
    rewards, values = jnp.asarray(rewards), jnp.asarray(values)
    dtype = jnp.result_type(rewards.dtype, values.dtype, jnp.float32)
    rewards, values = rewards.astype(dtype), values.astype(dtype)
    next_value = jnp.asarray(next_value, dtype)
    done = jnp.asarray(dones).astype(dtype)
    chex.assert_equal_shape([rewards, values, done])
    chex.assert_rank(rewards, {1, 2})
    chex.assert_shape(next_value, rewards.shape[1:])
    # coax's names mapped onto the functional GAE's: discount_t = γ (1 - d_t), v_t = v_{t+1} (the
    # final observation's value where truncated), the trace decay γ λ (1 - cut_t)
    v_t = jnp.concatenate([values[1:], next_value[None]], axis=0)
    discount_t = gamma * (1.0 - done)
    cut = done
    if truncated is not None:
        if final_values is None:
            raise ValueError("compute_gae: truncated needs final_values, the value of each "
                             "truncated step's final observation")
        trunc = jnp.asarray(truncated).astype(dtype) * (1.0 - done)
        final_values = jnp.asarray(final_values, dtype)
        chex.assert_equal_shape([rewards, trunc, final_values])
        v_t = jnp.where(trunc > 0, final_values, v_t)
        cut = jnp.maximum(done, trunc)
    # γ λ is one product here, as it always was (a Python float when both are), so that the
    # advantages stay bitwise those of earlier versions; the functional form multiplies per step
    decay_t = gamma * lam * (1.0 - cut)
    advantages = _gae(rewards, discount_t, values, v_t, decay_t)
    return advantages, advantages + values
