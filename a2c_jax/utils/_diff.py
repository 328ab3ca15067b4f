"""coax's frame-difference transform for stacked frames: position, velocity, acceleration, ..."""

from __future__ import annotations

from math import comb

import chex
import jax.numpy as jnp
import numpy as np


def diff_transform_matrix(num_frames: int, dtype: str | np.dtype = "float32") -> np.ndarray:
    """The ``[n, n]`` matrix ``M`` of :func:`diff_transform` (coax's), as a numpy array.

    ``M[i, j] = (-1)^(n-1-i) * C(n-1-j, n-1-i)`` (binomial coefficients, ``C(a, b) = 0`` for
    ``b > a``), so that column ``j`` of ``X @ M`` is the backward difference of order ``n-1-j``
    at the newest frame. For ``n = 4``::

        [[-1,  0,  0, 0],
         [ 3,  1,  0, 0],
         [-3, -2, -1, 0],
         [ 1,  1,  1, 1]]

    Args:
        num_frames: the number of stacked frames ``n`` (an int >= 1).
        dtype: the matrix's dtype.

    Returns:
        ``M``, of shape ``[num_frames, num_frames]``.

    Raises:
        TypeError: ``num_frames`` is not an int.
        ValueError: ``num_frames < 1``.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)):
        raise TypeError(f"num_frames must be an int >= 1, got {type(num_frames).__name__}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    n = int(num_frames)
    m = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            m[i, j] = (-1) ** (n - 1 - i) * comb(n - 1 - j, n - 1 - i)
    return m.astype(dtype)


def diff_transform(X: chex.Array, dtype: str | np.dtype = "float32") -> chex.Array:
    """Re-mixes stacked frames into the newest frame and its backward differences (coax's).

    With the frames in chronological order on the last axis, ``x_0, ..., x_{n-1}``
    (``x_{n-1}`` the newest), the output's last axis is ``(Δ^{n-1} x, ..., Δ^2 x, Δx, x)`` at
    the newest frame, where ``Δx = x_{n-1} - x_{n-2}`` and ``Δ^k`` is its ``k``-th power: the
    pixels' position, velocity, acceleration, ... in reverse order. It is the product
    ``X @ M`` with ``M = diff_transform_matrix(n)``. Jittable (``n`` is a static shape).

    Differences from coax: ``dtype`` is used (coax ignores it and always mixes in float32); the
    input is cast to it first, so ``uint8`` frames do not wrap around.

    Args:
        X: frames stacked on the last axis, shape ``[..., n]`` (e.g. ``jnp.stack(S, axis=-1)``
            over :class:`a2c_jax.wrappers.FrameStacking`'s tuple).
        dtype: the dtype of the computation and of the output (a float dtype).

    Returns:
        An array of the same shape as ``X`` and of dtype ``dtype``.
    """
    X = jnp.asarray(X, dtype)
    if X.ndim < 1:
        raise ValueError("diff_transform needs the frames on a last axis, got a scalar")
    return jnp.matmul(X, jnp.asarray(diff_transform_matrix(X.shape[-1], dtype)))
