"""The base of the policy regularizers: a penalty on the distribution parameters, scaled by beta."""

from __future__ import annotations

import abc
from typing import Any

import chex

from ..proba_dists import DistParams
from ..reward_tracing import TransitionBatch


class Regularizer(abc.ABC):
    """A term added to a policy objective's *loss*, as a pure function of the distribution params.

    Subclasses define :meth:`penalty` and keep their hyperparameters in :attr:`hyperparams`, which
    the updater passes to its compiled step as traced values (changing them never recompiles).

    Args:
        f: the :class:`~a2c_jax.Policy` whose distribution is regularized.
        beta: the coefficient, finite and ``>= 0``; may be changed later (``reg.beta = 0.01``).
    """

    def __init__(self, f: Any, beta: float = 0.001):
        from .._core import Policy

        if not isinstance(f, Policy):
            raise TypeError(f"{type(self).__name__} needs the Policy it regularizes, got "
                            f"{type(f).__name__}")
        self._f = f
        self.hyperparams: dict[str, Any] = {}
        self.beta = beta

    @property
    def f(self) -> Any:
        """The regularized :class:`~a2c_jax.Policy`. Read-only: the compiled step reads its
        distribution when it is traced."""
        return self._f

    @f.setter
    def f(self, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__}.f is read when the step is compiled; build "
                             f"a new {type(self).__name__} to change it")

    @property
    def beta(self) -> float:
        """The coefficient of the penalty (a traced hyperparameter)."""
        return self.hyperparams["beta"]

    @beta.setter
    def beta(self, value: float) -> None:
        value = float(value)
        if not 0 <= value < float("inf"):
            raise ValueError(f"beta must be finite and >= 0, got {value}")
        self.hyperparams["beta"] = value

    @abc.abstractmethod
    def penalty(self, dist_params: DistParams, transition_batch: TransitionBatch,
                hparams: dict[str, Any]) -> tuple[chex.Array, dict[str, chex.Array]]:
        """Pure: ``(penalty, metrics)``; ``penalty`` is a scalar added to the loss."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(beta={self.beta})"
