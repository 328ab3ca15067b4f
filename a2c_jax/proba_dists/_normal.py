"""Diagonal Gaussian over a ``gymnasium.spaces.Box`` action space, tanh-squashed into finite bounds."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from ._base import BaseProbaDist, DistParams

_LOG_2PI = float(np.log(2 * np.pi))
# Squashed actions are kept this far inside (-1, 1) (in units of the half-range), so that the
# inverse ``atanh`` stays finite in float32 and ``log_proba(a)`` of a returned action is finite.
_EDGE = 1e-6


class NormalDist(BaseProbaDist):
    """A diagonal Gaussian with ``dist_params = {'mu': [B, *shape], 'logvar': [B, *shape]}``.

    Bounds. Dimensions whose ``Box`` bounds are both finite are *squashed*: a pre-action
    ``u ~ N(mu, exp(logvar))`` is mapped to ``a = low + (tanh(u) + 1) (high - low) / 2``, so every
    action lies strictly inside the box (``|tanh(u)|`` is capped at ``1 - 1e-6``). Dimensions with an
    infinite bound are left unsquashed (``a = u``).

    Log-probability convention. ``log_proba(a)`` is the exact density of the squashed action,
    change of variables included: ``log N(u; mu, σ²) - log |da/du|`` with ``u = atanh(...)`` inverted
    from ``a``. A policy's ``pi(s, return_logp=True)`` evaluates this same function at the action it
    returns, so the stored ``logp`` and a later ``log_proba`` of that action agree.

    ``mode`` returns the squashed mean ``squash(mu)`` (the median of the squashed distribution,
    the usual greedy action). Entropy is that of the unsquashed Gaussian (the squashed one has no
    closed form); the KL divergence is exact, since KL is invariant under the same bijection
    applied to both.
    """

    param_keys = ("logvar", "mu")

    def __init__(self, space):
        super().__init__(space)
        self.shape = tuple(space.shape)
        low = np.broadcast_to(np.asarray(space.low, np.float64), self.shape)
        high = np.broadcast_to(np.asarray(space.high, np.float64), self.shape)
        self._squash = np.isfinite(low) & np.isfinite(high)
        # unsquashed dimensions get centre 0 and half-range 1, so the formulas below reduce to a = u
        low, high = np.where(self._squash, low, -1.0), np.where(self._squash, high, 1.0)
        self._centre = ((high + low) / 2).astype(np.float32)
        self._half = ((high - low) / 2).astype(np.float32)

    def param_shapes(self, batch_size):
        shape = (batch_size, *self.shape)
        return {"mu": shape, "logvar": shape}

    def _log_normal(self, u, mu, logvar):
        return -0.5 * (_LOG_2PI + logvar + jnp.square(u - mu) * jnp.exp(-logvar))

    def _sum_event(self, x):
        return jnp.sum(x.reshape(x.shape[0], -1), axis=-1)

    def sample(self, dist_params: DistParams, key: chex.PRNGKey) -> chex.Array:
        mu, logvar = dist_params["mu"], dist_params["logvar"]
        u = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape, mu.dtype)
        return self._to_action(u)

    def _to_action(self, u):
        y = jnp.clip(jnp.tanh(u), -1 + _EDGE, 1 - _EDGE)
        return jnp.where(self._squash, self._centre + self._half * y, u)

    def log_proba(self, dist_params: DistParams, X: chex.Array) -> chex.Array:
        mu, logvar = dist_params["mu"], dist_params["logvar"]
        X = jnp.asarray(X, mu.dtype)
        chex.assert_equal_shape([X, mu])
        y = jnp.clip((X - self._centre) / self._half, -1 + _EDGE, 1 - _EDGE)
        u = jnp.where(self._squash, jnp.arctanh(y), X)
        # log |da/du| = log(half) + log(1 - tanh(u)^2), only on squashed dimensions
        log_det = jnp.where(self._squash, jnp.log(self._half) + jnp.log1p(-jnp.square(y)), 0.0)
        return self._sum_event(self._log_normal(u, mu, logvar) - log_det)

    def entropy(self, dist_params: DistParams) -> chex.Array:
        logvar = dist_params["logvar"]
        return self._sum_event(0.5 * (_LOG_2PI + 1.0 + logvar))

    def kl_divergence(self, dist_params_p: DistParams, dist_params_q: DistParams) -> chex.Array:
        mu_p, lv_p = dist_params_p["mu"], dist_params_p["logvar"]
        mu_q, lv_q = dist_params_q["mu"], dist_params_q["logvar"]
        kl = 0.5 * (lv_q - lv_p + (jnp.exp(lv_p) + jnp.square(mu_p - mu_q)) * jnp.exp(-lv_q) - 1.0)
        return self._sum_event(kl)

    def mode(self, dist_params: DistParams) -> chex.Array:
        return self._to_action(dist_params["mu"])
