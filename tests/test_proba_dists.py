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


# ---- normal, squashed: the atoms at the caps (clipped-action convention) ------------------------
#
# |tanh(u)| is capped at float32(1 - 1e-6), so all u beyond ~7.25 give the same cap action. The
# action's distribution is mixed: the change-of-variables density strictly inside, plus an atom at
# each cap holding P(u >= U+) and P(u <= U-) (Fujita & Maeda 2018). An action within
# 2 eps (|centre| + half) of a cap is that cap, and U± are the pre-actions whose exact squash
# rounds (to float32) onto the edges of those windows.

F32_EPS = float(np.finfo(np.float32).eps)


def np_caps(low, high):
    """(cap_lo, cap_hi, u_lo, u_hi) of a squashed 1-d float32 Box (the documented convention)."""
    c, h = np.float32((high + low) / 2), np.float32((high - low) / 2)
    y_cap = np.float32(1 - 1e-6)
    cap_hi, cap_lo = c + h * y_cap, c - h * y_cap
    tol = np.float32(2 * F32_EPS * (abs(float(c)) + float(h)))
    edge_hi, edge_lo = cap_hi - tol, cap_lo + tol
    # exact actions that round to the window's edge or beyond: half-way to the next float32
    mid_hi = (float(edge_hi) + float(np.nextafter(edge_hi, np.float32(-np.inf)))) / 2
    mid_lo = (float(edge_lo) + float(np.nextafter(edge_lo, np.float32(np.inf)))) / 2
    c, h = float(c), float(h)
    u_hi, u_lo = np.arctanh((mid_hi - c) / h), np.arctanh((mid_lo - c) / h)
    return float(cap_lo), float(cap_hi), u_lo, u_hi


def params_1d(mu, sigma, n=1):
    return {
        "mu": np.full((n, 1), mu, np.float32),
        "logvar": np.full((n, 1), 2 * np.log(sigma), np.float32),
    }


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("mu, sigma", [(9.0, 0.5), (12.0, 0.1), (7.3, 0.3)])
def test_squashed_capped_action_scores_atom_mass(mu, sigma, sign):
    """A sampled capped action scores scipy's log P(u beyond the cap), and so does its gradient.

    Before the fix mu=9, sigma=0.5 gave logp 6.0 with d/dmu -7.0 (the density at the cap); the
    atom's log-mass is ~-1e-4 with d/dmu ~ +8e-4.
    """
    low, high = -2.0, 2.0
    dist = NormalDist(gymnasium.spaces.Box(low, high, shape=(1,), dtype=np.float32))
    cap_lo, cap_hi, u_lo, u_hi = np_caps(low, high)
    mu = sign * mu
    A = np.asarray(dist.sample(params_1d(mu, sigma, 256), jax.random.PRNGKey(0)))
    cap = cap_hi if sign > 0 else cap_lo
    A = A[np.abs(A[:, 0] - cap) < 1e-6][:4]  # a few samples at the cap (>= 66% of them are)
    assert len(A) == 4
    A = A.astype(np.float64)  # a float64 buffer round trip keeps them atoms

    def ref(m):  # scipy, float64: log P(u >= u_hi) or log P(u <= u_lo)
        return stats.norm.logsf(u_hi, m, sigma) if sign > 0 else stats.norm.logcdf(u_lo, m, sigma)

    def logp(m):
        return dist.log_proba({"mu": m, "logvar": params_1d(mu, sigma, 4)["logvar"]}, A)

    np.testing.assert_allclose(logp(params_1d(mu, sigma, 4)["mu"]), ref(mu), rtol=1e-4, atol=1e-7)
    grad = np.asarray(jax.grad(lambda m: logp(m).sum())(jnp.full((4, 1), mu, jnp.float32)))
    h = 1e-4
    fd = (ref(mu + h) - ref(mu - h)) / (2 * h)
    assert sign * fd >= 0  # pushing mu further out makes the cap more likely
    np.testing.assert_allclose(grad[:, 0], fd, rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("mu, logvar", [(0.0, 0.0), (9.0, -1.4), (-6.0, 0.5)])
def test_squashed_interior_log_proba_unchanged(mu, logvar):
    """Actions well inside the caps still score the change-of-variables density (numpy)."""
    low, high = -1.0, 3.0
    dist = NormalDist(gymnasium.spaces.Box(low, high, shape=(1,), dtype=np.float32))
    c, h = 1.0, 2.0
    y = np.array([-1 + 1e-4, -0.9, -0.3, 0.0, 0.5, 0.99, 1 - 1e-4])
    A = (c + h * y).astype(np.float32)[:, None]
    params = {"mu": np.full((7, 1), mu, np.float32), "logvar": np.full((7, 1), logvar, np.float32)}
    y = (A[:, 0].astype(np.float64) - c) / h
    want = np_gauss_logpdf(np.arctanh(y), mu, logvar) - np.log(h * (1 - y**2))
    np.testing.assert_allclose(dist.log_proba(params, A), want, rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("sigma", [0.5, 1.0])
@pytest.mark.parametrize("mu", [0.0, 5.0, 9.0, -9.0])
def test_squashed_density_plus_atoms_is_one(mu, sigma):
    """Density integrated strictly between the caps (trapezoid in u) + both atoms' masses == 1."""
    low, high = -2.0, 2.0
    dist = NormalDist(gymnasium.spaces.Box(low, high, shape=(1,), dtype=np.float32))
    cap_lo, cap_hi, u_lo, u_hi = np_caps(low, high)
    log_proba = jax.jit(dist.log_proba)
    u = np.linspace(u_lo, u_hi, 400_001)
    a = (np.tanh(u) * 2.0).astype(np.float32)[:, None]  # c = 0, h = 2
    dens = np.exp(np.asarray(log_proba(params_1d(mu, sigma, len(u)), a), np.float64))
    interior = integrate.trapezoid(dens * 2.0 * (1 - np.tanh(u) ** 2), u)
    caps = np.array([[cap_lo], [cap_hi]], np.float32)
    atoms = np.exp(np.asarray(log_proba(params_1d(mu, sigma, 2), caps), np.float64))
    want = [stats.norm.cdf(u_lo, mu, sigma), stats.norm.sf(u_hi, mu, sigma)]
    np.testing.assert_allclose(atoms, want, rtol=1e-4, atol=1e-7)
    assert interior + atoms.sum() == pytest.approx(1.0, abs=2e-4)


def test_squashed_cap_frequency_matches_atom_mass():
    """mu=7.3, sigma=0.3: the fraction of samples at the upper cap is exp(log_proba(cap))."""
    low, high = -2.0, 2.0
    dist = NormalDist(gymnasium.spaces.Box(low, high, shape=(1,), dtype=np.float32))
    cap_lo, cap_hi, u_lo, u_hi = np_caps(low, high)
    N = 20_000
    params = params_1d(7.3, 0.3, N)
    A = np.asarray(dist.sample(params, jax.random.PRNGKey(0)))
    at_cap = A[:, 0] >= cap_hi - 2 * F32_EPS * 2.0
    lp = np.asarray(dist.log_proba(params, A))
    np.testing.assert_array_equal(lp[at_cap], lp[at_cap][0])  # all scored as the same atom
    p = float(np.exp(lp[at_cap][0]))
    assert p == pytest.approx(stats.norm.sf(u_hi, 7.3, 0.3), rel=1e-4)
    # binomial noise, plus a little for XLA's float32 tanh, off by up to ~1 ulp (~0.05 in u) here
    assert abs(at_cap.mean() - p) < 4 * np.sqrt(p * (1 - p) / N) + 0.005


@pytest.mark.parametrize("mu", [-20.0, 0.0, 20.0])
def test_squashed_gradients_finite_at_caps_and_inside(mu):
    """d log_proba / d(mu, logvar) is finite at both caps and inside, for mu far beyond either."""
    dist = NormalDist(gymnasium.spaces.Box(-2.0, 2.0, shape=(1,), dtype=np.float32))
    cap_lo, cap_hi, _, _ = np_caps(-2.0, 2.0)
    A = np.array([[cap_lo], [cap_hi], [-1.9], [0.0], [1.5], [-2.0], [2.0]], np.float32)
    for logvar in (-4.0, 0.0, 2.0):
        params = {"mu": jnp.full((7, 1), mu), "logvar": jnp.full((7, 1), logvar)}
        lp, grads = jax.value_and_grad(lambda p: dist.log_proba(p, A).sum())(params)
        assert np.isfinite(lp)
        assert all(np.all(np.isfinite(g)) for g in grads.values())
        # the bounds themselves (e.g. an externally clipped action) count as the caps' atoms
        lp = np.asarray(dist.log_proba(params, A))
        np.testing.assert_array_equal(lp[[5, 6]], lp[[0, 1]])


def test_policy_return_logp_is_atom_mass(box_env):
    """Pendulum policy with mu = 9: pi(s, return_logp=True) gives the cap and its atom log-mass."""
    import haiku as hk

    import a2c_jax

    sigma = 0.5

    def func(S, is_training):
        zeros = hk.Linear(1, w_init=jnp.zeros)(S)  # a parameter, but mu and sigma are constant
        return {"mu": zeros + 9.0, "logvar": zeros + 2 * np.log(sigma)}

    pi = a2c_jax.Policy(func, box_env, random_seed=0)
    low, high = float(box_env.action_space.low[0]), float(box_env.action_space.high[0])
    _, cap_hi, _, u_hi = np_caps(low, high)
    want = stats.norm.logsf(u_hi, 9.0, sigma)  # ~ -1e-4
    rng = np.random.default_rng(0)
    for _ in range(5):
        s = rng.uniform(-1, 1, size=3).astype(np.float32)
        a, logp = pi(s, return_logp=True)
        assert a[0] == np.float32(cap_hi)
        assert logp == pytest.approx(want, rel=1e-4, abs=1e-7)
        dp = pi.dist_params(s)
        lib = pi.proba_dist.log_proba({k: x[None] for k, x in dp.items()}, a[None])
        assert logp == pytest.approx(float(lib[0]), rel=1e-6, abs=1e-9)
    a, logp = pi.mode(s, return_logp=True)
    assert a[0] == np.float32(cap_hi) and logp == pytest.approx(want, rel=1e-4, abs=1e-7)


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


def test_categorical_with_masked_actions_has_finite_entropy_kl_and_gradients():
    """-inf logits (masked actions): entropy and KL equal those of the distribution over the
    remaining actions (numpy reference), and their gradients are finite."""
    from a2c_jax.proba_dists import CategoricalDist

    dist = CategoricalDist(gymnasium.spaces.Discrete(4))
    logits = jnp.array([[0.3, -jnp.inf, 1.2, -0.5], [-jnp.inf, 2.0, -jnp.inf, 0.1]])
    q_logits = jnp.array([[1.0, 0.0, -1.0, 0.2], [0.5, 0.5, 0.5, 0.5]])

    def np_dist(row):
        row = np.asarray(row, np.float64)
        keep = np.isfinite(row)
        p = np.zeros_like(row)
        p[keep] = np.exp(row[keep] - row[keep].max())
        return p / p.sum()

    for i in range(2):
        p, q = np_dist(logits[i]), np_dist(q_logits[i])
        nz = p > 0
        want_h = -np.sum(p[nz] * np.log(p[nz]))
        want_kl = np.sum(p[nz] * (np.log(p[nz]) - np.log(q[nz])))
        assert float(dist.entropy({"logits": logits})[i]) == pytest.approx(want_h, rel=1e-5)
        assert float(dist.kl_divergence({"logits": logits}, {"logits": q_logits})[i]) == (
            pytest.approx(want_kl, rel=1e-5))
    g = jax.grad(lambda z: dist.entropy({"logits": z}).sum()
                 + dist.kl_divergence({"logits": z}, {"logits": q_logits}).sum())(logits)
    assert np.all(np.isfinite(np.asarray(g)))
