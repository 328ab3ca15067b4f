"""PPO's clipped surrogate objective."""

from __future__ import annotations

import jax.numpy as jnp

from ._base import PolicyObjective


class PPOClip(PolicyObjective):
    """The PPO-clip objective (Schulman et al. 2017, arXiv:1707.06347)::

        ratio = exp(log π(A|S) - logP),   obj = mean(W * min(ratio Adv, clip(ratio, 1-ε, 1+ε) Adv))

    ``logP`` is the log-probability recorded when the action was taken (``pi(s, return_logp=True)``
    returns it exactly). At ``ratio == 1`` the gradient equals :class:`VanillaPG`'s.

    Args:
        epsilon: the clipping range, ``> 0``; may be changed later without recompiling.
    """

    requires_logp = True

    def __init__(self, pi, optimizer=None, regularizer=None, epsilon: float = 0.2, *,
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

    def objective(self, log_pi, dist_params, transition_batch, Adv, hparams):
        eps = hparams["epsilon"]
        ratio = jnp.exp(log_pi - transition_batch.logP)
        surrogate = jnp.minimum(ratio * Adv, jnp.clip(ratio, 1 - eps, 1 + eps) * Adv)
        clip_fraction = jnp.mean((jnp.abs(ratio - 1) > eps).astype(jnp.float32))
        return jnp.mean(transition_batch.W * surrogate), {"clip_fraction": clip_fraction,
                                                          "ratio": jnp.mean(ratio)}
