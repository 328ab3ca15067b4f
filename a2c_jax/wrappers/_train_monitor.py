"""A gymnasium wrapper that keeps training counters, logs episodes and writes TensorBoard scalars."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium
import jax
import numpy as np

from ..utils._logging import enable_logging
from ..utils._metrics import Metrics
from ._counters import check_counters, read_counters, write_counters
from ._metric_checks import REAL_KINDS, check_keys, check_scalar, kind_of

_LOGGER = "a2c_jax.TrainMonitor"
_LOGGED_SUFFIXES = ("/loss", "/entropy", "/kl_div")  # the metrics a log line shows by default
_LOGGED_PREFIXES = ("throughput/",)


class TrainMonitor(gymnasium.Wrapper):
    """Counts steps and episodes, logs one line per episode, and records training metrics (coax's).

    Counters (coax's names):

    - ``T``: env steps in total (coax also adds one per ``reset``; here ``T`` counts steps only),
    - ``ep``: episodes started (incremented by ``reset``),
    - ``t``: steps in this episode, ``G``: the return of this episode so far,
    - ``avg_G``: the smoothed return of finished episodes, coax's rule: at each episode's end
      ``n <- min(smoothing, n + 1); avg_G <- avg_G + (G - avg_G) / n``, so the first
      ``smoothing`` episodes are averaged exactly and later ones enter an exponential average
      with weight ``1 / smoothing``.

    :meth:`record_metrics` keeps the values as they are (device arrays stay on the device) and
    averages them once per episode, in one transfer, so recording after every update costs no
    host sync. When an episode ends (``terminated or truncated``; coax waits for the next
    ``reset``) one line goes to the logger::

        ep: 3,\\tT: 57,\\tG: 19,\\tavg_r: 1,\\tavg_G: 18.3,\\tt: 19,\\tdt: 0.052ms,\\tVanillaPG/loss: 0.12

    and, given ``tensorboard_dir``, scalars at step ``T``: coax's ``episode/episode``,
    ``episode/avg_reward``, ``episode/return``, ``episode/steps``,
    ``episode/avg_step_duration_ms``, plus ``episode/avg_return`` (``avg_G``, which coax does not
    write) and each recorded metric's episode average. The event files go straight into
    ``tensorboard_dir`` (coax adds a timestamped subfolder).

    Logging is visible by default, as in coax: when nothing is configured (neither the root logger
    nor ``a2c_jax``'s has a handler), the constructor calls
    :func:`a2c_jax.utils.enable_logging`, which gives the ``a2c_jax`` logger alone a stderr
    handler (coax calls ``logging.basicConfig``; the root logger is left alone here). Configure
    logging first to send the lines elsewhere, or silence them with
    ``logging.getLogger('a2c_jax').setLevel(logging.WARNING)``.

    Only a single env is wrapped: a vector env is refused (see :class:`a2c_jax.training.Trainer`
    for vector envs, or wrap each sub-env before vectorising).

    Args:
        env: the environment to wrap (a single ``gymnasium.Env``, gymnasium 1.x API).
        name: the run's name; log lines go to the logger ``a2c_jax.TrainMonitor.<name>``
            (``a2c_jax.TrainMonitor`` when ``None``), so they show under ``enable_logging()``.
        tensorboard_dir: where to write TensorBoard event files (``None``: no TensorBoard).
        tensorboard_write_all: write each recorded metric to TensorBoard when it is recorded, at
            the current ``T`` (one host sync per :meth:`record_metrics` call), instead of its
            episode average at the episode's end.
        log_all_metrics: show every metric in the log line; by default (coax) only those whose
            name ends with ``/loss``, ``/entropy`` or ``/kl_div`` or starts with ``throughput/``.
        smoothing: the ``n`` cap of ``avg_G``'s smoothing rule (an int >= 1).

    Raises:
        TypeError: a vector env or a non-env, a ``name`` that is not a string, or a
            ``smoothing`` that is not an int.
        ValueError: ``smoothing < 1``.
    """

    def __init__(self, env: gymnasium.Env, name: str | None = None,
                 tensorboard_dir: str | os.PathLike | None = None,
                 tensorboard_write_all: bool = False, log_all_metrics: bool = False,
                 smoothing: int = 10) -> None:
        _check_single_env(env)
        super().__init__(env)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {type(name).__name__} {name!r}")
        if isinstance(smoothing, bool) or not isinstance(smoothing, (int, np.integer)):
            raise TypeError(f"smoothing must be an int >= 1, got {smoothing!r}")
        if smoothing < 1:
            raise ValueError(f"smoothing must be >= 1, got {smoothing}")
        self.name = name
        self.logger = logging.getLogger(_LOGGER if name is None else f"{_LOGGER}.{name}")
        if not logging.getLogger().handlers and not logging.getLogger("a2c_jax").handlers:
            enable_logging()  # coax's scripts expect one visible line per episode
        self.smoothing = int(smoothing)
        self.tensorboard_write_all = bool(tensorboard_write_all)
        self.log_all_metrics = bool(log_all_metrics)
        self._paused = 0
        self._checked_keys: tuple[str, ...] | None = None  # the last Metrics keys found to be strings
        self.reset_global()
        self.tensorboard = None
        if tensorboard_dir is not None:
            from tensorboardX import SummaryWriter

            self.tensorboard = SummaryWriter(str(tensorboard_dir))

    def reset_global(self) -> None:
        """Resets every counter (``T``, ``ep``, ``avg_G``, the :meth:`period` schedules, ...)."""
        self.T = self.ep = self.t = 0
        self.G = self.avg_G = 0.0
        self._n_avg_G = 0
        self._period: dict[str, dict[str, int]] = {"T": {}, "ep": {}}
        self._pending: list[tuple[tuple[str, ...], Any]] = []
        self.last_metrics: dict[str, float] = {}
        self._ep_start = time.perf_counter()
        self._ep_stop: float | None = None

    # ---- the env API -------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Starts a new episode; ``seed`` and ``options`` are passed to the wrapped env."""
        obs, info = self.env.reset(seed=seed, options=options)
        if self._paused:
            return obs, info
        self.ep += 1
        self.t = 0
        self.G = 0.0
        self._ep_start = time.perf_counter()
        self._ep_stop = None
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Steps the wrapped env and updates the counters; the episode's end logs one line."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._paused:
            return obs, reward, terminated, truncated, info
        self.T += 1
        self.t += 1
        self.G += float(reward)
        if terminated or truncated:
            self._end_episode()
        return obs, reward, terminated, truncated, info

    @contextlib.contextmanager
    def paused(self) -> Iterator[TrainMonitor]:
        """A context in which ``step`` and ``reset`` pass straight through to the wrapped env.

        No counter changes, nothing is logged or written to TensorBoard: for an evaluation or
        recording episode (:func:`a2c_jax.utils.generate_gif` uses it) between training
        episodes. The wrapped env's state does change: start a new episode afterwards.
        """
        self._paused += 1
        try:
            yield self
        finally:
            self._paused -= 1

    def close(self) -> None:
        """Closes the TensorBoard writer (if any) and the wrapped env."""
        if self.tensorboard is not None:
            self.tensorboard.close()
        super().close()

    # ---- derived quantities ------------------------------------------------------------------

    @property
    def avg_r(self) -> float:
        """The mean reward per step of this (or the just finished) episode: ``G / t`` (nan if t=0)."""
        return self.G / self.t if self.t > 0 else float("nan")

    @property
    def dt_ms(self) -> float:
        """Wall time per step of this (or the just finished) episode, in ms (nan if t=0)."""
        if self.t <= 0:
            return float("nan")
        stop = time.perf_counter() if self._ep_stop is None else self._ep_stop
        return 1e3 * (stop - self._ep_start) / self.t

    # ---- schedules ---------------------------------------------------------------------------

    def period(self, name: str, T_period: int | None = None, ep_period: int | None = None) -> bool:
        """True once every ``T_period`` env steps and/or ``ep_period`` episodes, per ``name``.

        With ``T_period=P``, the call returns True when ``T`` has reached the next multiple of
        ``P`` (``P, 2P, ...``) since the schedule ``name`` last fired; called once per step it
        fires at ``T = P, 2P, 3P, ...``. Likewise ``ep_period`` with the episode counter ``ep``.
        Given both, it fires when either is due, and both schedules advance.

        Differences from coax: when several multiples passed between two calls, coax returns
        True on as many consecutive calls (catching up); here it fires once and skips to the next
        multiple above ``T``. coax, given both periods, does not advance the episode schedule on
        a call where the step schedule fires.

        Args:
            name: the schedule's name (a string; each name keeps its own state).
            T_period: fire every this many env steps (a positive int, or a float such as ``1e4``
                with an integer value).
            ep_period: fire every this many episodes (likewise).

        Returns:
            Whether the schedule fires on this call.

        Raises:
            ValueError: neither period is given, or a period is not a positive integer.
            TypeError: ``name`` is not a string, or a period is not a number.
        """
        if not isinstance(name, str):
            raise TypeError(f"period: name must be a str, got {type(name).__name__} {name!r}")
        if T_period is None and ep_period is None:
            raise ValueError(f"period({name!r}): give T_period and/or ep_period")
        fired = False
        for kind, p, count in (("T", T_period, self.T), ("ep", ep_period, self.ep)):
            if p is None:
                continue
            p = _positive_int(p, f"period({name!r}): {kind}_period")
            table = self._period[kind]
            if count >= table.setdefault(name, 1) * p:
                table[name] = count // p + 1  # the next multiple above count
                fired = True
        return fired

    # ---- counters ----------------------------------------------------------------------------

    def get_counters(self) -> dict[str, Any]:
        """The counters, as a plain (JSON-able) dict: ``T, ep, t, G, avg_G, n_avg_G, period``.

        ``n_avg_G`` is the ``n`` of ``avg_G``'s smoothing rule; ``period`` holds the state of
        every :meth:`period` schedule.
        """
        return {"T": self.T, "ep": self.ep, "t": self.t, "G": self.G, "avg_G": self.avg_G,
                "n_avg_G": self._n_avg_G,
                "period": {kind: dict(table) for kind, table in self._period.items()}}

    def set_counters(self, counters: Mapping[str, Any]) -> None:
        """Restores counters from :meth:`get_counters`; checked completely before any is set.

        Raises:
            TypeError: not a dict, or a value of the wrong type.
            ValueError: missing or unknown keys, or a negative count.
        """
        c = check_counters(counters)
        self.T, self.ep, self.t, self._n_avg_G = c["T"], c["ep"], c["t"], c["n_avg_G"]
        self.G, self.avg_G = c["G"], c["avg_G"]
        self._period = c["period"]
        self._ep_start = time.perf_counter()
        self._ep_stop = None

    def save_counters(self, filepath: str | os.PathLike) -> Path:
        """Writes :meth:`get_counters` to ``filepath`` as JSON, atomically (coax pickles).

        Parent directories are created. Returns the path written.
        """
        return write_counters(filepath, self.get_counters())

    def load_counters(self, filepath: str | os.PathLike) -> None:
        """Restores the counters saved by :meth:`save_counters`. Nothing in the file is run.

        Raises:
            a2c_jax.utils.CheckpointError: (a ``ValueError``) the file is missing, not this
                format (a pickle, such as coax's counters file, is refused unread), or invalid.
        """
        self.set_counters(read_counters(filepath))

    # ---- metrics -----------------------------------------------------------------------------

    def record_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Records a dict of scalar metrics; averaged and reported at the end of the episode.

        Each value must be a real scalar: a Python number, a numpy scalar, or a numpy or JAX
        array of size 1 (of any shape, e.g. ``[]`` or ``[1]``). It is checked here, from its
        shape and dtype only, so a device array is neither waited for nor copied: an updater's
        :class:`~a2c_jax.utils.Metrics` (one stacked device array) is recorded as it is, and
        fetched with the rest of the episode's metrics in one transfer at the episode's end.
        With ``tensorboard_write_all=True`` the values are fetched and written at once instead.

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
                check_keys(keys)
                self._checked_keys = keys
            try:  # a device array's shape and dtype are static: reading them does not sync
                ok = values.shape == (len(keys),) and values.dtype.kind in REAL_KINDS
            except (AttributeError, TypeError):
                ok = False
            if not ok:
                shape, kind = np.shape(values), kind_of(values)
                if shape != (len(keys),) or kind is None or kind not in REAL_KINDS:
                    raise ValueError(f"a Metrics of {len(keys)} keys needs {len(keys)} real "
                                     f"values, got {shape} values of kind {kind!r}")
        elif isinstance(metrics, Mapping):
            keys, values = tuple(metrics), list(metrics.values())
            check_keys(keys)
            for k, v in zip(keys, values):
                check_scalar(k, v)
        else:
            raise TypeError(f"metrics must be a mapping of scalars, got {type(metrics).__name__}")
        self._pending.append((keys, values))
        if self.tensorboard is not None and self.tensorboard_write_all:
            for k, v in zip(keys, _flatten(jax.device_get(values))):
                self.tensorboard.add_scalar(k, v, self.T)

    def get_metrics(self) -> dict[str, float]:
        """The averages of the metrics recorded since the last episode ended (fetches them).

        The finished episode's averages are in :attr:`last_metrics`.
        """
        return _average(self._pending)

    def _end_episode(self) -> None:
        self._ep_stop = time.perf_counter()
        self._n_avg_G = min(self.smoothing, self._n_avg_G + 1)
        self.avg_G += (self.G - self.avg_G) / self._n_avg_G
        self.last_metrics = _average(self._pending)
        self._pending = []
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info(self._log_line())
        if self.tensorboard is not None:
            tb, T = self.tensorboard, self.T
            for tag, value in (("episode/episode", self.ep), ("episode/avg_reward", self.avg_r),
                               ("episode/return", self.G), ("episode/steps", self.t),
                               ("episode/avg_step_duration_ms", self.dt_ms),
                               ("episode/avg_return", self.avg_G)):
                tb.add_scalar(tag, float(value), T)
            if not self.tensorboard_write_all:
                for k, v in self.last_metrics.items():
                    tb.add_scalar(k, v, T)

    def _log_line(self) -> str:
        """coax's episode line: tab-separated counters, then the selected metrics."""
        parts = [f"ep: {self.ep:d}", f"T: {self.T:,d}", f"G: {self.G:.3g}",
                 f"avg_r: {self.avg_r:.3g}", f"avg_G: {self.avg_G:.3g}", f"t: {self.t:d}",
                 f"dt: {self.dt_ms:.3f}ms"]
        parts += [f"{k}: {v:.3g}" for k, v in self.last_metrics.items()
                  if self.log_all_metrics or k.endswith(_LOGGED_SUFFIXES)
                  or k.startswith(_LOGGED_PREFIXES)]
        return ",\t".join(parts)


def _check_single_env(env: Any) -> None:
    """Refuses a vector env (or a non-env) with one clear TypeError, before gymnasium asserts."""
    if isinstance(env, gymnasium.vector.VectorEnv):
        n = getattr(env, "num_envs", "?")
        raise TypeError(
            f"TrainMonitor wraps a single gymnasium.Env, got the vector env {type(env).__name__} "
            f"({n} envs). For vector envs use a2c_jax.training.Trainer (`a2c-jax train "
            f"--num-envs K`), or put a TrainMonitor on each sub-env before vectorising: "
            f"gymnasium.vector.SyncVectorEnv([lambda: TrainMonitor(gymnasium.make(...)), ...])")
    if not isinstance(env, gymnasium.Env):
        raise TypeError(f"TrainMonitor wraps a gymnasium.Env, got {type(env).__name__}")


def _positive_int(p: Any, what: str) -> int:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a positive int, got {type(p).__name__} {p!r}")
    if not (p > 0 and float(p).is_integer()):
        raise ValueError(f"{what} must be a positive integer, got {p!r}")
    return int(p)


def _flatten(values: Any) -> list[float]:
    """Host values of one record: a Metrics' stacked array, or a dict's size-1 values."""
    if isinstance(values, np.ndarray):
        return values.ravel().tolist()
    return [float(np.ravel(v)[0]) for v in values]


def _average(pending: list[tuple[tuple[str, ...], Any]]) -> dict[str, float]:
    """Per-key means of recorded metrics, keys in first-recorded order; one device transfer."""
    if not pending:
        return {}
    values = jax.device_get([v for _, v in pending])
    sums: dict[str, list[float]] = {}
    for (keys, _), vs in zip(pending, values):
        for k, v in zip(keys, _flatten(vs), strict=True):
            sums.setdefault(k, []).append(v)
    return {k: float(np.mean(v)) for k, v in sums.items()}
