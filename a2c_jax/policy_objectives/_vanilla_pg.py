"""The vanilla policy gradient (REINFORCE with a baseline)."""

from __future__ import annotations

from typing import Any

import chex

from ..functional import policy_gradient_loss
from ..proba_dists import DistParams
from ..reward_tracing import TransitionBatch
from ._base import PolicyObjective


class VanillaPG(PolicyObjective):
    """The REINFORCE-style objective ``mean(W * Adv * log π(A|S))``.

    Its gradient is the policy gradient ``E[Adv ∇ log π(A|S)]`` (Sutton & Barto, §13.5); with
    ``Adv`` the TD error ``G^(n) - v(S)`` this is advantage actor-critic. The loss is
    :func:`a2c_jax.functional.policy_gradient_loss`.
    """

    def objective(self, log_pi: chex.Array, dist_params: DistParams,
                  transition_batch: TransitionBatch, Adv: chex.Array,
                  hparams: dict[str, Any]) -> tuple[chex.Array, dict[str, chex.Array]]:
        return -policy_gradient_loss(log_pi, Adv, transition_batch.W), {}
