"""NStep and MonteCarlo against a brute-force reference written from the definitions.

For transition ``t`` of an episode of ``L`` steps (``s_0..s_{L-1}`` with actions, ``s_L`` the final
observation) and horizon ``n`` (``n = ∞`` for Monte Carlo):

* ``t + n < L``: ``Rn = Σ_{k<n} γ^k r_{t+k}``, ``In = γ^n``, ``S_next = s_{t+n}``,
  ``A_next = a_{t+n}``; ready once step ``t + n`` has been added.
* otherwise, once the episode has ended after ``k = L - t`` more steps: ``Rn = Σ_{k'<k} γ^k' r``,
  ``In = 0`` if it terminated (the seed's form treats every end as terminal), ``In = γ^k`` and
  ``S_next = s_L`` if a time limit truncated it.
"""

import math
import random
from collections import deque
from dataclasses import dataclass

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from a2c_jax.reward_tracing import MonteCarlo, NStep, TracerNotReadyError, TransitionBatch

# ---- the reference -------------------------------------------------------------------------


@dataclass
class Episode:
    rewards: list
    actions: list
    logps: list
    weights: list
    end: str | None  # 'term', 'trunc', 'both' (terminated and truncated) or None (still running)


def obs(e: int, t: int) -> np.ndarray:
    """A distinct observation for step ``t`` of episode ``e``."""
    return np.array([e, t, 0.5 * t], np.float64)


def reference(episodes, n, gamma, form):
    """Every transition the tracer must produce, in order, with the add() index it is ready at."""
    out, base = [], 0
    for e, ep in enumerate(episodes):
        L, r = len(ep.rewards), ep.rewards
        terminal = ep.end in ("term", "both") or (form == "seed" and ep.end is not None)
        for t in range(L):
            if n is not None and t + n < L:
                k, ready_at, In = n, base + t + n, gamma**n
                s_next, a_next, logp_next = obs(e, t + n), ep.actions[t + n], ep.logps[t + n]
            elif ep.end is None:
                continue  # needs steps that have not happened yet
            else:
                k, ready_at = L - t, base + L - 1
                In = 0.0 if terminal else gamma**k
                s_next = None if terminal else obs(e, L)
                a_next = logp_next = None  # no action is taken at a terminal/truncation state
            Rn = sum(gamma**j * r[t + j] for j in range(k))
            out.append(
                dict(
                    ready_at=ready_at,
                    S=obs(e, t),
                    A=ep.actions[t],
                    logP=ep.logps[t],
                    Rn=Rn,
                    In=In,
                    S_next=s_next,
                    A_next=a_next,
                    logP_next=logp_next,
                    W=ep.weights[t],
                    idx=base + t,
                )
            )
        base += L
    return out


def feed(tracer, episodes, form, drains, with_s_next):
    """Adds every step; after add ``j`` drains as ``drains[j]`` says. Returns (batches, counts)."""
    got, counts, j = [], [], 0
    for e, ep in enumerate(episodes):
        L = len(ep.rewards)
        for t in range(L):
            last = t == L - 1
            terminated = last and ep.end in ("term", "both")
            truncated = last and ep.end in ("trunc", "both")
            args = (obs(e, t), ep.actions[t], ep.rewards[t])
            if form == "seed":
                tracer.add(*args, terminated or truncated, ep.logps[t], ep.weights[t])
            else:
                s_next = obs(e, t + 1) if (truncated or with_s_next[j % len(with_s_next)]) else None
                tracer.add(
                    *args,
                    terminated,
                    ep.logps[t],
                    ep.weights[t],
                    truncated=truncated,
                    s_next=s_next,
                )
            how = drains[j % len(drains)]
            if how == "pop":
                while tracer:
                    got.append(tracer.pop())
                counts.append((j, sum(b.batch_size for b in got)))
            elif how == "flush" and tracer:
                got.append(tracer.flush())
                counts.append((j, sum(b.batch_size for b in got)))
            j += 1
    while tracer:
        got.append(tracer.pop())
    with pytest.raises(TracerNotReadyError):
        tracer.pop()
    with pytest.raises(TracerNotReadyError):
        tracer.flush()
    return got, counts


def check_against_reference(got, counts, expected):
    """Compares every field of every transition, the order, and when each became ready."""
    for j, n_out in counts:
        assert n_out == sum(x["ready_at"] <= j for x in expected), f"after add #{j}"
    for b in got:
        assert isinstance(b, TransitionBatch)
        assert all(np.shape(x)[0] == b.batch_size for x in jax.tree.leaves(b))
    flat = [
        jax.tree.map(lambda x, i=i: np.asarray(x)[i], b) for b in got for i in range(b.batch_size)
    ]
    assert len(flat) == len(expected)
    for tr, ex in zip(flat, expected, strict=True):
        msg = f"transition idx={ex['idx']}"
        np.testing.assert_array_equal(tr.S, ex["S"], err_msg=msg)
        assert int(tr.A) == ex["A"], msg
        assert int(tr.idx) == ex["idx"], msg
        np.testing.assert_allclose(tr.logP, ex["logP"], rtol=1e-6, atol=1e-6, err_msg=msg)
        np.testing.assert_allclose(tr.W, ex["W"], rtol=1e-6, err_msg=msg)
        np.testing.assert_allclose(tr.Rn, ex["Rn"], rtol=1e-5, atol=1e-4, err_msg=msg)
        np.testing.assert_allclose(tr.In, ex["In"], rtol=1e-5, atol=1e-7, err_msg=msg)
        if ex["S_next"] is not None:
            np.testing.assert_array_equal(tr.S_next, ex["S_next"], err_msg=msg)
        if ex["A_next"] is not None:
            assert int(tr.A_next) == ex["A_next"], msg
            np.testing.assert_allclose(
                tr.logP_next, ex["logP_next"], rtol=1e-6, atol=1e-6, err_msg=msg
            )


# ---- hypothesis strategies -------------------------------------------------------------------

finite = st.floats(-10, 10, allow_nan=False, width=32)


@st.composite
def episode_streams(draw):
    """Several episodes in a row; only the last one may still be running."""
    n_eps = draw(st.integers(1, 4))
    episodes = []
    for i in range(n_eps):
        L = draw(st.integers(1, 12))
        ends = ["term", "trunc", "both"] + ([None] if i == n_eps - 1 else [])
        episodes.append(
            Episode(
                rewards=draw(st.lists(finite, min_size=L, max_size=L)),
                actions=draw(st.lists(st.integers(0, 5), min_size=L, max_size=L)),
                logps=draw(st.lists(st.floats(-5, 0, width=32), min_size=L, max_size=L)),
                weights=draw(st.lists(st.floats(0.125, 2, width=32), min_size=L, max_size=L)),
                end=draw(st.sampled_from(ends)),
            )
        )
    return episodes


gammas = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0, 1))
drain_plans = st.lists(st.sampled_from(["pop", "flush", "none"]), min_size=1, max_size=20)
forms = st.sampled_from(["seed", "trunc"])


@settings(max_examples=100, deadline=None)
@given(
    episodes=episode_streams(),
    n=st.integers(1, 8),
    gamma=gammas,
    form=forms,
    drains=drain_plans,
    with_s_next=st.lists(st.booleans(), min_size=1, max_size=5),
)
def test_nstep_matches_bruteforce(episodes, n, gamma, form, drains, with_s_next):
    """NStep vs the brute-force reference: every field, the order and the readiness timing."""
    tracer = NStep(n=n, gamma=gamma)
    got, counts = feed(tracer, episodes, form, drains, with_s_next)
    check_against_reference(got, counts, reference(episodes, n, gamma, form))


@settings(max_examples=60, deadline=None)
@given(episodes=episode_streams(), gamma=gammas, form=forms, drains=drain_plans)
def test_monte_carlo_matches_bruteforce(episodes, gamma, form, drains):
    """MonteCarlo vs the brute-force reference with n = ∞ (ready only at the episode's end)."""
    tracer = MonteCarlo(gamma=gamma)
    got, counts = feed(tracer, episodes, form, drains, [False])
    check_against_reference(got, counts, reference(episodes, None, gamma, form))


# ---- hand-computed cases ----------------------------------------------------------------------


def test_nstep_hand_computed_truncation():
    """n=3, γ=0.5, rewards 1,2,4,8 then truncation: numbers worked out by hand."""
    tracer = NStep(n=3, gamma=0.5)
    for t, r in enumerate([1.0, 2.0, 4.0, 8.0]):
        last = t == 3
        tracer.add(obs(0, t), t, r, False, truncated=last, s_next=obs(0, t + 1))
    b = tracer.flush()
    # t=0: 1 + 0.5*2 + 0.25*4 = 3, In = 0.125 bootstrapping from s_3
    # t=1: 2 + 0.5*4 + 0.25*8 = 6, In = 0.125 from s_4 (the truncation state)
    # t=2: 4 + 0.5*8 = 8, In = 0.25 from s_4;  t=3: 8, In = 0.5 from s_4
    np.testing.assert_allclose(b.Rn, [3.0, 6.0, 8.0, 8.0])
    np.testing.assert_allclose(b.In, [0.125, 0.125, 0.25, 0.5])
    np.testing.assert_array_equal(b.S_next, np.stack([obs(0, 3)] + [obs(0, 4)] * 3))


def test_nstep_hand_computed_termination():
    """n=2, γ=0.9, rewards 1,1,1 then termination: Rn = 1.9,1.9,1; In = 0.81,0,0."""
    tracer = NStep(n=2, gamma=0.9)
    for t in range(3):
        tracer.add(obs(0, t), 0, 1.0, t == 2)
    b = tracer.flush()
    np.testing.assert_allclose(b.Rn, [1.9, 1.9, 1.0], rtol=1e-6)
    np.testing.assert_allclose(b.In, [0.81, 0.0, 0.0], rtol=1e-6)


def test_bool_reset_and_not_ready():
    """bool(tracer) is False until s_{t+n} is seen; reset() drops pending and ready transitions."""
    tracer = NStep(n=2, gamma=0.9)
    assert not tracer
    tracer.add(obs(0, 0), 0, 1.0, False)
    tracer.add(obs(0, 1), 0, 1.0, False)
    assert not tracer
    with pytest.raises(TracerNotReadyError):
        tracer.pop()
    tracer.add(obs(0, 2), 0, 1.0, False)
    assert tracer
    tracer.reset()
    assert not tracer
    with pytest.raises(TracerNotReadyError):
        tracer.flush()
    # after reset a fresh episode is traced from scratch (no leftover steps from before)
    tracer.add(obs(1, 0), 1, 5.0, True)
    b = tracer.pop()
    assert b.batch_size == 1
    np.testing.assert_array_equal(b.S[0], obs(1, 0))
    np.testing.assert_allclose(b.Rn, [5.0])
    np.testing.assert_allclose(b.In, [0.0])
    assert not tracer


@pytest.mark.parametrize(
    "n, exc",
    [
        (0, ValueError),
        (-3, ValueError),
        (2.0, TypeError),
        (1.5, TypeError),
        ("3", TypeError),
        (True, TypeError),
    ],
)
def test_nstep_bad_n(n, exc):
    """n must be an int >= 1."""
    with pytest.raises(exc):
        NStep(n=n, gamma=0.9)


@pytest.mark.parametrize("gamma", [-0.1, 1.0001, 2.0, math.nan, math.inf])
def test_bad_gamma(gamma):
    """gamma must lie in [0, 1], for NStep and MonteCarlo."""
    with pytest.raises(ValueError):
        NStep(n=1, gamma=gamma)
    with pytest.raises(ValueError):
        MonteCarlo(gamma=gamma)


def test_truncated_without_s_next():
    """truncated=True without the final observation cannot bootstrap: ValueError."""
    tracer = NStep(n=2, gamma=0.9)
    with pytest.raises(ValueError, match="s_next"):
        tracer.add(obs(0, 0), 0, 1.0, False, truncated=True)


@pytest.mark.parametrize("r", [math.nan, math.inf, -math.inf])
def test_non_finite_reward(r):
    """A non-finite reward raises ValueError and is not recorded."""
    tracer = NStep(n=1, gamma=0.9)
    with pytest.raises(ValueError):
        tracer.add(obs(0, 0), 0, r, True)
    assert not tracer
    tracer.add(obs(0, 0), 0, 1.0, True)
    assert tracer.flush().batch_size == 1


def test_observations_are_copied():
    """Mutating an observation array after add() does not change the stored S / S_next."""
    tracer = NStep(n=1, gamma=0.9)
    s, s_final = obs(0, 0), obs(0, 1)
    tracer.add(s, 0, 1.0, False, truncated=True, s_next=s_final)
    s[:] = -1.0
    s_final[:] = -1.0
    b = tracer.pop()
    np.testing.assert_array_equal(b.S[0], obs(0, 0))
    np.testing.assert_array_equal(b.S_next[0], obs(0, 1))


def test_dict_observations():
    """Dict observations are batched per key, S and S_next alike."""
    tracer = NStep(n=1, gamma=0.5)
    for t in range(3):
        tracer.add({"pos": obs(0, t), "id": np.int64(t)}, 0, 1.0, t == 2)
    b = tracer.flush()
    np.testing.assert_array_equal(b.S["pos"], np.stack([obs(0, t) for t in range(3)]))
    np.testing.assert_array_equal(b.S["id"], [0, 1, 2])
    np.testing.assert_array_equal(b.S_next["id"][:2], [1, 2])
    np.testing.assert_allclose(b.In, [0.5, 0.5, 0.0])


def test_nstep_vector_env_matches_independent_tracers():
    """A batch of K envs added at once yields the transitions of K independent tracers."""
    K, n, gamma = 3, 2, 0.9
    vec, singles = NStep(n=n, gamma=gamma), [NStep(n=n, gamma=gamma) for _ in range(K)]
    rng = np.random.default_rng(0)
    for t in range(6):
        S = np.stack([obs(k, t) for k in range(K)])
        A, R = rng.integers(0, 2, K), rng.normal(size=K)
        D = np.array([t == 3, False, t == 5])
        vec.add(S, A, R, D, np.zeros(K))
        for k in range(K):
            singles[k].add(S[k], int(A[k]), float(R[k]), bool(D[k]), 0.0)
    got = vec.flush()
    want = [tr.flush() for tr in singles if tr]
    key = np.lexsort(np.asarray(got.S).T[::-1])
    want_S = np.concatenate([b.S for b in want])
    want_key = np.lexsort(want_S.T[::-1])
    np.testing.assert_array_equal(np.asarray(got.S)[key], want_S[want_key])
    np.testing.assert_allclose(
        np.asarray(got.Rn)[key], np.concatenate([b.Rn for b in want])[want_key], rtol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(got.In)[key], np.concatenate([b.In for b in want])[want_key], rtol=1e-6
    )


def test_tracer_touches_no_global_rng():
    """Tracing does not consume Python's or numpy's global random state."""
    py_state, np_state = random.getstate(), np.random.get_state()
    tracer = NStep(n=3, gamma=0.9)
    for t in range(10):
        tracer.add(obs(0, t), 0, 1.0, t == 9)
    tracer.flush()
    assert random.getstate() == py_state
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state, strict=True))


# ---- input validation: checked before anything is recorded ---------------------------------------


def same_state(x, y, path="tracer"):
    """Deep comparison of two tracers' state (numpy arrays by dtype, shape and value)."""
    if isinstance(x, NStep):
        assert type(x) is type(y), path
        return same_state(vars(x), vars(y), path)
    if isinstance(x, dict):
        assert x.keys() == y.keys(), path
        for k in x:
            same_state(x[k], y[k], f"{path}.{k}")
    elif isinstance(x, (list, tuple, deque)):
        assert type(x) is type(y) and len(x) == len(y), path
        for i, (a, b) in enumerate(zip(x, y, strict=True)):
            same_state(a, b, f"{path}[{i}]")
    elif isinstance(x, (np.ndarray, np.generic)):
        assert isinstance(y, (np.ndarray, np.generic)) and x.dtype == y.dtype, path
        np.testing.assert_array_equal(x, y, err_msg=path)
    else:
        assert type(x) is type(y) and x == y, f"{path}: {x!r} != {y!r}"


def assert_same_batches(b1, b2):
    for f, x, y in zip(TransitionBatch._fields, b1, b2, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype, f
        np.testing.assert_array_equal(x, y, err_msg=f)


K = 3


def vec_step(t, rng):
    """One good batched step of K envs (env 1 terminates at t=2, env 2 is truncated at t=3)."""
    S = np.stack([obs(k, t) for k in range(K)])
    return dict(
        s=S,
        a=rng.integers(0, 4, K),
        r=rng.normal(size=K),
        done=np.array([False, t == 2, False]),
        logp=-rng.uniform(size=K),
        w=np.ones(K),
        truncated=np.array([False, False, t == 3]),
        s_next=S + 0.25,
        mask=np.array([True, True, t != 4]),
    )


def nan_at(x, k):
    x = np.array(x, np.float64)
    x[k] = np.nan
    return x


def grow(x):
    """One row more than K."""
    return np.concatenate([x, x[-1:]])


# (field to corrupt, how, a regex the error must match)
BAD_BATCHES = [
    ("r", lambda x: nan_at(x, 2), "r must be finite.*env 2"),
    ("r", lambda x: nan_at(x, 0).reshape(K, 1), r"r must be a scalar .* shape \(3, 1\)"),
    ("logp", lambda x: nan_at(x, 1), "logp must be finite.*env 1"),
    ("w", lambda x: np.array([1.0, 1.0, np.inf]), "w must be finite.*env 2"),
    ("s", lambda x: x[:-1], r"s has shape \(2, 3\).*leading axis 3"),
    ("s", grow, r"s has shape \(4, 3\).*leading axis 3"),
    ("a", grow, r"a has shape \(4,\).*leading axis 3"),
    ("a", lambda x: np.array(x[0]), r"a has shape \(\).*leading axis 3"),
    ("s_next", grow, r"s_next has shape \(4, 3\)"),
    ("s_next", lambda x: x[:, :2], r"s_next \(env 0\) has shape \(2,\)"),
    ("done", lambda x: x[:-1], r"done must have shape \(3,\)"),
    ("done", lambda x: np.array(False), r"done must have shape \(3,\)"),
    ("done", lambda x: np.array([0, 2, 1]), "done must hold bools"),
    ("truncated", grow, r"truncated must have shape \(3,\)"),
    ("logp", grow, r"logp must have shape \(3,\) \(or a scalar\)"),
    ("w", lambda x: x[:-1], r"w must have shape \(3,\)"),
    ("mask", lambda x: x[:-1], r"mask must have shape \(3,\)"),
    ("a", lambda x: np.array([0, 1, 2**40]), "does not fit the int32"),
]


@pytest.mark.parametrize("make", [lambda: NStep(n=2, gamma=0.9), lambda: MonteCarlo(gamma=0.9)],
                         ids=["nstep", "montecarlo"])
@pytest.mark.parametrize("field, corrupt, match", BAD_BATCHES,
                         ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(BAD_BATCHES)])
def test_batched_add_is_atomic(make, field, corrupt, match):
    """A batched add that raises, whatever env or field is at fault, leaves every env untouched.

    Reference: a twin tracer fed the same good steps that never saw the bad call: same state
    right after it, and the same transitions from the steps that follow.
    """
    tracer, twin = make(), make()
    rng = np.random.default_rng(0)
    steps = [vec_step(t, rng) for t in range(7)]
    for t in range(3):  # partial traces, ended episodes and ready transitions on both
        tracer.add(**steps[t])
        twin.add(**steps[t])
    bad = dict(steps[3])
    bad[field] = corrupt(bad[field])
    with pytest.raises(ValueError, match=match):
        tracer.add(**bad)
    same_state(tracer, twin)
    for t in range(3, 7):
        tracer.add(**steps[t])
        twin.add(**steps[t])
    assert tracer and twin
    assert_same_batches(tracer.flush(), twin.flush())


BAD_SINGLE = [
    (dict(r=math.nan), "r must be finite"),
    (dict(r="1.0"), "r must be a real scalar"),
    (dict(r=None), "r must be a real scalar"),
    (dict(logp=np.array([-0.5])), "logp must be a real scalar"),
    (dict(w=math.inf), "w must be finite"),
    (dict(done=np.array([True])), "done must be a bool"),
    (dict(done=2), "done must be a bool"),
    (dict(truncated=True), "s_next"),
    (dict(s=np.zeros(4)), r"s has shape \(4,\); earlier observations had \(3,\)"),
    (dict(s_next=np.zeros(2)), r"s_next has shape \(2,\)"),
    (dict(a=np.array([1, 2])), r"a has shape \(2,\); earlier actions had \(\)"),
    (dict(a=2**31), "does not fit the int32"),
    (dict(mask=[True]), "mask"),
]


@pytest.mark.parametrize("make", [lambda: NStep(n=2, gamma=0.9), lambda: MonteCarlo(gamma=0.9)],
                         ids=["nstep", "montecarlo"])
@pytest.mark.parametrize("bad, match", BAD_SINGLE, ids=[str(i) for i in range(len(BAD_SINGLE))])
def test_single_add_is_atomic(make, bad, match):
    """A single-env add that raises changes nothing: same state and later output as a twin."""
    tracer, twin = make(), make()
    good = [dict(s=obs(0, t), a=t % 3, r=float(t), done=t == 4, logp=-0.5, w=1.0)
            for t in range(8)]
    for step in good[:3]:
        tracer.add(**step)
        twin.add(**step)
    with pytest.raises(ValueError, match=match):
        tracer.add(**{**good[3], **bad})
    same_state(tracer, twin)
    for step in good[3:]:
        tracer.add(**step)
        twin.add(**step)
    assert_same_batches(tracer.flush(), twin.flush())


def test_batched_add_never_truncates():
    """s, a or s_next with more rows than r raise naming the field and both shapes."""
    S, A, R, D = np.zeros((K + 1, 2)), np.zeros(K, int), np.ones(K), np.zeros(K, bool)
    for kwargs, name in [
        (dict(s=S, a=A), "s"),
        (dict(s=S[:K], a=np.zeros(K + 2, int)), "a"),
        (dict(s=S[:K], a=A, s_next=S), "s_next"),
        (dict(s={"x": S[:K], "y": S}, a=A), r"s\['y'\]"),
    ]:
        tracer = NStep(n=1, gamma=0.9)
        with pytest.raises(ValueError, match=rf"{name} has shape \(\d+,.*r has shape \(3,\)"):
            tracer.add(r=R, done=D, **kwargs)
        same_state(tracer, NStep(n=1, gamma=0.9))


def test_reward_rank_decides_single_or_batch():
    """r of shape [1] is a batch of one env: s needs shape [1, ...]; an unbatched s raises.

    Reference: a batch-of-one tracer fed [1]-shaped steps equals a single-env tracer fed the same
    steps unbatched with scalar rewards.
    """
    tracer = NStep(n=1, gamma=0.9)
    with pytest.raises(ValueError, match=r"s has shape \(3,\).*pass.*reward as a scalar"):
        tracer.add(obs(0, 0), np.array([1]), np.array([1.0]), np.array([False]))
    same_state(tracer, NStep(n=1, gamma=0.9))  # still undecided: nothing was recorded
    batch1, single = NStep(n=2, gamma=0.9), NStep(n=2, gamma=0.9)
    for t in range(5):
        batch1.add(obs(0, t)[None], np.array([t % 2]), np.array([float(t)]), np.array([t == 4]))
        single.add(obs(0, t), t % 2, float(t), t == 4)
    assert_same_batches(batch1.flush(), single.flush())
    # the first add fixes the mode until reset()
    with pytest.raises(ValueError, match="traces 1 envs"):
        batch1.add(obs(0, 0), 0, 1.0, False)
    with pytest.raises(ValueError, match="single env"):
        single.add(obs(0, 0)[None], np.array([0]), np.array([1.0]), np.array([False]))
    single.reset()
    single.add(obs(0, 0)[None], np.array([0]), np.array([1.0]), np.array([True]))
    assert single.pop().S.shape == (1, 3)
    for r in (np.zeros((1, 1)), np.zeros(0)):
        with pytest.raises(ValueError, match="r must be a scalar"):
            NStep(n=1, gamma=0.9).add(np.zeros((1, 3)), np.zeros(1, int), r, np.zeros(1, bool))


def test_masked_envs_values_are_ignored():
    """Only the envs a mask keeps must be finite; the others are neither checked nor recorded."""
    tracer = NStep(n=1, gamma=0.5)
    S = np.stack([obs(k, 0) for k in range(K)])
    tracer.add(S, np.zeros(K, int), np.array([1.0, np.nan, 3.0]), np.ones(K, bool),
               mask=np.array([True, False, True]))
    b = tracer.flush()
    np.testing.assert_array_equal(b.S, S[[0, 2]])
    np.testing.assert_array_equal(b.Rn, [1.0, 3.0])
