"""Vector-env tracing with gymnasium autoreset, and functions that draw random numbers."""

import gymnasium
import haiku as hk
import jax
import numpy as np
import optax
import pytest

import a2c_jax
from a2c_jax.reward_tracing import NStep


def _fields(batch):
    """Transitions as a list of dicts of numpy values, sortable by (S, A)."""
    out = []
    for i in range(batch.batch_size):
        out.append({k: np.asarray(getattr(batch, k))[i] for k in ("S", "A", "Rn", "In", "S_next")})
    return sorted(out, key=lambda d: (tuple(d["S"]), int(d["A"])))


def test_vector_env_autoreset_matches_one_tracer_per_env():
    """SyncVectorEnv(CartPole, TimeLimit 7) traced batched (mask after ends) == one NStep per env.

    The reference runs each sub-env's steps through its own single-env tracer in the
    truncation-aware form, skipping the autoreset steps by hand.
    """
    K, n, gamma = 3, 3, 0.9
    envs = gymnasium.vector.SyncVectorEnv(
        [lambda: gymnasium.make("CartPole-v1", max_episode_steps=7) for _ in range(K)])
    rng = np.random.default_rng(0)
    vec, refs = NStep(n=n, gamma=gamma), [NStep(n=n, gamma=gamma) for _ in range(K)]
    S, _ = envs.reset(seed=0)
    ended = np.zeros(K, bool)
    for _ in range(60):
        A = rng.integers(0, 2, K)
        S_next, R, term, trunc, _ = envs.step(A)
        vec.add(S, A, R, term, np.zeros(K), truncated=trunc, s_next=S_next, mask=~ended)
        for k in range(K):
            if not ended[k]:
                refs[k].add(S[k], int(A[k]), float(R[k]), bool(term[k]), 0.0,
                            truncated=bool(trunc[k]), s_next=S_next[k])
        ended = term | trunc
        S = S_next
    got = _fields(vec.flush())
    want = _fields(_concat([r.flush() for r in refs if r]))
    assert len(got) == len(want) > 0
    # some transitions bootstrap from a truncation less than n steps ahead: In = γ^k, k < n
    assert any(d["In"] > gamma**n + 1e-6 for d in want)
    for g, w in zip(got, want):
        for k in g:
            np.testing.assert_allclose(g[k], w[k], rtol=1e-6)


def _concat(batches):
    return jax.tree.map(lambda *xs: np.concatenate(xs), *batches)


def test_vector_add_rejects_mixed_sizes():
    """A tracer fed batches of 3 envs refuses a batch of 2 and a scalar add."""
    tr = NStep(n=2, gamma=0.9)
    tr.add(np.zeros((3, 4)), np.zeros(3, int), np.ones(3), np.zeros(3, bool))
    with pytest.raises(ValueError, match="traces 3 env"):
        tr.add(np.zeros((2, 4)), np.zeros(2, int), np.ones(2), np.zeros(2, bool))
    with pytest.raises(ValueError):
        tr.add(np.zeros(4), 0, 1.0, False)
    with pytest.raises(ValueError, match="mask"):
        NStep(n=2, gamma=0.9).add(np.zeros(4), 0, 1.0, False, mask=[True])


def _dropout_pi(S, is_training):
    X = hk.Linear(16)(S)
    X = hk.dropout(hk.next_rng_key(), 0.5, X) if is_training else X
    return {"logits": hk.Linear(2)(X)}


def test_functions_that_draw_random_numbers_get_keys():
    """A policy with dropout is detected as rng-using; sampling and updates run and change params.

    Independent reference: a deterministic function is detected as rng-free.
    """
    env = gymnasium.make("CartPole-v1")
    pi = a2c_jax.Policy(_dropout_pi, env, random_seed=0)
    assert pi.uses_rng
    det = a2c_jax.Policy(lambda S, t: {"logits": hk.Linear(2)(S)}, env, random_seed=0)
    assert not det.uses_rng
    s, _ = env.reset(seed=0)
    a, logp = pi(s, return_logp=True)
    logits = pi.dist_params(s)["logits"]
    np.testing.assert_allclose(logp, jax.nn.log_softmax(logits)[a], rtol=1e-6)
    pg = a2c_jax.policy_objectives.VanillaPG(pi, optimizer=optax.sgd(0.1))
    batch = a2c_jax.reward_tracing.TransitionBatch.from_single(s, a, logp, 1.0, False)
    before = jax.tree.map(np.asarray, pi.params)
    metrics = pg.update(batch, np.ones(1, np.float32))
    assert metrics["VanillaPG/skipped"] == 0.0
    changed = jax.tree.map(lambda x, y: not np.allclose(x, y), before, pi.params)
    assert any(jax.tree.leaves(changed))
