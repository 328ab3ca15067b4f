"""A gymnasium wrapper that keeps training counters, logs episodes and writes TensorBoard scalars."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import gymnasium
import jax
import numpy as np

from ..utils._metrics import Metrics


class TrainMonitor(gymnasium.Wrapper):
    """Counts steps and episodes, logs one line per episode, and records training metrics.

    Counters: ``T`` (env steps in total), ``ep`` (episodes started), ``t`` (steps in this
    episode), ``G`` (return of this episode so far), ``avg_G`` (mean return of the last
    ``smoothing`` finished episodes).

    :meth:`record_metrics` keeps the values as they are (device arrays stay on the device) and
    averages them once per episode, in one transfer, so recording after every update costs no
    host sync. At the end of each episode a line goes to the ``a2c_jax.TrainMonitor`` logger (see
    :func:`a2c_jax.utils.enable_logging`) and, given ``tensorboard_dir``, the episode's return,
    length and averaged metrics are written as TensorBoard scalars (tensorboardX) at step ``T``.

    Args:
        env: the environment to wrap (gymnasium 1.x API).
        tensorboard_dir: where to write TensorBoard event files (``None``: no TensorBoard).
        smoothing: the number of recent episodes ``avg_G`` averages over.
        name: the logger's name.
    """

    def __init__(self, env: gymnasium.Env, tensorboard_dir: str | None = None,
                 smoothing: int = 10, name: str = "a2c_jax.TrainMonitor"):
        super().__init__(env)
        if smoothing < 1:
            raise ValueError(f"smoothing must be >= 1, got {smoothing}")
        self.logger = logging.getLogger(name)
        self.T = self.ep = self.t = 0
        self.G = 0.0
        self._recent_G: deque = deque(maxlen=int(smoothing))
        self._pending: list[tuple[tuple[str, ...], Any]] = []
        self._ep_start = time.perf_counter()
        self.last_metrics: dict[str, float] = {}
        self.tensorboard = None
        if tensorboard_dir is not None:
            from tensorboardX import SummaryWriter

            self.tensorboard = SummaryWriter(str(tensorboard_dir))

    @property
    def avg_G(self) -> float:
        """The mean return of the last ``smoothing`` finished episodes (0.0 before the first)."""
        return float(np.mean(self._recent_G)) if self._recent_G else 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Starts a new episode; ``seed`` and ``options`` are passed to the wrapped env."""
        obs, info = self.env.reset(seed=seed, options=options)
        self.ep += 1
        self.t = 0
        self.G = 0.0
        self._ep_start = time.perf_counter()
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.T += 1
        self.t += 1
        self.G += float(reward)
        if terminated or truncated:
            self._end_episode()
        return obs, reward, terminated, truncated, info

    def record_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Records a dict of scalar metrics; averaged and reported at the end of the episode."""
        if isinstance(metrics, Metrics):
            self._pending.append(metrics.packed)
        elif isinstance(metrics, Mapping):
            self._pending.append((tuple(metrics), list(metrics.values())))
        else:
            raise TypeError(f"metrics must be a mapping of scalars, got {type(metrics).__name__}")

    def _average_pending(self) -> dict[str, float]:
        if not self._pending:
            return {}
        keys = [k for k, _ in self._pending]
        values = jax.device_get([v for _, v in self._pending])  # one transfer for the episode
        self._pending = []
        sums: dict[str, list[float]] = {}
        for ks, vs in zip(keys, values):
            for k, v in zip(ks, np.asarray(vs, np.float64).ravel()):
                sums.setdefault(k, []).append(float(v))
        return {k: float(np.mean(v)) for k, v in sums.items()}

    def _end_episode(self) -> None:
        self._recent_G.append(self.G)
        self.last_metrics = self._average_pending()
        dt = max(time.perf_counter() - self._ep_start, 1e-9)
        if self.logger.isEnabledFor(logging.INFO):
            extra = "".join(f" | {k}: {v:.3g}" for k, v in sorted(self.last_metrics.items()))
            self.logger.info(f"ep: {self.ep}, T: {self.T:,}, G: {self.G:.3g}, avg_G: "
                             f"{self.avg_G:.3g}, t: {self.t}, dt: {dt * 1e3 / self.t:.3f}ms/step"
                             f"{extra}")
        if self.tensorboard is not None:
            tb = self.tensorboard
            tb.add_scalar("episode/return", self.G, self.T)
            tb.add_scalar("episode/avg_return", self.avg_G, self.T)
            tb.add_scalar("episode/length", self.t, self.T)
            for k, v in self.last_metrics.items():
                tb.add_scalar(k, v, self.T)

    def close(self):
        if self.tensorboard is not None:
            self.tensorboard.close()
        return super().close()
