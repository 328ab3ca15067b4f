"""A gymnasium wrapper that keeps training counters, logs episodes and writes TensorBoard scalars."""

from __future__ import annotations

import logging
import math
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
        if isinstance(smoothing, bool) or not isinstance(smoothing, (int, np.integer)):
            raise TypeError(f"smoothing must be an int >= 1, got {smoothing!r}")
        if smoothing < 1:
            raise ValueError(f"smoothing must be >= 1, got {smoothing}")
        self.logger = logging.getLogger(name)
        self.T = self.ep = self.t = 0
        self.G = 0.0
        self._recent_G: deque = deque(maxlen=int(smoothing))
        self._pending: list[tuple[tuple[str, ...], Any]] = []
        self._checked_keys: tuple | None = None  # the last Metrics keys found to be strings
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
        """Records a dict of scalar metrics; averaged and reported at the end of the episode.

        Each value must be a real scalar: a Python number, a numpy scalar, or a numpy or JAX
        array of size 1 (of any shape, e.g. ``[]`` or ``[1]``). It is checked here, from its
        shape and dtype only, so a device array is neither waited for nor copied: an updater's
        :class:`~a2c_jax.utils.Metrics` (one stacked device array) is recorded as it is, and
        fetched with the rest of the episode's metrics in one transfer at the episode's end.

        Raises:
            TypeError: not a mapping, a key that is not a string, or a value that is not a real
                number (a string, ``None``, a complex number, ...).
            ValueError: an array value with more than one element (or a ``Metrics`` whose
                values are not one per key).

        A call that raises records nothing.
        """
        if isinstance(metrics, Metrics):
            keys, values = metrics.packed
            if keys is not self._checked_keys:  # an updater passes the same keys every time
                _check_keys(keys)
                self._checked_keys = keys
            try:  # a device array's shape and dtype are static: reading them does not sync
                ok = values.shape == (len(keys),) and values.dtype.kind in _REAL_KINDS
            except (AttributeError, TypeError):
                ok = False
            if not ok:
                shape, kind = np.shape(values), _kind_of(values)
                if shape != (len(keys),) or kind is None or kind not in _REAL_KINDS:
                    raise ValueError(f"a Metrics of {len(keys)} keys needs {len(keys)} real "
                                     f"values, got {shape} values of kind {kind!r}")
            self._pending.append((keys, values))
        elif isinstance(metrics, Mapping):
            keys, values = tuple(metrics), list(metrics.values())
            _check_keys(keys)
            for k, v in zip(keys, values):
                _check_scalar(k, v)
            self._pending.append((keys, values))
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
            # a Metrics' stacked array, or a dict's values, each of size 1 (checked when recorded)
            flat = vs.ravel() if isinstance(vs, np.ndarray) else [np.ravel(v)[0] for v in vs]
            for k, v in zip(ks, flat, strict=True):
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


_REAL_KINDS = "biuf"  # bool, int, unsigned, float: what a TensorBoard scalar can be


def _kind_of(x) -> str | None:
    """The numpy dtype kind of an array, an array-like or a host list (``None``: no dtype)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return np.asarray(x).dtype.kind if isinstance(x, (list, tuple)) else None
    kind = getattr(dtype, "kind", None)  # numpy and JAX dtypes have it: no conversion needed
    if isinstance(kind, str):
        return kind
    try:
        return np.dtype(dtype).kind
    except TypeError:  # not a dtype numpy knows
        return None


def _check_keys(keys) -> None:
    for k in keys:
        if not isinstance(k, str):
            raise TypeError(f"metric names must be strings, got {k!r}")


def _check_scalar(key: str, v) -> None:
    """Raises unless ``v`` is a real scalar; reads only its type, shape and dtype (no sync)."""
    if isinstance(v, (float, int)):  # Python numbers, bools and numpy float64 scalars
        return
    try:  # numpy and JAX arrays and scalars: static attributes only
        if v.dtype.kind in _REAL_KINDS and v.size == 1:
            return
    except (AttributeError, TypeError):
        pass
    # what is wrong with it
    shape = getattr(v, "shape", None)
    if shape is None or isinstance(v, (list, tuple)):
        raise TypeError(f"metric {key!r} must be a real number or a size-1 array, got "
                        f"{type(v).__name__} {v!r}")
    kind = _kind_of(v)
    if kind is None or kind not in _REAL_KINDS:
        raise TypeError(f"metric {key!r} must be real, got dtype {getattr(v, 'dtype', None)}")
    if math.prod(shape) != 1:
        raise ValueError(f"metric {key!r} must be a scalar (size 1), got shape {tuple(shape)}: "
                         f"reduce it (e.g. mean) before recording")
