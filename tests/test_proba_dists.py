"""CategoricalDist and NormalDist vs numpy/scipy formulas, quadrature and sample frequencies."""

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import np_log_softmax
from scipy import integrate, stats

from a2c_jax.proba_dists import CategoricalDist, NormalDist, proba_dist_for_space

# ---- categorical ----------------------------------------------------------------------------


@pytest.fixture
def cat():
    return CategoricalDist(gymnasium.spaces.Discrete(5, start=3))


@pytest.fixture
def logits(rng):
    return rng.normal(scale=2.0, size=(7, 5)).astype(np.float32)


def test_categorical_log_proba(cat, logits, rng):
    """log_proba == numpy log_softmax(logits)[a - start], actions offset by Discrete.start."""
    A = rng.integers(3, 8, size=7)
    got = np.asarray(cat.log_proba({"logits": logits}, A))
    want = np_log_softmax(logits)[np.arange(7), A - 3]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_categorical_entropy_kl_mode(cat, logits, rng):
    """entropy, KL(p||q) and mode vs numpy -Σp log p, Σp(log p - log q), argmax + start."""
    logits_q = rng.normal(size=(7, 5)).astype(np.float32)
    logp, logq = np_log_softmax(logits), np_log_softmax(logits_q)
    p = np.exp(logp)
    np.testing.assert_allclose(cat.entropy({"logits": logits}), -(p * logp).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(
        cat.kl_divergence({"logits": logits}, {"logits": logits_q}),
        (p * (logp - logq)).sum(-1),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        cat.kl_divergence({"logits": logits}, {"logits": logits}), 0.0, atol=1e-6
    )
    np.testing.assert_array_equal(cat.mode({"logits": logits}), logits.argmax(-1) + 3)


def test_categorical_sample_frequencies(cat):
    """Empirical frequencies of 40k samples (fixed key) match softmax within 5 standard errors."""
    logits = np.array([1.0, -0.5, 0.0, 2.0, -3.0], np.float32)
    N = 40_000
    A = np.asarray(cat.sample({"logits": jnp.broadcast_to(logits, (N, 5))}, jax.random.PRNGKey(0)))
    assert A.shape == (N,)
    assert A.min() >= 3 and A.max() <= 7
    freq = np.bincount(A - 3, minlength=5) / N
    p = np.exp(np_log_softmax(logits))
    np.testing.assert_array_less(np.abs(freq - p), 5 * np.sqrt(p * (1 - p) / N) + 1e-12)


def test_categorical_jit_matches_eager(cat, logits):
    """log_proba and entropy agree with and without jit."""
    A = np.array([3, 4, 5, 6, 7, 3, 4])
    with jax.disable_jit():
        lp_eager, h_eager = cat.log_proba({"logits": logits}, A), cat.entropy({"logits": logits})
    lp_jit = jax.jit(cat.log_proba)({"logits": logits}, A)
    h_jit = jax.jit(cat.entropy)({"logits": logits})
    np.testing.assert_allclose(lp_jit, lp_eager, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(h_jit, h_eager, rtol=1e-6, atol=1e-6)


# ---- normal, unbounded ----------------------------------------------------------------------


def np_gauss_logpdf(x, mu, logvar):
    return -0.5 * (np.log(2 * np.pi) + logvar + (x - mu) ** 2 / np.exp(logvar))


@pytest.fixture
def unbounded():
    return NormalDist(gymnasium.spaces.Box(-np.inf, np.inf, shape=(2, 3), dtype=np.float32))


def gauss_params(rng, shape):
    return {
        "mu": rng.normal(size=shape).astype(np.float32),
        "logvar": rng.uniform(-1.5, 1.0, size=shape).astype(np.float32),
    }


def test_normal_unbounded_formulas(unbounded, rng):
    """Unbounded Box: log_proba, entropy, KL, mode vs the numpy diagonal-Gaussian formulas."""
    p, q = gauss_params(rng, (4, 2, 3)), gauss_params(rng, (4, 2, 3))
    X = rng.normal(size=(4, 2, 3)).astype(np.float32)
    lp = np_gauss_logpdf(X, p["mu"], p["logvar"]).reshape(4, -1).sum(-1)
    np.testing.assert_allclose(unbounded.log_proba(p, X), lp, rtol=1e-5, atol=1e-5)
    h = (0.5 * (np.log(2 * np.pi * np.e) + p["logvar"])).reshape(4, -1).sum(-1)
    np.testing.assert_allclose(unbounded.entropy(p), h, rtol=1e-5, atol=1e-5)
    vp, vq = np.exp(p["logvar"]), np.exp(q["logvar"])
    kl = 0.5 * (np.log(vq / vp) + (vp + (p["mu"] - q["mu"]) ** 2) / vq - 1)
    np.testing.assert_allclose(
        unbounded.kl_divergence(p, q), kl.reshape(4, -1).sum(-1), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(unbounded.mode(p), p["mu"], rtol=1e-6)
    S = np.asarray(unbounded.sample(p, jax.random.PRNGKey(0)))
    assert S.shape == (4, 2, 3)


# ---- normal, tanh-squashed into a finite Box ---------------------------------------------------


def squashed_cdf(a, mu, sigma, low, high):
    """P(A <= a) for A = low + (tanh(U) + 1)(high - low)/2, U ~ N(mu, sigma²) (scipy)."""
    y = 2 * (a - low) / (high - low) - 1
    return stats.norm.cdf((np.arctanh(y) - mu) / sigma)


@pytest.mark.parametrize("mu, logvar", [(0.0, 0.0), (0.7, -1.0), (-1.2, 0.5)])
def test_squashed_log_proba_is_derivative_of_cdf(mu, logvar):
    """exp(log_proba) == d/da of the squashed CDF (scipy norm.cdf, central differences)."""
    low, high = -2.0, 3.0
    dist = NormalDist(gymnasium.spaces.Box(low, high, shape=(1,), dtype=np.float32))
    a = np.linspace(low + 0.05, high - 0.05, 41)
    params = {
        "mu": np.full((41, 1), mu, np.float32),
        "logvar": np.full((41, 1), logvar, np.float32),
    }
    got = np.asarray(dist.log_proba(params, a[:, None].astype(np.float32)))
    h, sigma = 1e-5, np.exp(0.5 * logvar)
    dens = (
        squashed_cdf(a + h, mu, sigma, low, high) - squashed_cdf(a - h, mu, sigma, low, high)
    ) / (2 * h)
    np.testing.assert_allclose(np.exp(got), dens, rtol=2e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("mu, logvar", [(0.0, 0.0), (1.0, -2.0), (-0.5, 1.0)])
def test_squashed_density_integrates_to_one(mu, logvar):
    """The squashed density integrates to 1 over the 1-d Box (scipy.integrate.quad)."""
    low, high = -1.0, 2.0
    dist = NormalDist(gymnasium.spaces.Box(low, high, shape=(1,), dtype=np.float32))
    params = {"mu": np.array([[mu]], np.float32), "logvar": np.array([[logvar]], np.float32)}
    log_proba = jax.jit(dist.log_proba)

    def density(a):
        return float(np.exp(log_proba(params, np.array([[a]], np.float32))[0]))

    total, _ = integrate.quad(density, low, high, limit=200)
    assert total == pytest.approx(1.0, abs=2e-3)


def test_squashed_mixed_bounds_log_proba(rng):
    """Box with one finite and one infinite dim: sum of the squashed and plain log-densities."""
    low, high = np.array([-1.0, -np.inf], np.float32), np.array([3.0, np.inf], np.float32)
    dist = NormalDist(gymnasium.spaces.Box(low, high, dtype=np.float32))
    p = gauss_params(rng, (6, 2))
    X = np.stack([rng.uniform(-0.9, 2.9, 6), rng.normal(size=6) * 3], -1).astype(np.float32)
    c, half = 1.0, 2.0
    y = (X[:, 0] - c) / half
    u = np.arctanh(y)
    lp0 = np_gauss_logpdf(u, p["mu"][:, 0], p["logvar"][:, 0]) - np.log(half * (1 - y**2))
    lp1 = np_gauss_logpdf(X[:, 1], p["mu"][:, 1], p["logvar"][:, 1])
    np.testing.assert_allclose(dist.log_proba(p, X), lp0 + lp1, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(dist.mode(p)[:, 0], c + half * np.tanh(p["mu"][:, 0]), rtol=1e-5)
    np.testing.assert_allclose(dist.mode(p)[:, 1], p["mu"][:, 1], rtol=1e-6)


def test_squashed_samples_in_bounds_and_distributed(rng):
    """Samples stay strictly inside the Box, and their empirical CDF matches scipy's."""
    low, high = np.array([-2.0, 0.0], np.float32), np.array([1.0, 10.0], np.float32)
    dist = NormalDist(gymnasium.spaces.Box(low, high, dtype=np.float32))
    N = 20_000
    mu, logvar = np.array([0.3, 2.5], np.float32), np.array([0.0, 1.5], np.float32)
    params = {"mu": np.broadcast_to(mu, (N, 2)), "logvar": np.broadcast_to(logvar, (N, 2))}
    A = np.asarray(dist.sample(params, jax.random.PRNGKey(7)))
    assert A.shape == (N, 2)
    assert np.all(low < A) and np.all(high > A)
    assert np.all(np.isfinite(dist.log_proba(params, A)))
    for d in range(2):
        for q in np.linspace(low[d], high[d], 7)[1:-1]:
            want = squashed_cdf(q, mu[d], np.exp(0.5 * logvar[d]), low[d], high[d])
            got = np.mean(A[:, d] <= q)
            assert abs(got - want) < 5 * np.sqrt(want * (1 - want) / N) + 1e-3


def test_squashed_kl_and_entropy(rng):
    """Finite Box: KL is the Gaussian KL (bijection-invariant); entropy is the pre-squash one."""
    dist = NormalDist(gymnasium.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32))
    p, q = gauss_params(rng, (5, 3)), gauss_params(rng, (5, 3))
    vp, vq = np.exp(p["logvar"]), np.exp(q["logvar"])
    kl = 0.5 * (np.log(vq / vp) + (vp + (p["mu"] - q["mu"]) ** 2) / vq - 1)
    np.testing.assert_allclose(dist.kl_divergence(p, q), kl.sum(-1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        dist.entropy(p), (0.5 * (np.log(2 * np.pi * np.e) + p["logvar"])).sum(-1), rtol=1e-5
    )


def test_normal_jit_matches_eager(rng):
    """Squashed log_proba agrees with and without jit."""
    dist = NormalDist(gymnasium.spaces.Box(-1.0, 2.0, shape=(2,), dtype=np.float32))
    p = gauss_params(rng, (5, 2))
    X = rng.uniform(-0.9, 1.9, size=(5, 2)).astype(np.float32)
    with jax.disable_jit():
        eager = np.asarray(dist.log_proba(p, X))
    np.testing.assert_allclose(jax.jit(dist.log_proba)(p, X), eager, rtol=1e-5, atol=1e-5)


# ---- selection and parameter checks -------------------------------------------------------------


def test_proba_dist_for_space():
    """Discrete -> CategoricalDist, Box -> NormalDist, anything else -> TypeError naming it."""
    assert isinstance(proba_dist_for_space(gymnasium.spaces.Discrete(3)), CategoricalDist)
    assert isinstance(proba_dist_for_space(gymnasium.spaces.Box(-1, 1, (2,))), NormalDist)
    with pytest.raises(TypeError, match="MultiDiscrete"):
        proba_dist_for_space(gymnasium.spaces.MultiDiscrete([2, 3]))


def test_unbounded_box_constructs_without_warnings():
    """NormalDist on an unbounded Box raises no numpy warning (e.g. under -W error)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NormalDist(gymnasium.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32))


def test_check_dist_params(cat, unbounded):
    """check_dist_params rejects missing keys and wrong shapes with ValueError."""
    cat.check_dist_params({"logits": np.zeros((4, 5))}, 4)
    with pytest.raises(ValueError, match="logits"):
        cat.check_dist_params({"mu": np.zeros((4, 5))}, 4)
    with pytest.raises(ValueError):
        cat.check_dist_params({"logits": np.zeros((4, 4))}, 4)
    with pytest.raises(ValueError):
        unbounded.check_dist_params({"mu": np.zeros((4, 2, 3))}, 4)
    with pytest.raises(ValueError):
        unbounded.check_dist_params({"mu": np.zeros((4, 6)), "logvar": np.zeros((4, 6))}, 4)
