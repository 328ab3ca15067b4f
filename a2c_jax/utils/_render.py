"""Watching a policy: one episode rendered to the screen or recorded as an animated GIF."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

_DEFAULT_MAX_STEPS = 10_000  # coax's cap when neither the caller nor env.spec gives one


def generate_gif(env: Any, filepath: str | os.PathLike, policy: Callable[[Any], Any] | None = None,
                 resize_to: tuple[int, int] | None = None, duration: float = 50,
                 max_episode_steps: int | None = None) -> Path:
    """Plays one episode and writes its frames to an animated GIF (coax's).

    The frames are ``env.render()`` after the reset and after each step (so an episode of
    ``t`` steps gives ``t + 1`` frames; coax skips the first and repeats the last). Pillow merges
    identical consecutive frames into one frame shown for their summed duration.

    A :class:`~a2c_jax.wrappers.TrainMonitor` anywhere in the wrapper chain is
    :meth:`~a2c_jax.wrappers.TrainMonitor.paused` for the episode: its counters (``T``, ``ep``,
    ``avg_G``, the ``period`` schedules), log and TensorBoard are left as they were. (coax
    strips an outer TrainMonitor and resets the env inside it, which leaves the counters alone
    too.) The env itself is reset and played, so call this between training episodes and reset
    before training on.

    Args:
        env: a gymnasium env made with ``render_mode='rgb_array'``, possibly wrapped.
        filepath: where to write the GIF; missing parent folders are created.
        policy: ``a = policy(s)`` picks the actions (e.g. an :class:`a2c_jax.Policy`, or its
            ``mode`` for greedy play); ``None``: random actions, ``env.action_space.sample()``.
        resize_to: the output frame size ``(width, height)`` in pixels, Pillow's (and coax's)
            order; e.g. ``(320, 420)`` doubles Atari's 160-wide, 210-high frames.
        duration: the time each frame is shown, in milliseconds (GIF stores 10 ms units).
        max_episode_steps: the most steps to play; default ``env.spec.max_episode_steps``, or
            10,000 if the env has none.

    Returns:
        The path written.

    Raises:
        ValueError: the env's ``render_mode`` is not ``'rgb_array'``, or a bad ``resize_to``,
            ``duration`` or ``max_episode_steps``.
        TypeError: ``policy`` is not callable, or a frame is not an ``[H, W, 3|4]`` array.
    """
    from PIL import Image

    mode = getattr(env, "render_mode", None)
    if mode != "rgb_array":
        raise ValueError(f"generate_gif needs an env that renders frames, render_mode='rgb_array'; "
                         f"this env has render_mode={mode!r}. Make it with "
                         f"gymnasium.make(..., render_mode='rgb_array')")
    size = _check_size(resize_to)
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not duration > 0:
        raise ValueError(f"duration must be a positive number of milliseconds, got {duration!r}")
    max_steps = _max_steps(env, max_episode_steps)
    _check_policy(policy)

    frames = []

    def grab() -> None:
        frame = np.asarray(env.render())
        if frame.ndim != 3 or frame.shape[-1] not in (3, 4):
            raise TypeError(f"env.render() must return an [H, W, 3|4] array, got shape {frame.shape}")
        image = Image.fromarray(frame.astype(np.uint8, copy=False)).convert("RGB")
        if size is not None:
            image = image.resize(size, Image.Resampling.NEAREST)  # crisp pixels, no new colours
        frames.append(image.convert("P", palette=Image.Palette.ADAPTIVE))

    with _monitors_paused(env):
        _play(env, policy, max_steps, grab)

    path = Path(filepath)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:],
                   duration=duration, loop=0)
    logging.getLogger("a2c_jax.generate_gif").info(f"recorded {len(frames)} frames to {path}")
    return path


def render_episode(env: Any, policy: Callable[[Any], Any] | None = None,
                   step_delay_ms: float = 0) -> float:
    """Plays one episode, calling ``env.render()`` after the reset and after each step (coax's).

    For ``render_mode='human'`` the env draws its own window; for ``'ansi'`` the text frames are
    printed to stdout. A :class:`~a2c_jax.wrappers.TrainMonitor` in the chain is paused, as in
    :func:`generate_gif`. The episode is capped at ``env.spec.max_episode_steps`` steps (10,000
    if none).

    Args:
        env: a gymnasium env made with a ``render_mode`` (``'human'``, ``'ansi'``, ...).
        policy: ``a = policy(s)``; ``None``: random actions.
        step_delay_ms: a pause after each frame, in milliseconds, to slow the episode down
            (coax also waits five times as long after the last frame; so does this).

    Returns:
        The episode's return (the sum of its rewards).

    Raises:
        ValueError: the env has no ``render_mode`` (``env.render()`` would draw nothing), or a
            negative ``step_delay_ms``.
        TypeError: ``policy`` is not callable.
    """
    mode = getattr(env, "render_mode", None)
    if mode is None:
        raise ValueError("render_episode needs an env made with a render mode, e.g. "
                         "gymnasium.make(..., render_mode='human'); this env has render_mode=None")
    if isinstance(step_delay_ms, bool) or not isinstance(step_delay_ms, (int, float)) \
            or not step_delay_ms >= 0:
        raise ValueError(f"step_delay_ms must be a number >= 0, got {step_delay_ms!r}")
    _check_policy(policy)

    def show() -> None:
        out = env.render()
        if isinstance(out, str):
            sys.stdout.write(out if out.endswith("\n") else out + "\n")
        if step_delay_ms:
            time.sleep(step_delay_ms / 1e3)

    with _monitors_paused(env):
        G = _play(env, policy, _max_steps(env, None), show)
    if step_delay_ms:
        time.sleep(5 * step_delay_ms / 1e3)
    return G


def _play(env: Any, policy: Callable[[Any], Any] | None, max_steps: int,
          on_frame: Callable[[], None]) -> float:
    """One episode of at most ``max_steps`` steps; ``on_frame`` after the reset and each step."""
    s, _ = env.reset()
    on_frame()
    G = 0.0
    for _ in range(max_steps):
        a = env.action_space.sample() if policy is None else policy(s)
        s, r, terminated, truncated, _ = env.step(a)
        G += float(r)
        on_frame()
        if terminated or truncated:
            break
    return G


@contextlib.contextmanager
def _monitors_paused(env: Any) -> Iterator[None]:
    """Pauses every TrainMonitor in ``env``'s wrapper chain (outermost first)."""
    from ..wrappers import TrainMonitor  # here: the wrappers import utils

    with contextlib.ExitStack() as stack:
        e, seen = env, set()
        while e is not None and id(e) not in seen:
            seen.add(id(e))
            if isinstance(e, TrainMonitor):
                stack.enter_context(e.paused())
            e = getattr(e, "env", None)
        yield


def _max_steps(env: Any, max_episode_steps: int | None) -> int:
    if max_episode_steps is not None:
        if isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, (int, np.integer)) \
                or max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be an int >= 1, got {max_episode_steps!r}")
        return int(max_episode_steps)
    spec = getattr(env, "spec", None)
    limit = getattr(spec, "max_episode_steps", None)
    return int(limit) if limit else _DEFAULT_MAX_STEPS


def _check_size(resize_to: Any) -> tuple[int, int] | None:
    if resize_to is None:
        return None
    ok = (isinstance(resize_to, (tuple, list)) and len(resize_to) == 2
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                  for v in resize_to))
    if not ok:
        raise ValueError(f"resize_to must be (width, height), two ints >= 1, got {resize_to!r}")
    return int(resize_to[0]), int(resize_to[1])


def _check_policy(policy: Any) -> None:
    if policy is not None and not callable(policy):
        raise TypeError(f"policy must be callable, a = policy(s), got {type(policy).__name__}")
