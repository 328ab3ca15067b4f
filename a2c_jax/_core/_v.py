"""The state-value function approximator ``v(s)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex
import haiku as hk
import jax
import numpy as np

from ..value_transforms import ValueTransform
from ._base import BaseFunc
from ._spaces import Preprocessor


class V(BaseFunc):
    """A state-value function ``v(s)`` built from a plain Haiku function.

    Args:
        func: ``func(S, is_training) -> [B]``, a Haiku function of a batch of (preprocessed)
            observations returning one value per observation.
        env: a gymnasium environment (only its ``observation_space`` is used).
        observation_preprocessor: a pure map from a batch of raw observations to ``func``'s input;
            by default float32 for ``Box`` and one-hot for ``Discrete``.
        value_transform: optional pair ``(transform, inverse)``, or an object with
            ``transform_func`` and ``inverse_func`` such as
            :class:`a2c_jax.value_transforms.LogTransform`; ``func`` then learns
            ``transform(v)`` and every value returned here is ``inverse(func(S))``. Kept as a
            :class:`~a2c_jax.value_transforms.ValueTransform` (which unpacks as the pair).
        random_seed: seeds the parameter initialisation (``None``: fresh entropy).

    Raises:
        ValueError: ``func``'s output is not of shape ``[B]``.
        TypeError: unsupported observation space, or ``func`` is not callable.
    """

    def __init__(self, func: Callable, env: Any, observation_preprocessor: Preprocessor | None = None,
                 value_transform: Any = None, random_seed: int | None = None):
        self.value_transform = ValueTransform.coerce(value_transform)
        super().__init__(func, env, observation_preprocessor, random_seed)
        self._value_jit = jax.jit(self.values)

    def _check_output(self, output: Any, batch_size: int) -> None:
        shape = getattr(output, "shape", None)
        if shape != (batch_size,):
            raise ValueError(f"the value function must return an array of shape [B]; for a batch "
                             f"of {batch_size} it returned {shape if shape is not None else output!r}"
                             " (add jnp.ravel or x[:, 0] to the last layer)")

    def values(self, params: hk.Params, state: hk.State, rng: jax.Array | None, S: Any) -> chex.Array:
        """Pure and jittable: ``v(S)`` for a batch, ``[B]``, in evaluation mode."""
        out, _ = self.function(params, state, rng, S, False)
        return self.value_transform[1](out) if self.value_transform else out

    def __call__(self, s: Any) -> float:
        """The value of one observation, as a Python float."""
        out = self._value_jit(self._params, self._function_state, self._key, self._batch_one(s))
        return float(np.asarray(out)[0])  # index on the host: out[0] would dispatch a device op

    def batch(self, S: Any) -> np.ndarray:
        """The values of a batch of observations ``[B, ...]`` (e.g. from a vector env): ``[B]``."""
        return np.asarray(self._value_jit(self._params, self._function_state, self._key,
                                          self._check_batch(S)))
