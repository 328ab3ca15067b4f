"""PPO's clipped surrogate objective."""

from __future__ import annotations

from typing import Any

import chex
import jax.numpy as jnp
import optax

from .._core import Policy
from ..functional import clip_fraction, clipped_surrogate_loss, importance_ratio
from ..proba_dists import DistParams
from ..regularizers import Regularizer
from ..reward_tracing import TransitionBatch
from ._base import PolicyObjective


class PPOClip(PolicyObjective):
    """The PPO-clip objective (Schulman et al. 2017, arXiv:1707.06347)::

        ratio = exp(log π(A|S) - logP),   obj = mean(W * min(ratio Adv, clip(ratio, 1-ε, 1+ε) Adv))

    ``logP`` is the log-probability recorded when the action was taken (``pi(s, return_logp=True)``
    returns it exactly). At ``ratio == 1`` the gradient equals :class:`VanillaPG`'s. The loss is
    :func:`a2c_jax.functional.clipped_surrogate_loss`; the metrics ``clip_fraction`` and ``ratio``
    (its batch mean) are :func:`~a2c_jax.functional.clip_fraction` and
    :func:`~a2c_jax.functional.importance_ratio`.

    Args:
        epsilon: the clipping range, ``> 0``; may be changed later without recompiling.
    """

    requires_logp = True

    def __init__(self, pi: Policy, optimizer: optax.GradientTransformation | None = None,
                 regularizer: Regularizer | None = None, epsilon: float = 0.2, *,
                 flatten_optimizer: bool | None = None):
        super().__init__(pi, optimizer, regularizer, flatten_optimizer=flatten_optimizer)
        self.epsilon = epsilon

    @property
    def epsilon(self) -> float:
        return self.objective_hyperparams["epsilon"]

    @epsilon.setter
    def epsilon(self, value: float) -> None:
        value = float(value)
        if not value > 0:
            raise ValueError(f"epsilon must be > 0, got {value}")
        self.objective_hyperparams["epsilon"] = value

    def objective(self, log_pi: chex.Array, dist_params: DistParams,
                  transition_batch: TransitionBatch, Adv: chex.Array,
                  hparams: dict[str, Any]) -> tuple[chex.Array, dict[str, chex.Array]]:
        eps, logp_old = hparams["epsilon"], transition_batch.logP
        loss = clipped_surrogate_loss(log_pi, logp_old, Adv, eps, transition_batch.W)
        ratio = importance_ratio(log_pi, logp_old)
        return -loss, {"clip_fraction": clip_fraction(ratio, eps), "ratio": jnp.mean(ratio)}
