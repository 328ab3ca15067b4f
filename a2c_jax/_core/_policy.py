"""The stochastic policy ``π(a|s)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex
import gymnasium
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from ..proba_dists import BaseProbaDist, proba_dist_for_space
from ._base import BaseFunc
from ._spaces import Preprocessor


class Policy(BaseFunc):
    """A stochastic policy ``π(a|s)`` built from a plain Haiku function.

    Args:
        func: ``func(S, is_training)`` returning the distribution parameters for a batch:
            ``{'logits': [B, n]}`` for a ``Discrete`` action space, ``{'mu': [B, *shape],
            'logvar': [B, *shape]}`` for a ``Box``.
        env: a gymnasium environment (its ``observation_space`` and ``action_space`` are used).
        observation_preprocessor: see :class:`a2c_jax.V`.
        proba_dist: the action distribution; by default :class:`~a2c_jax.proba_dists.CategoricalDist`
            or :class:`~a2c_jax.proba_dists.NormalDist` (tanh-squashed into finite bounds; its
            docstring states the log-probability convention).
        random_seed: seeds initialisation and the sampling key.

    Each ``pi(s)`` is a single jitted call: forward pass, sampling, log-probability and the split
    of the policy's own PRNG key all happen on the device, and action and log-probability come
    back in one transfer. ``logp`` is exactly ``proba_dist.log_proba(dist_params, a)`` at the
    returned ``a``.

    Raises:
        TypeError: the action space is not supported (the message names it).
        ValueError: ``func`` returns the wrong keys or shapes.
    """

    def __init__(self, func: Callable, env: Any, observation_preprocessor: Preprocessor | None = None,
                 proba_dist: BaseProbaDist | None = None, random_seed: int | None = None):
        self.action_space: Any = getattr(env, "action_space", None)
        if not isinstance(self.action_space, gymnasium.Space):
            raise TypeError(f"env must be a gymnasium environment with an action_space, got {env!r}")
        self.proba_dist = proba_dist or proba_dist_for_space(self.action_space)
        self._discrete = isinstance(self.action_space, gymnasium.spaces.Discrete)
        space = self.action_space
        if isinstance(space, gymnasium.spaces.Discrete) and int(space.n) + int(space.start) > 2**24:
            raise ValueError("Discrete action spaces beyond 2**24 actions are not supported")
        super().__init__(func, env, observation_preprocessor, random_seed)
        self._sample_jit = jax.jit(self._sample_packed)
        self._mode_jit = jax.jit(self._mode_packed)
        self._dist_params_jit = jax.jit(self.dist_params_fn)

    def _check_output(self, output: Any, batch_size: int) -> None:
        self.proba_dist.check_dist_params(output, batch_size)

    # ---- pure, jittable -------------------------------------------------------------------------

    def dist_params_fn(self, params: hk.Params, state: hk.State, rng: jax.Array | None,
                       S: Any) -> dict[str, chex.Array]:
        """Pure: the distribution parameters for a batch of raw observations (evaluation mode)."""
        dist_params, _ = self.function(params, state, rng, S, False)
        return dist_params

    def sample_fn(self, params: hk.Params, state: hk.State, key: jax.Array,
                  S: Any) -> tuple[chex.Array, chex.Array]:
        """Pure: ``(A, logP)`` sampled for a batch, ``logP = log π(A|S)`` exactly."""
        rng = None
        if self.uses_rng:
            rng, key = jax.random.split(key)
        dist_params = self.dist_params_fn(params, state, rng, S)
        A = self.proba_dist.sample(dist_params, key)
        return A, self.proba_dist.log_proba(dist_params, A)

    def _pack(self, A, logP):
        # one float32 array [B, d + 1] holding the action and its log-prob: one device→host copy
        flat = A.reshape(A.shape[0], -1).astype(jnp.float32)
        return jnp.concatenate([flat, logP[:, None].astype(jnp.float32)], axis=1)

    def _sample_packed(self, params, state, key, S):
        key, subkey = jax.random.split(key)
        A, logP = self.sample_fn(params, state, subkey, S)
        return self._pack(A, logP), key

    def _mode_packed(self, params, state, rng, S):
        dist_params = self.dist_params_fn(params, state, rng, S)
        A = self.proba_dist.mode(dist_params)
        return self._pack(A, self.proba_dist.log_proba(dist_params, A))

    def _unpack(self, packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._discrete:
            return packed[:, 0].astype(np.int64), packed[:, -1]
        A = packed[:, :-1].reshape((packed.shape[0], *self.action_space.shape))
        return A.astype(self.action_space.dtype, copy=False), packed[:, -1]

    def _one(self, packed: Any, return_logp: bool) -> Any:
        # the action (an int for Discrete) and log-prob of a packed batch of one
        packed = np.asarray(packed)
        a = int(packed[0, 0]) if self._discrete else self._unpack(packed)[0][0]
        return (a, float(packed[0, -1])) if return_logp else a

    # ---- the stateful surface -----------------------------------------------------------------

    def __call__(self, s: Any, return_logp: bool = False) -> Any:
        """Samples an action for one observation.

        Returns:
            ``a`` (an ``int`` for ``Discrete``, an array for ``Box``), or ``(a, logp)`` with
            ``logp = log π(a|s)`` as a float when ``return_logp=True``.
        """
        packed, self._key = self._sample_jit(self._params, self._function_state, self._key,
                                             self._batch_one(s))
        return self._one(packed, return_logp)

    def mode(self, s: Any, return_logp: bool = False) -> Any:
        """The greedy action (``proba_dist.mode``) for one observation, e.g. for evaluation."""
        return self._one(self._mode_jit(self._params, self._function_state, self._key,
                                        self._batch_one(s)), return_logp)

    def dist_params(self, s: Any) -> dict[str, np.ndarray]:
        """The distribution parameters for one observation (batch axis removed), as numpy."""
        out = self._dist_params_jit(self._params, self._function_state, self._key,
                                    self._batch_one(s))
        return {k: np.asarray(v)[0] for k, v in out.items()}

    def batch(self, S: Any, return_logp: bool = False) -> Any:
        """Samples actions for a batch of observations ``[B, ...]`` (a vector env) in one call.

        Returns:
            ``A`` of shape ``[B, *action_shape]``, or ``(A, logP)`` with ``logP`` of shape ``[B]``.
        """
        packed, self._key = self._sample_jit(self._params, self._function_state, self._key,
                                             self._check_batch(S))
        A, logP = self._unpack(np.asarray(packed))
        return (A, logP) if return_logp else A
