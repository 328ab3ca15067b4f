"""The entropy bonus."""

from __future__ import annotations

from typing import Any

import chex
import jax.numpy as jnp

from ..functional import entropy_loss
from ..proba_dists import DistParams
from ..reward_tracing import TransitionBatch
from ._base import Regularizer


class EntropyRegularizer(Regularizer):
    """The entropy bonus: adds ``-beta * mean(W * H[π(.|S)])`` to the loss, encouraging exploration.

    That is ``beta *`` :func:`a2c_jax.functional.entropy_loss`.

    Args:
        f: the policy.
        beta: the bonus coefficient, ``>= 0``; may be changed later (``reg.beta = 0.01``) without
            recompiling.
    """

    def penalty(self, dist_params: DistParams, transition_batch: TransitionBatch,
                hparams: dict[str, Any]) -> tuple[chex.Array, dict[str, chex.Array]]:
        dist = self.f.proba_dist
        penalty = hparams["beta"] * entropy_loss(dist, dist_params, transition_batch.W)
        # the metric is unweighted; under jit XLA computes the entropy once for both
        return penalty, {"entropy": jnp.mean(dist.entropy(dist_params))}
