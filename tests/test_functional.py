"""a2c_jax.functional against independent numpy references (hand loops), jitted and not."""

import chex
import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from a2c_jax import functional as af
from a2c_jax.proba_dists import CategoricalDist, NormalDist
from a2c_jax.reward_tracing import compute_gae
from a2c_jax.value_losses import huber, mse

B = 7


def _rng(seed=0):
    return np.random.default_rng(seed)


def _f32(x):
    return np.asarray(x, np.float32)


# ---- numpy references: loops over samples and time steps, float64 ---------------------------------


def np_pg_loss(logp, adv, w):
    return -sum(w[i] * adv[i] * logp[i] for i in range(len(logp))) / len(logp)


def np_ppo(logp, logp_old, adv, eps, w):
    total, clipped = 0.0, 0
    for i in range(len(logp)):
        ratio = np.exp(float(logp[i]) - float(logp_old[i]))
        r_clip = min(max(ratio, 1 - eps), 1 + eps)
        total += w[i] * min(ratio * adv[i], r_clip * adv[i])
        clipped += abs(ratio - 1) > eps
    return -total / len(logp), clipped / len(logp)


def np_categorical_entropy(logits):
    out = []
    for row in np.asarray(logits, np.float64):
        p = np.exp(row - row.max())
        p /= p.sum()
        out.append(-sum(pk * np.log(pk) for pk in p if pk > 0))
    return np.array(out)


def np_categorical_kl(logits_p, logits_q):
    out = []
    for lp, lq in zip(np.asarray(logits_p, np.float64), np.asarray(logits_q, np.float64)):
        p, q = np.exp(lp - lp.max()), np.exp(lq - lq.max())
        p, q = p / p.sum(), q / q.sum()
        out.append(sum(pk * np.log(pk / qk) for pk, qk in zip(p, q)))
    return np.array(out)


def np_gae_loop(r, discount, lam, v_tm1, v_t):
    """Backwards loop: A_t = δ_t + discount_t λ_t A_{t+1}, one sequence [T]."""
    T = len(r)
    lam = np.broadcast_to(lam, (T,))
    adv, a_next = np.zeros(T), 0.0
    for t in reversed(range(T)):
        delta = r[t] + discount[t] * v_t[t] - v_tm1[t]
        a_next = delta + discount[t] * lam[t] * a_next
        adv[t] = a_next
    return adv


def np_gae_episodes(r, v, next_value, done, trunc, final_v, gamma, lam):
    """The same advantages the other way round: each episode segment on its own, forwards sums."""
    T = len(r)
    adv = np.zeros(T)
    for t in range(T):
        total, k, disc = 0.0, t, 1.0
        while True:
            if done[k]:
                boot = 0.0
            elif trunc[k]:
                boot = final_v[k]
            else:
                boot = v[k + 1] if k + 1 < T else next_value
            total += disc * (r[k] + gamma * boot - v[k])
            if done[k] or trunc[k] or k + 1 == T:
                break
            disc *= gamma * lam
            k += 1
        adv[t] = total
    return adv


# ---- the losses ------------------------------------------------------------------------------------


class LossesTest(chex.TestCase):

    def setUp(self):
        super().setUp()
        rng = _rng(1)
        self.logp = _f32(rng.normal(size=B) - 1.0)
        self.logp_old = _f32(self.logp + rng.normal(scale=0.4, size=B))
        self.adv = _f32(rng.normal(size=B))
        self.w = _f32(rng.random(B) + 0.5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_policy_gradient_loss(self):
        f = self.variant(af.policy_gradient_loss)
        np.testing.assert_allclose(f(self.logp, self.adv, self.w),
                                   np_pg_loss(self.logp, self.adv, self.w), rtol=1e-5)
        np.testing.assert_allclose(f(self.logp, self.adv),
                                   np_pg_loss(self.logp, self.adv, np.ones(B)), rtol=1e-5)

    def test_policy_gradient_loss_gradient(self):
        """∂L/∂logp_t = -w_t adv_t / B; no gradient reaches adv_t."""
        g_logp, g_adv = jax.grad(af.policy_gradient_loss, argnums=(0, 1))(self.logp, self.adv,
                                                                       self.w)
        np.testing.assert_allclose(g_logp, -self.w * self.adv / B, rtol=1e-5)
        np.testing.assert_array_equal(g_adv, np.zeros(B))

    @chex.variants(with_jit=True, without_jit=True)
    def test_clipped_surrogate_loss(self):
        f = self.variant(af.clipped_surrogate_loss)
        for eps in (0.1, 0.2, 0.5):
            want, want_frac = np_ppo(self.logp, self.logp_old, self.adv, eps, self.w)
            np.testing.assert_allclose(f(self.logp, self.logp_old, self.adv, eps, self.w), want,
                                       rtol=1e-5)
            ratio = af.importance_ratio(self.logp, self.logp_old)
            np.testing.assert_allclose(ratio, np.exp(self.logp.astype(np.float64) - self.logp_old),
                                       rtol=1e-5)
            assert float(self.variant(af.clip_fraction)(ratio, eps)) == pytest.approx(want_frac)
        want, _ = np_ppo(self.logp, self.logp_old, self.adv, 0.2, np.ones(B))
        np.testing.assert_allclose(f(self.logp, self.logp_old, self.adv, 0.2), want, rtol=1e-5)

    def test_clipped_surrogate_gradient_at_ratio_one_is_the_policy_gradient(self):
        g_ppo = jax.grad(af.clipped_surrogate_loss)(self.logp, self.logp, self.adv, 0.2, self.w)
        g_pg = jax.grad(af.policy_gradient_loss)(self.logp, self.adv, self.w)
        np.testing.assert_allclose(g_ppo, g_pg, rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_entropy_and_kl_categorical(self):
        rng = _rng(2)
        dist = CategoricalDist(gym.spaces.Discrete(4))
        params = {"logits": _f32(rng.normal(size=(B, 4)))}
        prior = {"logits": _f32(rng.normal(size=(1, 4)))}
        ent = np_categorical_entropy(params["logits"])
        kl = np_categorical_kl(params["logits"], np.repeat(prior["logits"], B, 0))

        def losses(params, prior, w):
            return (af.entropy_loss(dist, params, w), af.kl_divergence_loss(dist, params, prior, w),
                    af.kl_divergence(dist, params, prior))

        e_loss, kl_loss, kl_t = self.variant(losses)(params, prior, self.w)
        np.testing.assert_allclose(e_loss, -np.mean(self.w * ent), rtol=1e-5)
        np.testing.assert_allclose(kl_loss, np.mean(self.w * kl), rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(kl_t, kl, rtol=1e-4, atol=1e-6)
        # a prior per sample, [B, n], and no weights
        full = {"logits": np.repeat(prior["logits"], B, 0)}
        np.testing.assert_allclose(af.kl_divergence_loss(dist, params, full), np.mean(kl),
                                   rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(af.entropy_loss(dist, params), -np.mean(ent), rtol=1e-5)

    def test_entropy_and_kl_normal_closed_form(self):
        """Diagonal Gaussians: H = Σ ½ log(2πe σ²), KL in closed form, summed over the event."""
        rng = _rng(3)
        dist = NormalDist(gym.spaces.Box(-1.0, 1.0, shape=(2,)))
        mu, logvar = _f32(rng.normal(size=(B, 2))), _f32(rng.normal(scale=0.3, size=(B, 2)))
        mu_q, logvar_q = _f32(rng.normal(size=(1, 2))), _f32(rng.normal(scale=0.3, size=(1, 2)))
        params, prior = {"mu": mu, "logvar": logvar}, {"mu": mu_q, "logvar": logvar_q}
        ent = np.array([sum(0.5 * (np.log(2 * np.pi) + 1 + lv) for lv in row) for row in logvar])
        kl = np.array([
            sum(0.5 * (lq - lp + (np.exp(lp) + (m - mq) ** 2) / np.exp(lq) - 1)
                for m, lp, mq, lq in zip(mu[i], logvar[i], mu_q[0], logvar_q[0]))
            for i in range(B)])
        np.testing.assert_allclose(af.entropy_loss(dist, params, self.w), -np.mean(self.w * ent),
                                   rtol=1e-5)
        np.testing.assert_allclose(af.kl_divergence_loss(dist, params, prior, self.w),
                                   np.mean(self.w * kl), rtol=1e-4, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_value_loss_and_td_error(self):
        rng = _rng(4)
        v, target = _f32(rng.normal(size=B)), _f32(3 * rng.normal(size=B))
        err = target.astype(np.float64) - v
        np_h = [0.5 * e**2 if abs(e) <= 1 else abs(e) - 0.5 for e in err]
        for loss_fn, per_sample, td in ((mse, 0.5 * err**2, err),
                                        (huber, np.array(np_h), np.clip(err, -1, 1))):
            f = self.variant(af.value_loss, static_argnums=2)
            np.testing.assert_allclose(f(v, target, loss_fn, self.w), np.mean(self.w * per_sample),
                                       rtol=1e-5)
            np.testing.assert_allclose(f(v, target, loss_fn), np.mean(per_sample), rtol=1e-5)
            got = self.variant(af.td_error_from_loss, static_argnums=0)(loss_fn, target, v)
            np.testing.assert_allclose(got, td, rtol=1e-5, atol=1e-6)
        # the value loss is differentiated in v only
        g_v, g_t = jax.grad(af.value_loss, argnums=(0, 1))(v, target, mse)
        np.testing.assert_allclose(g_v, -err / B, rtol=1e-5)
        np.testing.assert_array_equal(g_t, np.zeros(B))

    @chex.variants(with_jit=True, without_jit=True)
    def test_n_step_target(self):
        rng = _rng(5)
        rn, v_next = _f32(rng.normal(size=B)), _f32(rng.normal(size=B))
        i_n = _f32([0.9**3 if rng.random() > 0.3 else 0.0 for _ in range(B)])
        want = [float(rn[i]) + float(i_n[i]) * float(v_next[i]) for i in range(B)]
        np.testing.assert_allclose(self.variant(af.n_step_target)(rn, i_n, v_next), want, rtol=1e-6)
        g = jax.grad(lambda v: jnp.sum(af.n_step_target(rn, i_n, v)))(v_next)
        np.testing.assert_array_equal(g, np.zeros(B))


# ---- GAE -------------------------------------------------------------------------------------------


class GAETest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters((0.99, 0.95), (0.9, 0.0), (0.97, 1.0))
    def test_one_sequence_against_the_loop(self, gamma, lam):
        rng = _rng(6)
        T = 25
        r, v_tm1, v_t = (_f32(rng.normal(size=T)) for _ in range(3))
        discount = _f32(gamma * (rng.random(T) > 0.2))
        got = self.variant(af.generalized_advantage_estimation)(r, discount, lam, v_tm1, v_t)
        np.testing.assert_allclose(got, np_gae_loop(r, discount, lam, v_tm1, v_t), rtol=1e-5,
                                   atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_batched_and_vmapped_equal_each_column(self):
        rng = _rng(7)
        T, K = 12, 3
        r, v_tm1, v_t = (_f32(rng.normal(size=(T, K))) for _ in range(3))
        discount = _f32(0.95 * (rng.random((T, K)) > 0.2))
        lam = _f32(rng.random((T, K)))  # per-step λ
        got = self.variant(af.generalized_advantage_estimation)(r, discount, lam, v_tm1, v_t)
        vmapped = jax.vmap(af.generalized_advantage_estimation, in_axes=1, out_axes=1)(
            r, discount, lam, v_tm1, v_t)
        for k in range(K):
            want = np_gae_loop(r[:, k], discount[:, k], lam[:, k], v_tm1[:, k], v_t[:, k])
            np.testing.assert_allclose(got[:, k], want, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(vmapped[:, k], want, rtol=1e-5, atol=1e-5)

    @parameterized.parameters((0.99, 0.95), (0.9, 0.5))
    def test_truncation_via_lambda_and_compute_gae_agree(self, gamma, lam):
        """Truncation as the functional form expresses it (discount γ, v_t the final value, λ_t = 0)
        gives compute_gae's truncation-aware advantages and an episode-by-episode reference."""
        rng = _rng(8)
        T = 30
        r, v, final_v = (_f32(rng.normal(size=T)) for _ in range(3))
        next_value = np.float32(rng.normal())
        done = rng.random(T) < 0.1
        trunc = (rng.random(T) < 0.1) & ~done
        v_t = np.where(trunc, final_v, np.append(v[1:], next_value)).astype(np.float32)
        discount = _f32(gamma * ~done)
        lam_t = _f32(lam * ~trunc)
        got = af.generalized_advantage_estimation(r, discount, lam_t, v, v_t)
        adv, ret = compute_gae(r, v, next_value, done, gamma, lam, truncated=trunc,
                               final_values=final_v)
        want = np_gae_episodes(r, v, next_value, done, trunc, final_v, gamma, lam)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(adv, want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(ret, adv + v, rtol=1e-6)

    def test_compiles_once(self):
        f = jax.jit(chex.assert_max_traces(af.generalized_advantage_estimation, n=1))
        x = jnp.ones(9)
        f(x, x * 0.9, 0.95, x, x)
        f(x * 2, x * 0.5, 0.5, x, x)  # new values, same shapes: no retrace


# ---- bad shapes raise ------------------------------------------------------------------------------


def test_column_vs_vector_mixups_raise():
    """A [B, 1] column where [B] is expected would broadcast to [B, B]: every function refuses it."""
    x, col = jnp.zeros(B), jnp.zeros((B, 1))
    dist = CategoricalDist(gym.spaces.Discrete(3))
    params = {"logits": jnp.zeros((B, 3))}
    calls = [
        lambda: af.policy_gradient_loss(x, col),
        lambda: af.policy_gradient_loss(col, x),
        lambda: af.policy_gradient_loss(x, x, col),
        lambda: af.clipped_surrogate_loss(x, col, x, 0.2),
        lambda: af.clipped_surrogate_loss(x, x, col, 0.2),
        lambda: af.clipped_surrogate_loss(x, x, x, 0.2, col),
        lambda: af.importance_ratio(x, col),
        lambda: af.clip_fraction(col, 0.2),
        lambda: af.entropy_loss(dist, params, col),
        lambda: af.kl_divergence_loss(dist, params, {"logits": jnp.zeros((1, 3))}, col),
        lambda: af.kl_divergence(dist, params, {"logits": jnp.zeros(3)}),
        lambda: af.value_loss(x, col, mse),
        lambda: af.value_loss(col, x, mse),
        lambda: af.value_loss(x, x, mse, col),
        lambda: af.td_error_from_loss(mse, col, x),
        lambda: af.n_step_target(x, col, x),
        lambda: af.n_step_target(col, col, col),
        lambda: af.generalized_advantage_estimation(x, x, 0.9, x, col),
        lambda: af.generalized_advantage_estimation(x, x, col, x, x),
        lambda: af.generalized_advantage_estimation(jnp.zeros((2, 3, 4)), jnp.zeros((2, 3, 4)), 0.9,
                                                   jnp.zeros((2, 3, 4)), jnp.zeros((2, 3, 4))),
    ]
    for i, call in enumerate(calls):
        with pytest.raises(AssertionError):
            call()
        with pytest.raises(AssertionError):  # at trace time too
            jax.jit(call)()
        assert i >= 0


def test_integer_inputs_raise():
    ints, x = jnp.zeros(B, jnp.int32), jnp.zeros(B)
    with pytest.raises(AssertionError):
        af.policy_gradient_loss(ints, x)
    with pytest.raises(AssertionError):
        af.generalized_advantage_estimation(ints, x, 0.9, x, x)


def test_exported_once():
    import a2c_jax

    assert a2c_jax.functional is af
    assert sorted(af.__all__) == sorted(n for n in dir(af) if not n.startswith("_")
                                       and callable(getattr(af, n)))
    from a2c_jax.td_learning import td_error_from_loss

    assert td_error_from_loss is af.td_error_from_loss
