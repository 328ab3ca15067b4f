"""Diagonal Gaussian over a ``gymnasium.spaces.Box`` action space, tanh-squashed into finite bounds."""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr

from ._base import BaseProbaDist, DistParams

_LOG_2PI = float(np.log(2 * np.pi))
# Squashed actions are kept this far inside (-1, 1) (in units of the half-range), so that the
# inverse ``atanh`` stays finite in float32 and ``log_proba(a)`` of a returned action is finite.
_EDGE = 1e-6
# An action within this many machine epsilons of (|centre| + half) of a cap is that cap; see
# ``NormalDist._atoms``.
_CAP_TOL_EPS = 2


class NormalDist(BaseProbaDist):
    """A diagonal Gaussian with ``dist_params = {'mu': [B, *shape], 'logvar': [B, *shape]}``.

    Bounds. Dimensions whose ``Box`` bounds are both finite are *squashed*: a pre-action
    ``u ~ N(mu, σ²)``, ``σ = exp(logvar / 2)``, is mapped to
    ``a = low + (tanh(u) + 1) (high - low) / 2`` with ``|tanh(u)|`` capped at ``1 - 1e-6``, so every
    action lies strictly inside the box and every ``|u|`` beyond ``atanh(1 - 1e-6) ≈ 7.25`` gives
    one of two *cap* actions. Dimensions with an infinite bound are left unsquashed (``a = u``).

    Log-probability convention. On a squashed dimension the action's distribution is *mixed*, as
    in Fujita & Maeda (2018), "Clipped Action Policy Gradient": a density strictly between the caps
    plus an atom at each cap. ``log_proba(a)`` sums over the event dimensions

    * strictly inside: the log-density, change of variables included,
      ``log N(u; mu, σ²) - log |da/du|`` with ``u = atanh(...)`` inverted from ``a``;
    * at the upper cap: the atom's log-mass ``log P(u >= U+) = log Φ((mu - U+) / σ)``;
    * at the lower cap: ``log P(u <= U-) = log Φ((U- - mu) / σ)``;
    * on an unsquashed dimension: ``log N(a; mu, σ²)``.

    An action is *at* a cap when it is within ``2 eps (|centre| + half)`` (a couple of float32
    ulps) of it or beyond it, so an action that went through a float32 or float64 buffer is still
    recognised. ``U±`` are the pre-actions whose exact squash rounds onto the edges of those
    windows, so the atoms hold the probability of exactly the actions scored as atoms and density
    plus atoms integrate to 1: ``U+ ≈ 7.13`` for float32 actions in a box centred on 0 (it would
    be ``atanh(1 - 1e-6) ≈ 7.25`` in exact arithmetic; see ``_atoms``). Hence a bang-bang policy
    (``mu`` far beyond ``U+``) scores its capped actions ``≈ 0`` with a small, correctly signed
    gradient, where the density at the cap would be large and pull ``mu`` back. A policy's
    ``pi(s, return_logp=True)`` evaluates this same function at the action it returns, so the
    stored ``logp`` and a later ``log_proba`` of that action agree.

    ``mode`` returns the squashed mean ``squash(mu)`` (the median of the squashed distribution,
    the usual greedy action). ``entropy`` and ``kl_divergence`` are those of the underlying
    (unsquashed) Gaussians: the squashed distribution's entropy has no closed form, and the
    Gaussian KL is an upper bound on the KL between the squashed, capped actions (the
    data-processing inequality; equal to it when no mass reaches the caps).
    """

    param_keys = ("logvar", "mu")

    def __init__(self, space: Any) -> None:
        super().__init__(space)
        self.shape = tuple(space.shape)
        low = np.broadcast_to(np.asarray(space.low, np.float64), self.shape)
        high = np.broadcast_to(np.asarray(space.high, np.float64), self.shape)
        self._squash = np.isfinite(low) & np.isfinite(high)
        # unsquashed dimensions get centre 0 and half-range 1, so the formulas below reduce to a = u
        low, high = np.where(self._squash, low, -1.0), np.where(self._squash, high, 1.0)
        self._centre = ((high + low) / 2).astype(np.float32)
        self._half = ((high - low) / 2).astype(np.float32)
        self._atoms_cache: dict[np.dtype, tuple[np.ndarray, ...]] = {}

    def param_shapes(self, batch_size: int) -> dict[str, tuple[int, ...]]:
        shape = (batch_size, *self.shape)
        return {"mu": shape, "logvar": shape}

    def _log_normal(self, u: chex.Array, mu: chex.Array, logvar: chex.Array) -> chex.Array:
        return -0.5 * (_LOG_2PI + logvar + jnp.square(u - mu) * jnp.exp(-logvar))

    def _sum_event(self, x: chex.Array) -> chex.Array:
        return jnp.sum(x.reshape(x.shape[0], -1), axis=-1)

    def sample(self, dist_params: DistParams, key: chex.PRNGKey) -> chex.Array:
        mu, logvar = dist_params["mu"], dist_params["logvar"]
        u = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape, mu.dtype)
        return self._to_action(u)

    def _to_action(self, u: chex.Array) -> chex.Array:
        y = jnp.clip(jnp.tanh(u), -1 + _EDGE, 1 - _EDGE)
        return jnp.where(self._squash, self._centre + self._half * y, u)

    def _atoms(self, dtype: Any) -> tuple[np.ndarray, ...]:
        """``(edge_lo, edge_hi, u_lo, u_hi)`` for actions of ``dtype``, numpy, of the event shape.

        An action ``a >= edge_hi = cap_hi - tol`` is the upper cap (``a <= edge_lo``, the lower),
        with the caps computed by the expression ``_to_action`` uses. ``tol = 2 eps (|centre| +
        half)`` is at least 2 ulps of any action in the box: a float32/float64 round trip is
        exact, and this covers a fused multiply-add computing ``centre + half * y`` differently
        in ``_to_action`` (at most ~1.5 eps (|centre| + half) apart). It is tiny next to EDGE only
        in absolute terms: near the cap ``1 - tanh(u)`` is ~1e-6, so the window still spans ~0.1
        in ``u`` (more for boxes far off 0): the float32 action grid cannot resolve the squash
        more finely there. Hence the atoms' thresholds ``u_hi``/``u_lo`` are not
        ``±atanh(1 - EDGE)`` but the pre-actions whose exact squash rounds onto the window's edge
        (half-way to the next representable action): the atoms then carry the mass of exactly
        the actions scored as atoms, and density plus atoms integrate to 1.
        """
        key = np.dtype(dtype)
        if key not in self._atoms_cache:
            centre, half = self._centre.astype(key), self._half.astype(key)
            y_cap = key.type(1 - _EDGE)
            tol = (_CAP_TOL_EPS * np.finfo(key).eps * (np.abs(centre) + half)).astype(key)
            edge_hi = centre + half * y_cap - tol
            edge_lo = centre + half * -y_cap + tol
            f64 = np.float64
            mid_hi = (edge_hi.astype(f64) + np.nextafter(edge_hi, -np.inf).astype(f64)) / 2
            mid_lo = (edge_lo.astype(f64) + np.nextafter(edge_lo, np.inf).astype(f64)) / 2
            c, h = centre.astype(f64), half.astype(f64)
            y_max = 1 - _EDGE  # keeps atanh finite for degenerate (tiny, far off-centre) boxes
            u_hi = np.arctanh(np.clip((mid_hi - c) / h, -y_max, y_max))
            u_lo = np.arctanh(np.clip((mid_lo - c) / h, -y_max, y_max))
            self._atoms_cache[key] = (edge_lo, edge_hi, u_lo.astype(key), u_hi.astype(key))
        return self._atoms_cache[key]

    def log_proba(self, dist_params: DistParams, X: chex.Array) -> chex.Array:
        mu, logvar = dist_params["mu"], dist_params["logvar"]
        X = jnp.asarray(X, mu.dtype)
        chex.assert_equal_shape([X, mu])
        # interior: the density, change of variables included. y is clipped so that this branch
        # stays finite (value and gradient) at the caps too, where it is not selected.
        y = jnp.clip((X - self._centre) / self._half, -1 + _EDGE, 1 - _EDGE)
        u = jnp.where(self._squash, jnp.arctanh(y), X)
        # log |da/du| = log(half) + log(1 - tanh(u)^2), only on squashed dimensions
        log_det = jnp.where(self._squash, jnp.log(self._half) + jnp.log1p(-jnp.square(y)), 0.0)
        log_dens = self._log_normal(u, mu, logvar) - log_det
        # the caps (within a tolerance) and their atoms' pre-action thresholds: see _atoms
        edge_lo, edge_hi, u_lo, u_hi = self._atoms(X.dtype)
        at_hi = self._squash & (edge_hi <= X)
        at_lo = self._squash & (edge_lo >= X) & ~at_hi
        # log P(u >= u_hi) = log Φ((mu - u_hi)/σ), log P(u <= u_lo) = log Φ((u_lo - mu)/σ); the
        # argument is 0 where no atom is selected, so the unselected branch's gradient is finite
        inv_sigma = jnp.exp(-0.5 * logvar)
        z_lo = jnp.where(at_lo, (u_lo - mu) * inv_sigma, 0.0)
        z = jnp.where(at_hi, (mu - u_hi) * inv_sigma, z_lo)
        logp = jnp.where(at_hi | at_lo, log_ndtr(z), log_dens)
        return self._sum_event(logp)

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
