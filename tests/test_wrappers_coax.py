"""FrameStacking (coax's) against the raw observations of an unwrapped twin env, seeded alike."""

import gymnasium
import haiku as hk
import jax.numpy as jnp
import numpy as np
import pytest

import a2c_jax
from a2c_jax.utils import diff_transform
from a2c_jax.wrappers import FrameStacking


@pytest.mark.parametrize("num_frames", [1, 2, 4])
def test_frame_stacking_tuple_of_last_raw_observations(num_frames):
    """reset: num_frames copies of the first obs; each step: the last num_frames raw obs, oldest
    first; every observation lies in the Tuple space of num_frames copies."""
    env = FrameStacking(gymnasium.make("CartPole-v1"), num_frames=num_frames)
    twin = gymnasium.make("CartPole-v1")
    space = env.observation_space
    assert isinstance(space, gymnasium.spaces.Tuple) and len(space.spaces) == num_frames
    assert all(sp == twin.observation_space for sp in space.spaces)

    s, _ = env.reset(seed=7)
    raw = [twin.reset(seed=7)[0]]
    assert isinstance(s, tuple) and len(s) == num_frames and space.contains(s)
    for frame in s:
        np.testing.assert_array_equal(frame, raw[0])
    actions = np.random.default_rng(0).integers(2, size=6)
    for a in actions:
        s, r, terminated, truncated, _ = env.step(int(a))
        raw_s, raw_r, *_ = twin.step(int(a))
        raw.append(raw_s)
        want = ([raw[0]] * num_frames + raw)[-num_frames:]
        assert len(s) == num_frames and r == raw_r and space.contains(s)
        for got, w in zip(s, want):
            np.testing.assert_array_equal(got, w)


def test_frame_stacking_batched_tuple_stacks_on_last_axis():
    """A batch of observations as a tuple of [B, 4] arrays: jnp.stack(S, axis=-1) is [B, 4, n],
    and diff_transform's last column is the newest frame."""
    env = FrameStacking(gymnasium.make("CartPole-v1"), num_frames=3)
    obs = [env.reset(seed=0)[0]]
    for a in (0, 1, 1, 0):
        obs.append(env.step(a)[0])
    S = tuple(np.stack([o[i] for o in obs]) for i in range(3))  # frame i of each observation
    X = jnp.stack(S, axis=-1)
    assert X.shape == (5, 4, 3)
    np.testing.assert_array_equal(X[:, :, 2], np.stack([o[2] for o in obs]))
    D = diff_transform(X)
    np.testing.assert_allclose(D[..., 2], X[..., 2])
    np.testing.assert_allclose(D[..., 1], X[..., 2] - X[..., 1], atol=1e-6)


def test_frame_stacking_observations_reach_a_value_function():
    """V on a FrameStacking env gets the tuple as a pytree of batched arrays (coax's preprocessor)."""
    env = FrameStacking(gymnasium.make("CartPole-v1"), num_frames=2)
    seen = []

    def func(S, is_training):
        seen.append(tuple(x.shape for x in S))
        X = diff_transform(jnp.stack(S, axis=-1))
        return hk.Linear(1)(X.reshape(X.shape[0], -1)).squeeze(-1)

    v = a2c_jax.V(func, env, random_seed=0)
    s, _ = env.reset(seed=0)
    assert isinstance(v(s), float)
    assert seen[-1] == ((1, 4), (1, 4))


@pytest.mark.parametrize("num_frames, exc, match", [
    (0, ValueError, "num_frames must be >= 1, got 0"),
    (-3, ValueError, "num_frames must be >= 1"),
    (2.0, TypeError, "num_frames must be an int.*float"),
    ("3", TypeError, "num_frames must be an int"),
    (True, TypeError, "num_frames must be an int"),
])
def test_frame_stacking_refuses_bad_num_frames(num_frames, exc, match):
    with pytest.raises(exc, match=match):
        FrameStacking(gymnasium.make("CartPole-v1"), num_frames=num_frames)


def test_frame_stacking_reset_passes_seed_and_options():
    env = FrameStacking(gymnasium.make("CartPole-v1"), num_frames=2)
    s, _ = env.reset(seed=1, options={"low": -0.01, "high": 0.01})
    assert np.all(np.abs(s[0]) <= 0.01)
    np.testing.assert_array_equal(s[1], gymnasium.make("CartPole-v1").reset(
        seed=1, options={"low": -0.01, "high": 0.01})[0])
