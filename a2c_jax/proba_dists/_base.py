"""The interface shared by the probability distributions of a :class:`~a2c_jax.Policy`."""

from __future__ import annotations

import abc
from typing import Any

import chex
import numpy as np

DistParams = dict[str, chex.Array]


class BaseProbaDist(abc.ABC):
    """A parametrized distribution over one action space, as pure, jittable functions.

    The object itself holds only static facts about the space (number of actions, bounds); every
    method is a pure function of its array arguments, so it may be called inside ``jit``, ``vmap``
    or ``scan``. All methods take batched parameters, leading axis ``[B]``.
    """

    #: the keys a policy function must return, e.g. ``('logits',)``
    param_keys: tuple[str, ...] = ()

    def __init__(self, space: Any) -> None:
        self.space = space

    @abc.abstractmethod
    def param_shapes(self, batch_size: int) -> dict[str, tuple[int, ...]]:
        """The shape each entry of ``dist_params`` must have for a batch of ``batch_size``."""

    @abc.abstractmethod
    def sample(self, dist_params: DistParams, key: chex.PRNGKey) -> chex.Array:
        """Draws one action per batch entry: ``[B, *action_shape]``."""

    @abc.abstractmethod
    def log_proba(self, dist_params: DistParams, X: chex.Array) -> chex.Array:
        """``log π(X|s)`` for a batch of actions ``X``; shape ``[B]``."""

    @abc.abstractmethod
    def entropy(self, dist_params: DistParams) -> chex.Array:
        """The entropy of each distribution in the batch; shape ``[B]``."""

    @abc.abstractmethod
    def kl_divergence(self, dist_params_p: DistParams, dist_params_q: DistParams) -> chex.Array:
        """``KL(p || q)`` per batch entry; shape ``[B]``."""

    @abc.abstractmethod
    def mode(self, dist_params: DistParams) -> chex.Array:
        """The greedy action of each distribution, ``[B, *action_shape]`` (see each subclass)."""

    @property
    def default_priors(self) -> DistParams:
        """Zeros for every parameter, batch of one (coax's default priors of ``KLDivRegularizer``).

        For :class:`CategoricalDist` the uniform distribution; for :class:`NormalDist` the standard
        normal of the unsquashed variate. Host arrays ``[1, ...]``, broadcast over a batch.
        """
        return {k: np.zeros(shape, np.float32) for k, shape in self.param_shapes(1).items()}

    def check_dist_params(self, dist_params: Any, batch_size: int) -> None:
        """Raises ``ValueError`` naming the problem when ``dist_params`` has the wrong keys or shapes."""
        expected = self.param_shapes(batch_size)
        if not isinstance(dist_params, dict) or set(dist_params) != set(expected):
            got = sorted(dist_params) if isinstance(dist_params, dict) else type(dist_params).__name__
            raise ValueError(
                f"the policy function must return a dict with keys {sorted(expected)} for "
                f"{type(self.space).__name__} actions; got {got}"
            )
        for k, shape in expected.items():
            got_shape = tuple(dist_params[k].shape)
            if got_shape != shape:
                raise ValueError(
                    f"the policy function's output {k!r} has shape {got_shape} for a batch of "
                    f"{batch_size}; expected {shape}"
                )
