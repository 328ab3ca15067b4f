"""The entropy bonus."""

from __future__ import annotations

import abc
from typing import Any

import jax.numpy as jnp


class Regularizer(abc.ABC):
    """A term added to a policy objective's *loss*, as a pure function of the distribution params.

    Subclasses define :meth:`penalty` and keep their hyperparameters in :attr:`hyperparams`,
    which the updater passes to its compiled step as traced values.
    """

    def __init__(self, f: Any):
        self.f = f
        self.hyperparams: dict[str, Any] = {}

    @abc.abstractmethod
    def penalty(self, dist_params, transition_batch, hparams) -> tuple[Any, dict[str, Any]]:
        """Pure: ``(penalty, metrics)``; ``penalty`` is a scalar added to the loss."""


class EntropyRegularizer(Regularizer):
    """The entropy bonus: adds ``-beta * mean(W * H[π(.|S)])`` to the loss, encouraging exploration.

    Args:
        f: the policy.
        beta: the bonus coefficient, ``>= 0``; may be changed later (``reg.beta = 0.01``) without
            recompiling.
    """

    def __init__(self, f: Any, beta: float = 0.001):
        from .._core import Policy

        if not isinstance(f, Policy):
            raise TypeError(f"EntropyRegularizer needs the Policy whose entropy it rewards, got "
                            f"{type(f).__name__}")
        super().__init__(f)
        self.beta = beta

    @property
    def beta(self) -> float:
        return self.hyperparams["beta"]

    @beta.setter
    def beta(self, value: float) -> None:
        value = float(value)
        if not 0 <= value < float("inf"):
            raise ValueError(f"beta must be finite and >= 0, got {value}")
        self.hyperparams["beta"] = value

    def penalty(self, dist_params, transition_batch, hparams):
        entropy = self.f.proba_dist.entropy(dist_params)
        mean_entropy = jnp.mean(transition_batch.W * entropy)
        return -hparams["beta"] * mean_entropy, {"entropy": jnp.mean(entropy)}
