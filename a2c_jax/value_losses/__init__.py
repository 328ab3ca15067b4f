"""Regression losses for value functions: ``loss(y_true, y_pred, w=None) -> scalar``.

``w`` are per-sample weights ``[B]``; the result is the weighted mean over the batch.
"""

from __future__ import annotations

import chex
import jax.numpy as jnp

__all__ = ["huber", "mse"]


def _weighted_mean(x: chex.Array, w: chex.Array | None) -> chex.Array:
    if w is None:
        return jnp.mean(x)
    chex.assert_equal_shape([x, w])
    return jnp.mean(w * x)


def mse(y_true: chex.Array, y_pred: chex.Array, w: chex.Array | None = None) -> chex.Array:
    """Half the squared error, ``½ (y_pred - y_true)²``, weighted mean over the batch."""
    chex.assert_equal_shape([y_true, y_pred])
    return _weighted_mean(0.5 * jnp.square(y_pred - y_true), w)


def huber(y_true: chex.Array, y_pred: chex.Array, w: chex.Array | None = None,
          delta: float = 1.0) -> chex.Array:
    """The Huber loss: ``½ e²`` for ``|e| <= delta``, ``delta (|e| - ½ delta)`` beyond; weighted mean."""
    chex.assert_equal_shape([y_true, y_pred])
    err = jnp.abs(y_pred - y_true)
    quad = jnp.minimum(err, delta)
    return _weighted_mean(0.5 * jnp.square(quad) + delta * (err - quad), w)
