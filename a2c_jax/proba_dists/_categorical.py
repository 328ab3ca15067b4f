"""Categorical distribution over a ``gymnasium.spaces.Discrete`` action space."""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp

from ._base import BaseProbaDist, DistParams


class CategoricalDist(BaseProbaDist):
    """π(a|s) = softmax(logits)[a], with ``dist_params = {'logits': [B, n]}``.

    Sampling draws from the categorical distribution itself (``jax.random.categorical``), so the
    log-probability reported for a sampled action is exactly ``log_softmax(logits)[a]``. (coax
    reports the log-probability of a Gumbel-softmax relaxation instead; see ``API.md``.)

    Actions are ``space.start + i`` for ``i`` in ``range(n)``.
    """

    param_keys = ("logits",)

    def __init__(self, space: Any) -> None:
        super().__init__(space)
        self.n = int(space.n)
        self.start = int(getattr(space, "start", 0))

    def param_shapes(self, batch_size: int) -> dict[str, tuple[int, ...]]:
        return {"logits": (batch_size, self.n)}

    def sample(self, dist_params: DistParams, key: chex.PRNGKey) -> chex.Array:
        a = jax.random.categorical(key, dist_params["logits"], axis=-1)
        return a.astype(jnp.int32) + self.start

    def log_proba(self, dist_params: DistParams, X: chex.Array) -> chex.Array:
        logp_all = jax.nn.log_softmax(dist_params["logits"], axis=-1)
        X = jnp.asarray(X, jnp.int32) - self.start
        chex.assert_rank(X, 1)
        return jnp.take_along_axis(logp_all, X[:, None], axis=-1)[:, 0]

    def entropy(self, dist_params: DistParams) -> chex.Array:
        # actions masked out with -inf logits have p = 0 and contribute 0 (not 0 * -inf = NaN);
        # the where on log p keeps the gradient finite too
        logp_all = jax.nn.log_softmax(dist_params["logits"], axis=-1)
        p = jnp.exp(logp_all)
        return -jnp.sum(jnp.where(p > 0, p * jnp.where(p > 0, logp_all, 0.0), 0.0), axis=-1)

    def kl_divergence(self, dist_params_p: DistParams, dist_params_q: DistParams) -> chex.Array:
        # terms with p = 0 are 0 (masked actions); q = 0 where p > 0 gives +inf, as it should
        logp = jax.nn.log_softmax(dist_params_p["logits"], axis=-1)
        logq = jax.nn.log_softmax(dist_params_q["logits"], axis=-1)
        p = jnp.exp(logp)
        diff = jnp.where(p > 0, logp - logq, 0.0)
        return jnp.sum(jnp.where(p > 0, p * diff, 0.0), axis=-1)

    def mode(self, dist_params: DistParams) -> chex.Array:
        return jnp.argmax(dist_params["logits"], axis=-1).astype(jnp.int32) + self.start
