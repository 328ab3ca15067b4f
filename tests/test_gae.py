"""compute_gae against the PyTorch tutorial's own demo (a stored fixture) and a numpy loop."""

import json
from pathlib import Path

import chex
import jax
import numpy as np
import pytest

from a2c_jax.reward_tracing import compute_gae

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "gae_seed_demo.json").read_text())


def numpy_gae(rewards, values, next_value, terminated, gamma, lam, truncated=None, final=None):
    """The definition as a plain reverse loop over one env, truncations bootstrapped."""
    T = len(rewards)
    truncated = np.zeros(T) if truncated is None else truncated
    adv, running = np.zeros(T), 0.0
    for t in reversed(range(T)):
        v_next = next_value if t == T - 1 else values[t + 1]
        if terminated[t]:
            bootstrap, cut = 0.0, True
        elif truncated[t]:
            bootstrap, cut = final[t], True
        else:
            bootstrap, cut = v_next, False
        delta = rewards[t] + gamma * bootstrap - values[t]
        running = delta + (0.0 if cut else gamma * lam * running)
        adv[t] = running
    return adv, adv + values


@pytest.mark.parametrize("lam", ["0.0", "0.95", "1.0"])
@pytest.mark.parametrize("jit", [False, True])
def test_reproduces_the_tutorial_demo(lam, jit):
    """The seed tutorial's demo inputs (torch.manual_seed(42)) give its outputs to 1e-5."""
    f = jax.jit(compute_gae, static_argnames=("gamma", "lam")) if jit else compute_gae
    adv, ret = f(np.array(FIXTURE["rewards"], np.float32), np.array(FIXTURE["values"], np.float32),
                 np.float32(FIXTURE["next_value"]), np.array(FIXTURE["dones"], np.float32),
                 gamma=FIXTURE["gamma"], lam=float(lam))
    want = FIXTURE["results"][lam]
    np.testing.assert_allclose(adv, want["advantages"], atol=1e-5)
    np.testing.assert_allclose(ret, want["returns"], atol=1e-5)


def test_batched_equals_each_column(rng):
    """[T, B] gives, column by column, what [T] gives (and what the numpy loop gives)."""
    T, B = 17, 4
    r, v = rng.normal(size=(T, B)), rng.normal(size=(T, B))
    d, nv = rng.random((T, B)) < 0.15, rng.normal(size=B)
    adv, ret = compute_gae(r, v, nv, d, gamma=0.9, lam=0.8)
    chex.assert_shape([adv, ret], (T, B))
    for b in range(B):
        a1, _ = compute_gae(r[:, b], v[:, b], nv[b], d[:, b], gamma=0.9, lam=0.8)
        np.testing.assert_allclose(adv[:, b], a1, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(adv[:, b], numpy_gae(r[:, b], v[:, b], nv[b], d[:, b], 0.9, 0.8)[0],
                                   rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, adv + v, rtol=1e-6)


def test_truncation_aware_form_vs_numpy(rng):
    """Truncated steps bootstrap from final_values and stop the recursion, as in the loop."""
    T = 30
    r, v, fv = rng.normal(size=T), rng.normal(size=T), rng.normal(size=T)
    term, trunc = rng.random(T) < 0.1, rng.random(T) < 0.1
    adv, ret = compute_gae(r, v, 0.3, term, gamma=0.95, lam=0.9, truncated=trunc, final_values=fv)
    want_adv, want_ret = numpy_gae(r, v, 0.3, term, 0.95, 0.9, trunc, fv)
    np.testing.assert_allclose(adv, want_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, want_ret, rtol=1e-5, atol=1e-5)


def test_lambda_limits(rng):
    """λ=0 is the one-step TD error; λ=1 is the discounted return (bootstrapped at T) minus v."""
    T = 12
    r, v = rng.normal(size=T), rng.normal(size=T)
    d = np.zeros(T, bool)
    d[5] = True
    adv0, _ = compute_gae(r, v, 0.7, d, gamma=0.9, lam=0.0)
    v_next = np.append(v[1:], 0.7) * (1 - d)
    np.testing.assert_allclose(adv0, r + 0.9 * v_next - v, rtol=1e-5, atol=1e-6)
    adv1, ret1 = compute_gae(r, v, 0.7, d, gamma=0.9, lam=1.0)
    G, mc = 0.7, np.zeros(T)
    for t in reversed(range(T)):
        G = r[t] + 0.9 * (0.0 if d[t] else G)
        mc[t] = G
    np.testing.assert_allclose(ret1, mc, rtol=1e-5, atol=1e-5)


def test_bad_inputs():
    """Truncation without final values, and mismatched shapes, fail with clear errors."""
    with pytest.raises(ValueError, match="final_values"):
        compute_gae(np.zeros(3), np.zeros(3), 0.0, np.zeros(3), truncated=np.ones(3))
    with pytest.raises(AssertionError):
        compute_gae(np.zeros(3), np.zeros(4), 0.0, np.zeros(3))
    with pytest.raises(AssertionError):
        compute_gae(np.zeros((3, 2)), np.zeros((3, 2)), 0.0, np.zeros((3, 2)))  # next_value [2]


def test_compiles_once_for_a_shape():
    """A jitted compute_gae is traced once per shape, whatever the values."""
    f = jax.jit(chex.assert_max_traces(compute_gae, n=1), static_argnames=("gamma", "lam"))
    for seed in range(3):
        r = np.random.default_rng(seed).normal(size=(8, 2)).astype(np.float32)
        f(r, r, np.zeros(2, np.float32), np.zeros((8, 2), np.float32), gamma=0.99, lam=0.95)


def test_bad_gamma_lam_and_unpaired_final_values_raise():
    """gamma or lam outside [0, 1] (or NaN) and final_values without truncated are refused."""
    r = np.ones(4, np.float32)
    for kw in [{"gamma": 1.5}, {"gamma": -0.1}, {"gamma": float("nan")}, {"lam": -1.0},
               {"lam": 1.01}]:
        with pytest.raises(ValueError, match="must be in"):
            compute_gae(r, r, 0.0, np.zeros(4), **kw)
    with pytest.raises(ValueError, match="final_values"):
        compute_gae(r, r, 0.0, np.zeros(4), final_values=r)
    # a traced gamma (inside the caller's jit) is still accepted
    adv, _ = jax.jit(lambda g: compute_gae(r, r, 0.0, np.zeros(4), gamma=g))(0.9)
    assert adv.shape == (4,)
