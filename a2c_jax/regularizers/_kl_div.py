"""The KL-divergence penalty towards fixed priors (coax's ``KLDivRegularizer``)."""

from __future__ import annotations

from typing import Any

import chex
import jax.numpy as jnp
import numpy as np

from ..functional import kl_divergence, kl_divergence_loss
from ..proba_dists import DistParams
from ..reward_tracing import TransitionBatch
from ._base import Regularizer


class KLDivRegularizer(Regularizer):
    """Adds ``beta * mean(W * KL[π(.|S) || prior])`` to the loss: keeps the policy near a prior.

    That is ``beta *`` :func:`a2c_jax.functional.kl_divergence_loss`.

    Args:
        f: the policy.
        beta: the coefficient, ``>= 0``; may be changed later without recompiling.
        priors: distribution parameters of the prior, each of shape ``[1, ...]`` (one prior for
            every state, broadcast over the batch) or ``[...]`` (the batch axis added here);
            by default ``f.proba_dist.default_priors`` (uniform for ``Discrete``, a standard
            normal for ``Box``). They are a traced hyperparameter: ``reg.priors = ...`` with the
            same shapes does not recompile.

    Raises:
        ValueError: ``priors`` has other keys or shapes than the policy's distribution parameters,
            or a value that is not finite.
    """

    def __init__(self, f: Any, beta: float = 0.001, priors: dict | None = None):
        super().__init__(f, beta)
        self.priors = f.proba_dist.default_priors if priors is None else priors

    @property
    def priors(self) -> dict:
        """The prior's distribution parameters, ``[1, ...]`` each."""
        return self.hyperparams["priors"]

    @priors.setter
    def priors(self, priors: dict) -> None:
        expected = self.f.proba_dist.param_shapes(1)
        if not isinstance(priors, dict) or set(priors) != set(expected):
            got = sorted(priors) if isinstance(priors, dict) else type(priors).__name__
            raise ValueError(f"priors must be a dict with keys {sorted(expected)} (the policy's "
                             f"distribution parameters), got {got}")
        out = {}
        for k, shape in expected.items():
            x = np.asarray(priors[k], np.float32)
            if x.shape == shape[1:]:
                x = x[None]
            if x.shape != shape:
                raise ValueError(f"priors[{k!r}] has shape {np.shape(priors[k])}; expected "
                                 f"{shape[1:]} or {shape}")
            if not np.all(np.isfinite(x)):  # a NaN prior would skip every step, silently
                raise ValueError(f"priors[{k!r}] must be finite, got {x.ravel().tolist()}")
            out[k] = x
        self.hyperparams["priors"] = out

    def penalty(self, dist_params: DistParams, transition_batch: TransitionBatch,
                hparams: dict[str, Any]) -> tuple[chex.Array, dict[str, chex.Array]]:
        dist, priors = self.f.proba_dist, hparams["priors"]
        penalty = hparams["beta"] * kl_divergence_loss(dist, dist_params, priors, transition_batch.W)
        # the metric is unweighted; under jit XLA computes the divergence once for both
        return penalty, {"kl_div": jnp.mean(kl_divergence(dist, dist_params, priors))}
