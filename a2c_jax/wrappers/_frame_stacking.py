"""Frame stacking as a tuple of raw observations (coax's), for Atari-style pixel envs."""

from __future__ import annotations

from collections import deque
from typing import Any, SupportsFloat

import gymnasium
import numpy as np


class FrameStacking(gymnasium.Wrapper):
    """Makes each observation the tuple of the last ``num_frames`` raw observations (coax's).

    The frames are not stacked into one array: the observation is a tuple ``(o_{t-n+1}, ...,
    o_t)``, oldest first, an element of ``Tuple((space,) * num_frames)``. As a pytree it goes
    through jitted functions as it is, and a batch of them (a tuple of ``[B, ...]`` arrays, as
    :class:`a2c_jax.V` and :class:`a2c_jax.Policy` pass composite observations to ``func``) is
    stacked downstream, e.g. ``jnp.stack(S, axis=-1)`` → ``[B, ..., num_frames]``, ready for
    :func:`a2c_jax.utils.diff_transform`. ``reset`` fills every slot with the first observation.
    The frames are the env's own arrays, not copies (that is what keeps the memory low).

    Reference: Mnih et al., "Human-level control through deep reinforcement learning" (2015).

    Args:
        env: the environment to wrap.
        num_frames: the number of frames per observation (an int >= 1).

    Raises:
        TypeError: ``num_frames`` is not an int.
        ValueError: ``num_frames < 1``.
    """

    def __init__(self, env: gymnasium.Env, num_frames: int) -> None:
        if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)):
            raise TypeError(f"FrameStacking: num_frames must be an int >= 1, got "
                            f"{type(num_frames).__name__} {num_frames!r}")
        if num_frames < 1:
            raise ValueError(f"FrameStacking: num_frames must be >= 1, got {num_frames}")
        super().__init__(env)
        self.num_frames = int(num_frames)
        self.observation_space = gymnasium.spaces.Tuple((env.observation_space,) * self.num_frames)
        self._frames: deque[Any] = deque(maxlen=self.num_frames)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Resets the env; the observation is ``num_frames`` copies of its first observation."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._frames.extend([obs] * self.num_frames)
        return tuple(self._frames), info

    def step(self, action: Any) -> tuple[tuple[Any, ...], SupportsFloat, bool, bool, dict[str, Any]]:
        """Steps the env; the observation drops the oldest frame and appends the new one."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._frames.append(obs)
        return tuple(self._frames), reward, terminated, truncated, info
