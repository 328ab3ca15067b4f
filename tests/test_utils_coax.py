"""coax's utilities (generate_gif, render_episode, diff_transform, StepwiseLinearFunction) against
references written out here: Pillow reading the GIF back, hand-computed values, numpy loops."""

import logging
from math import comb

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, ImageSequence

from a2c_jax.utils import (
    StepwiseLinearFunction,
    diff_transform,
    diff_transform_matrix,
    generate_gif,
    render_episode,
)
from a2c_jax.wrappers import FrameStacking, TrainMonitor


class ColorEnv(gymnasium.Env):
    """Observation t; reward t + 1; ends after ``length`` steps. Frame t is one solid colour, so
    every frame differs from the last (Pillow would merge equal neighbours) and is identifiable."""

    observation_space = gymnasium.spaces.Discrete(1000)
    action_space = gymnasium.spaces.Discrete(2)
    H, W = 6, 10

    def __init__(self, length=5, render_mode="rgb_array"):
        self.length, self.render_mode, self.t = length, render_mode, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.t, {}

    def step(self, action):
        self.t += 1
        return self.t, float(self.t + 1), self.t >= self.length, False, {}

    @staticmethod
    def colour(t):
        return (10 * t % 256, 255 - 7 * t % 256, 40)

    def render(self):
        if self.render_mode == "ansi":
            return f"frame {self.t}"
        return np.broadcast_to(np.array(self.colour(self.t), np.uint8), (self.H, self.W, 3)).copy()


def read_gif(path):
    """(frames as RGB arrays, per-frame durations in ms, size) of a GIF, read back by Pillow."""
    with Image.open(path) as im:
        assert im.format == "GIF"
        frames, durations = [], []
        for frame in ImageSequence.Iterator(im):
            frames.append(np.asarray(frame.convert("RGB")))
            durations.append(frame.info.get("duration"))
        return frames, durations, im.size


@pytest.mark.parametrize("length, cap, resize_to, duration", [
    (5, None, None, 50), (20, 4, None, 80), (3, None, (20, 9), 30),
])
def test_generate_gif_frames_size_duration(tmp_path, length, cap, resize_to, duration):
    """t steps give t + 1 frames (reset + each step), in order, at (width, height), each shown
    ``duration`` ms; max_episode_steps caps the episode; parent folders are created."""
    env = ColorEnv(length=length)
    path = generate_gif(env, tmp_path / "a" / "b" / "ep.gif", resize_to=resize_to, duration=duration,
                        max_episode_steps=cap)
    frames, durations, size = read_gif(path)
    steps = length if cap is None else min(cap, length)
    assert len(frames) == steps + 1
    assert size == (resize_to or (ColorEnv.W, ColorEnv.H))  # Pillow's (width, height)
    assert durations == [duration] * (steps + 1)
    for t, frame in enumerate(frames):
        assert frame.shape == (size[1], size[0], 3)
        np.testing.assert_array_equal(frame, np.broadcast_to(ColorEnv.colour(t), frame.shape))


def test_generate_gif_calls_policy_on_each_observation(tmp_path):
    """policy(s) picks every action, from the observation of the step before."""
    seen = []
    generate_gif(ColorEnv(length=4), tmp_path / "p.gif", policy=lambda s: seen.append(s) or 1)
    assert seen == [0, 1, 2, 3]
    with pytest.raises(TypeError, match="callable"):
        generate_gif(ColorEnv(), tmp_path / "x.gif", policy=3)


@pytest.mark.parametrize("mode", [None, "ansi", "human"])
def test_generate_gif_refuses_other_render_modes(tmp_path, mode):
    """The error names the render mode and the fix; nothing is played or written."""
    env = TrainMonitor(ColorEnv(render_mode=mode))
    with pytest.raises(ValueError, match=rf"render_mode={mode!r}.*render_mode='rgb_array'"):
        generate_gif(env, tmp_path / "x.gif")
    assert not (tmp_path / "x.gif").exists() and env.env.t == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"resize_to": (10,)}, "resize_to"), ({"resize_to": (0, 5)}, "resize_to"),
    ({"resize_to": (2.5, 4)}, "resize_to"), ({"duration": 0}, "duration"),
    ({"max_episode_steps": 0}, "max_episode_steps"),
])
def test_generate_gif_refuses_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_gif(ColorEnv(), tmp_path / "x.gif", **kwargs)


def test_generate_gif_leaves_train_monitor_counters_alone(tmp_path, caplog):
    """On CartPole: recording between episodes changes no counter and logs no episode."""
    caplog.set_level(logging.INFO, logger="a2c_jax.TrainMonitor")
    env = TrainMonitor(gymnasium.make("CartPole-v1", render_mode="rgb_array"))
    for seed in range(2):
        env.reset(seed=seed)
        while not any(env.step(env.action_space.sample())[2:4]):
            pass
    env.period("gif", T_period=5)
    before, n_lines = env.get_counters(), len(caplog.records)
    path = generate_gif(env, tmp_path / "cartpole.gif", policy=lambda s: int(s[2] > 0),
                        resize_to=(60, 40), max_episode_steps=5)
    assert env.get_counters() == before and len(caplog.records) == n_lines
    frames, durations, size = read_gif(path)
    # 6 frames of 50 ms: Pillow merges equal neighbours (small moves vanish at this size) but
    # keeps the total duration
    assert size == (60, 40) and 1 <= len(frames) <= 6 and sum(durations) == 6 * 50
    env.reset(seed=3)  # training goes on, counted as before
    env.step(0)
    assert (env.T, env.ep, env.t) == (before["T"] + 1, before["ep"] + 1, 1)
    env.close()


def test_generate_gif_with_a_monitor_inside_another_wrapper(tmp_path):
    """A TrainMonitor deeper in the chain (FrameStacking over it) is left alone too; the policy
    sees the outer wrapper's observations."""
    monitor = TrainMonitor(ColorEnv(length=3))
    env = FrameStacking(monitor, num_frames=2)
    env.reset()
    while not env.step(0)[2]:
        pass
    before = monitor.get_counters()
    seen = []
    generate_gif(env, tmp_path / "x.gif", policy=lambda s: seen.append(s) or 0)
    assert monitor.get_counters() == before
    assert seen == [(0, 0), (0, 1), (1, 2)]


def test_render_episode_ansi_frames_and_return(capsys):
    """One text frame per reset and step, printed; the return is the sum of the rewards."""
    env = TrainMonitor(ColorEnv(length=4, render_mode="ansi"))
    G = render_episode(env, policy=lambda s: 0)
    assert G == 2 + 3 + 4 + 5
    assert capsys.readouterr().out.splitlines() == [f"frame {t}" for t in range(5)]
    assert (env.T, env.ep) == (0, 0)


def test_render_episode_frozen_lake():
    """A real ansi env: the shortest path on the 4x4 map reaches the goal, return 1."""
    env = gymnasium.make("FrozenLake-v1", is_slippery=False, render_mode="ansi")
    path = iter([1, 1, 2, 2, 1, 2])  # down, down, right, right, down, right
    assert render_episode(env, policy=lambda s: next(path)) == 1.0


def test_render_episode_refusals():
    with pytest.raises(ValueError, match="render_mode=None"):
        render_episode(ColorEnv(render_mode=None))
    with pytest.raises(ValueError, match="step_delay_ms"):
        render_episode(ColorEnv(render_mode="ansi"), step_delay_ms=-1)


# ---- diff_transform ----------------------------------------------------------------------------


def diff_reference(X):
    """Column j = the (n-1-j)-th backward difference at the newest frame, by repeated
    differencing in a Python loop (coax's docstring: position, velocity, acceleration, ...)."""
    X = np.asarray(X, np.float64)
    n = X.shape[-1]
    out = np.empty_like(X)
    for j in range(n):
        d = [X[..., i] for i in range(n)]
        for _ in range(n - 1 - j):
            d = [b - a for a, b in zip(d, d[1:])]
        out[..., j] = d[-1]
    return out


def test_diff_transform_matrix_by_hand():
    """coax's documented 4x4 matrix, and n = 1, 2, 3 worked out by hand."""
    np.testing.assert_array_equal(diff_transform_matrix(4), [[-1, 0, 0, 0], [3, 1, 0, 0],
                                                             [-3, -2, -1, 0], [1, 1, 1, 1]])
    np.testing.assert_array_equal(diff_transform_matrix(1), [[1]])
    np.testing.assert_array_equal(diff_transform_matrix(2), [[-1, 0], [1, 1]])
    np.testing.assert_array_equal(diff_transform_matrix(3), [[1, 0, 0], [-2, -1, 0], [1, 1, 1]])
    assert diff_transform_matrix(3, "float64").dtype == np.float64


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_diff_transform_matrix_is_coax_formula(n):
    """coax builds it from a sign-alternated upper Pascal matrix, flipped on both axes."""
    pascal_upper = np.array([[comb(j, i) for j in range(n)] for i in range(n)], np.float64)
    coax_m = (np.diag((-1.0) ** np.arange(n)) @ pascal_upper)[::-1, ::-1]
    np.testing.assert_array_equal(diff_transform_matrix(n, "float64"), coax_m)


@pytest.mark.parametrize("shape", [(3,), (2, 4), (2, 5, 6, 3), (4, 1)])
def test_diff_transform_against_loop(shape):
    X = np.random.default_rng(len(shape)).normal(size=shape)
    np.testing.assert_allclose(diff_transform(X), diff_reference(X), rtol=1e-5, atol=1e-5)
    jitted = jax.jit(diff_transform)(X)
    assert jitted.dtype == jnp.float32 and jitted.shape == shape
    np.testing.assert_allclose(jitted, diff_reference(X), rtol=1e-5, atol=1e-5)


def test_diff_transform_on_stacked_uint8_frames():
    """uint8 frames are cast before the differences: 0 then 255 is a velocity of +255, not a
    wrap-around; jnp.stack over FrameStacking's batched tuple is the input."""
    frames = (np.zeros((2, 3, 3), np.uint8), np.full((2, 3, 3), 255, np.uint8))  # [B, H, W] x 2
    out = diff_transform(jnp.stack(frames, axis=-1))
    assert out.shape == (2, 3, 3, 2) and out.dtype == jnp.float32
    np.testing.assert_array_equal(out[..., 0], 255.0)  # velocity
    np.testing.assert_array_equal(out[..., 1], 255.0)  # position (newest frame)
    with pytest.raises(ValueError, match="last axis"):
        diff_transform(np.float32(1.0))


# ---- StepwiseLinearFunction --------------------------------------------------------------------


def stepwise_reference(steps, x):
    """Flat before the first and after the last point; the straight line between neighbours."""
    if x <= steps[0][0]:
        return steps[0][1]
    for (x0, y0), (x1, y1) in zip(steps, steps[1:]):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return steps[-1][1]


def test_stepwise_linear_by_hand():
    """coax's DQN epsilon schedule at points worked out by hand."""
    f = StepwiseLinearFunction((0, 1.0), (1_000_000, 0.1), (2_000_000, 0.01))
    for x, y in [(-5, 1.0), (0, 1.0), (500_000, 0.55), (1_000_000, 0.1), (1_500_000, 0.055),
                 (2_000_000, 0.01), (10**9, 0.01)]:
        assert f(x) == pytest.approx(y, abs=1e-12)
        assert isinstance(f(x), float)


def test_stepwise_linear_against_loop():
    rng = np.random.default_rng(0)
    for _ in range(20):
        xs = np.unique(rng.integers(-50, 50, size=rng.integers(2, 6)))
        if len(xs) < 2:
            continue
        steps = [(int(x), float(y)) for x, y in zip(xs, rng.normal(size=len(xs)))]
        f = StepwiseLinearFunction(*steps)
        grid = rng.uniform(-70, 70, size=50)
        want = [stepwise_reference(steps, x) for x in grid]
        assert [f(x) for x in grid] == pytest.approx(want, abs=1e-12)
        np.testing.assert_allclose(f(grid), want, atol=1e-12)  # arrays too


@pytest.mark.parametrize("steps, exc, match", [
    (((0, 1.0),), TypeError, "at least two"),
    ((), TypeError, "at least two"),
    (((0, 1.0), (0, 2.0)), ValueError, "strictly increasing"),
    (((5, 1.0), (2, 2.0), (9, 0.0)), ValueError, r"strictly increasing.*5 then 2"),
    (((0, 1.0), (1, 2.0, 3.0)), TypeError, "pair"),
    (((0, 1.0), (1, "a")), TypeError, "pair"),
    (((0, 1.0), (1, float("nan"))), ValueError, "finite"),
])
def test_stepwise_linear_refusals(steps, exc, match):
    with pytest.raises(exc, match=match):
        StepwiseLinearFunction(*steps)


def test_read_scalars_round_trip(tmp_path):
    """Scalars written by tensorboardX (two writers, out-of-order steps) come back by tag, sorted
    by step; a truncated event file is refused."""
    from tensorboardX import SummaryWriter

    from a2c_jax.utils import read_event_file, read_scalars

    written = {"a/x": [(3, 0.5), (1, -2.0), (2, 7.25)], "b": [(10, 1.0)]}
    for sub, tags in (("run1", ["a/x"]), ("run2", ["b"])):
        with SummaryWriter(str(tmp_path / sub)) as w:
            for tag in tags:
                for step, value in written[tag]:
                    w.add_scalar(tag, value, step)
    got = read_scalars(tmp_path)
    assert got == {tag: ([s for s, _ in sorted(pts)], [v for _, v in sorted(pts)])
                   for tag, pts in written.items()}
    events = next((tmp_path / "run1").glob("*tfevents*"))
    events.write_bytes(events.read_bytes()[:-3])
    with pytest.raises(ValueError, match="past the end"):
        read_event_file(events)
