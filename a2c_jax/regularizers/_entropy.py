"""The entropy bonus."""

from __future__ import annotations

import jax.numpy as jnp

from ._base import Regularizer


class EntropyRegularizer(Regularizer):
    """The entropy bonus: adds ``-beta * mean(W * H[π(.|S)])`` to the loss, encouraging exploration.

    Args:
        f: the policy.
        beta: the bonus coefficient, ``>= 0``; may be changed later (``reg.beta = 0.01``) without
            recompiling.
    """

    def penalty(self, dist_params, transition_batch, hparams):
        entropy = self.f.proba_dist.entropy(dist_params)
        mean_entropy = jnp.mean(transition_batch.W * entropy)
        return -hparams["beta"] * mean_entropy, {"entropy": jnp.mean(entropy)}
