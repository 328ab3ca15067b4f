"""SimpleReplayBuffer against a Python list model of a ring buffer (a deque with maxlen)."""

import random
from collections import deque

import jax
import numpy as np
import pytest
from conftest import make_batch
from hypothesis import given, settings
from hypothesis import strategies as st

from a2c_jax.experience_replay import SimpleReplayBuffer
from a2c_jax.reward_tracing import TransitionBatch


def batch_with_ids(ids, obs_dim=3):
    """A batch whose every field encodes the transition id (so rows can be traced back)."""
    ids = np.asarray(ids)
    f = ids.astype(np.float32)
    return TransitionBatch(
        S=np.repeat(f[:, None], obs_dim, axis=1) + np.arange(obs_dim, dtype=np.float32),
        A=(ids % 5).astype(np.int32),
        logP=-f,
        Rn=2 * f,
        In=np.full(len(ids), 0.9, np.float32),
        S_next=np.repeat(f[:, None] + 0.5, obs_dim, axis=1),
        A_next=((ids + 1) % 5).astype(np.int32),
        logP_next=-f - 1,
        W=f + 1,
        idx=ids.astype(np.int32),
    )


def check_rows_consistent(b: TransitionBatch):
    """Every field of every row belongs to the same stored transition (ids were not mixed)."""
    ids = b.idx.astype(np.float32)
    np.testing.assert_array_equal(b.S[:, 0], ids)
    np.testing.assert_array_equal(b.Rn, 2 * ids)
    np.testing.assert_array_equal(b.W, ids + 1)
    np.testing.assert_array_equal(b.A, b.idx % 5)
    np.testing.assert_array_equal(b.S_next[:, 0], ids + 0.5)


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(1, 12),
    sizes=st.lists(st.integers(1, 30), min_size=1, max_size=8),
    clear_at=st.integers(-1, 8),
)
def test_ring_order_matches_deque(capacity, sizes, clear_at):
    """oldest_first() and len() follow a deque(maxlen=capacity) fed the same transitions."""
    buf = SimpleReplayBuffer(capacity, random_seed=0)
    model: deque = deque(maxlen=capacity)
    next_id = 0
    for i, n in enumerate(sizes):
        if i == clear_at:
            buf.clear()
            model.clear()
            assert len(buf) == 0 and not buf
        ids = list(range(next_id, next_id + n))
        next_id += n
        buf.add(batch_with_ids(ids))
        model.extend(ids)
        assert len(buf) == len(model)
        assert buf.capacity == capacity
        stored = buf.oldest_first()
        np.testing.assert_array_equal(stored.idx, list(model))
        check_rows_consistent(stored)
        k = min(len(model), 4)
        sample = buf.sample(k)
        assert sample.batch_size == k
        assert len(set(sample.idx.tolist())) == k  # distinct
        assert set(sample.idx.tolist()) <= set(model)  # only what is stored now
        check_rows_consistent(sample)


def test_single_adds_overwrite_oldest():
    """Adding 7 single transitions to a capacity-3 buffer keeps the last 3, oldest first."""
    buf = SimpleReplayBuffer(3, random_seed=0)
    for i in range(7):
        buf.add(batch_with_ids([i]))
    assert len(buf) == 3
    np.testing.assert_array_equal(buf.oldest_first().idx, [4, 5, 6])
    buf.add(batch_with_ids([7, 8, 9, 10, 11]))  # larger than the capacity
    np.testing.assert_array_equal(buf.oldest_first().idx, [9, 10, 11])


def test_samples_are_copies():
    """A sampled batch does not change when later adds overwrite the slots it came from."""
    buf = SimpleReplayBuffer(4, random_seed=0)
    buf.add(batch_with_ids(range(4)))
    sample = buf.sample(4)
    ids = sample.idx.copy()
    buf.add(batch_with_ids(range(100, 104)))
    np.testing.assert_array_equal(sample.idx, ids)
    check_rows_consistent(sample)


def test_sample_all_is_a_permutation():
    """Sampling the whole buffer returns each stored transition exactly once."""
    buf = SimpleReplayBuffer(10, random_seed=3)
    buf.add(batch_with_ids(range(14)))
    b = buf.sample(10)
    assert sorted(b.idx.tolist()) == list(range(4, 14))
    check_rows_consistent(b)


def test_sampling_is_uniform():
    """Each of 8 stored transitions is drawn with probability k/8 (5 standard errors)."""
    buf = SimpleReplayBuffer(8, random_seed=0)
    buf.add(batch_with_ids(range(8)))
    counts = np.zeros(8)
    trials, k = 2000, 3
    for _ in range(trials):
        counts[buf.sample(k).idx] += 1
    p = k / 8
    assert np.all(np.abs(counts / trials - p) < 5 * np.sqrt(p * (1 - p) / trials))


def test_seeded_reproducibility(rng):
    """Same seed and adds -> same samples; a different seed -> different samples."""

    def run(seed):
        buf = SimpleReplayBuffer(50, random_seed=seed)
        buf.add(batch_with_ids(range(40)))
        return [buf.sample(8).idx.tolist() for _ in range(5)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_does_not_touch_global_random_state():
    """Construction, adds and sampling leave Python's random and numpy's global state untouched."""
    py_state, np_state = random.getstate(), np.random.get_state()
    for seed in (None, 5):
        buf = SimpleReplayBuffer(16, random_seed=seed)
        buf.add(batch_with_ids(range(20)))
        buf.sample(4)
    assert random.getstate() == py_state
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state, strict=True))


def test_errors(rng):
    """capacity < 1, sampling empty/too many, non-TransitionBatch and shape mismatches raise."""
    for cap in (0, -1):
        with pytest.raises(ValueError):
            SimpleReplayBuffer(cap)
    with pytest.raises(TypeError):
        SimpleReplayBuffer(2.5)
    buf = SimpleReplayBuffer(8, random_seed=0)
    with pytest.raises(ValueError):
        buf.sample(1)  # empty
    buf.add(batch_with_ids([0, 1, 2]))
    with pytest.raises(ValueError):
        buf.sample(4)  # more than stored
    with pytest.raises(ValueError):
        buf.sample(0)
    with pytest.raises(TypeError):
        buf.add({"S": np.zeros((1, 3))})
    with pytest.raises(TypeError):
        buf.add(tuple(batch_with_ids([3])))
    with pytest.raises(ValueError):
        buf.add(batch_with_ids([3], obs_dim=4))  # S has a different per-transition shape
    ragged = batch_with_ids([3, 4])._replace(Rn=np.zeros(3, np.float32))
    with pytest.raises(ValueError):
        buf.add(ragged)
    assert len(buf) == 3  # failed adds stored nothing
    np.testing.assert_array_equal(buf.oldest_first().idx, [0, 1, 2])


def test_round_trip_preserves_values_and_dtypes(rng):
    """A batch added then read back (oldest_first) is identical, field by field."""
    batch = make_batch(rng, 6)
    buf = SimpleReplayBuffer(10, random_seed=0)
    buf.add(batch)
    out = buf.oldest_first()
    for x, y in zip(jax.tree.leaves(out), jax.tree.leaves(batch), strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


# ---- dtype conversions: only those that keep the values ------------------------------------------


def snapshot(buf):
    """Everything observable about a buffer: size, next slot and a copy of every stored array."""
    return len(buf), buf._next, [s.copy() for s in buf._storage]


def assert_unchanged(buf, before):
    size, nxt, storage = before
    assert (len(buf), buf._next) == (size, nxt)
    for s, t in zip(buf._storage, storage, strict=True):
        np.testing.assert_array_equal(s, t)


# (field, value in the incoming dtype, the stored value expected; None: must raise that error)
CONVERSIONS = [
    ("A", np.array([3, 4], np.int64), np.array([3, 4], np.int32)),  # gymnasium's int64 actions
    ("A", np.array([3, 4], np.uint8), np.array([3, 4], np.int32)),
    ("A", np.array([True, False]), np.array([1, 0], np.int32)),
    ("A", np.array([-(2**31), 2**31 - 1], np.int64), np.array([-(2**31), 2**31 - 1], np.int32)),
    ("A", np.array([0, 2**31], np.int64), ValueError),  # does not fit int32
    ("A", np.array([0.7, 1.9]), TypeError),  # floats into ints truncate
    ("A", np.array([1.0, 2.0]), TypeError),  # even integral floats: the dtype is refused
    ("S", np.full((2, 3), 0.1), np.full((2, 3), np.float32(0.1))),  # float64 obs: rounded
    ("S", np.arange(6, dtype=np.int64).reshape(2, 3), np.arange(6, dtype=np.float32).reshape(2, 3)),
    ("S", np.array([[1e40, 0, 0], [0, 0, 0]]), ValueError),  # finite -> inf
    ("S", np.array([[np.inf, np.nan, 0], [0, 0, 0]]),
     np.array([[np.inf, np.nan, 0], [0, 0, 0]], np.float32)),  # non-finite in, non-finite out
    ("S", np.zeros((2, 3), np.complex64), TypeError),
    ("W", np.array([1.0, -3e39]), ValueError),
    ("idx", np.array([5, 6], np.int64), np.array([5, 6], np.int32)),
    ("idx", np.array([5.0, 6.0], np.float32), TypeError),
]


@pytest.mark.parametrize("field, value, expected", CONVERSIONS,
                         ids=[f"{f}-{v.dtype}-{i}" for i, (f, v, _) in enumerate(CONVERSIONS)])
def test_add_converts_only_without_losing_values(field, value, expected):
    """A batch in another dtype is stored where its values survive, refused where they would not.

    A refused add stores nothing: the buffer is full, so a partial write would overwrite slots.
    """
    buf = SimpleReplayBuffer(3, random_seed=0)
    buf.add(batch_with_ids([0, 1, 2]))  # fixes the stored dtypes (float32, int32) and fills it
    batch = batch_with_ids([3, 4])._replace(**{field: value})
    if isinstance(expected, type):
        before = snapshot(buf)
        with pytest.raises(expected, match=f"field {field}"):
            buf.add(batch)
        assert_unchanged(buf, before)
        return
    buf.add(batch)
    out = buf.oldest_first()
    stored = getattr(out, field)[1:]
    assert stored.dtype == expected.dtype
    np.testing.assert_array_equal(stored, expected)
    if field != "idx":  # the other fields went in as they were
        np.testing.assert_array_equal(out.idx, [2, 3, 4])


def test_failed_add_later_field_writes_nothing():
    """An overflow in the last field (W) leaves the already-valid S, A, ... slots untouched."""
    buf = SimpleReplayBuffer(2, random_seed=0)
    buf.add(batch_with_ids([0, 1]))
    bad = batch_with_ids([7])._replace(S=np.full((1, 3), 9.0), W=np.array([1e300]))
    before = snapshot(buf)
    with pytest.raises(ValueError, match="field W"):
        buf.add(bad)
    assert_unchanged(buf, before)
    buf.add(batch_with_ids([7]))  # the buffer still works, and overwrites the oldest
    np.testing.assert_array_equal(buf.oldest_first().idx, [1, 7])


def test_tracer_int64_actions_into_int32_store():
    """The recipe's loop: a Python-int action first (int32 store), then gymnasium's np.int64."""
    from a2c_jax.reward_tracing import NStep

    tracer, buf = NStep(n=1, gamma=0.9), SimpleReplayBuffer(8, random_seed=0)
    for t, a in enumerate([1, np.int64(0), np.int64(1), 0]):
        tracer.add(np.full(3, t, np.float64), a, 1.0, False)
        while tracer:
            buf.add(tracer.pop())
    tracer.add(np.zeros(3), 0, 1.0, True)
    buf.add(tracer.flush())
    out = buf.oldest_first()
    assert out.A.dtype == np.int32
    np.testing.assert_array_equal(out.A, [1, 0, 1, 0, 0])
