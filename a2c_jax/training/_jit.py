"""The fully-jitted engine: rollout, advantages and updates of many updates in one compiled call.

``a2c-jax train --engine jit`` runs this on gymnax's JAX-native versions of the classic-control
envs. The pieces are the library's own: the policy samples with
:meth:`Policy.sample_fn <a2c_jax.Policy.sample_fn>`, the critic evaluates with
:meth:`V.values <a2c_jax.V.values>`, advantages come from
:func:`~a2c_jax.reward_tracing.compute_gae` (truncation-aware) and the parameters move by the fused
pure steps of :class:`~a2c_jax.td_learning.SimpleTD` and the policy objective
(:meth:`~a2c_jax._core._updater.BaseUpdater.step_with_state`), or with ``shared_backbone`` the one
step of :class:`~a2c_jax.ActorCritic` over both, exactly as in the loop
:class:`~a2c_jax.training.Trainer`. Only the envs and the control flow differ:

- ``vmap`` over the ``num_envs`` envs, ``lax.scan`` over the ``n_steps`` steps of a rollout and
  over the updates of a *chunk*; the host sees the metrics once per chunk.
- ``vmap`` over ``num_seeds`` independent runs (seeds ``seed, seed + 1, ...``): one program.
  With a :class:`~a2c_jax.training._sweep.Sweep` the runs are every configuration of its grid
  times ``num_seeds`` seeds, each with its own traced hyperparameters (``vmap``-ed with the state).
- Data parallelism: with more than one device the envs are sharded over a one-axis
  :class:`jax.sharding.Mesh` (axis ``"envs"``) and everything else is replicated. The losses are
  means over the global batch, so the compiler's partitioning sums the per-device gradients:
  every device applies the same averaged gradient, and the result equals one device running the
  whole batch, up to float reassociation. The rollout is kept env-major (``[envs, steps]``), so
  each device's share stays one contiguous block, and PPO's minibatches are stratified by env
  (:func:`minibatches`): every device works on its own envs, and the only traffic per update is
  one all-reduce of the gradients (plus a few scalars for the episode counters). When the
  minibatches cannot be stratified, they are drawn from the whole rollout: still correct, but the
  rollout is gathered onto every device.

Episode statistics are kept on the device, per run: the last 100 returns in a ring (the same
"mean of the last 100 episodes" as the loop trainer), the number of finished episodes, and the
env step at which that mean first reached the env's reward threshold.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, cast

import chex
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

from .._core import Policy
from .._core._base import raw_key
from ..utils._checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..utils._trees import tree_from_state_dict, tree_to_state_dict
from ._driver import plot_learning_curve, run_summary
from ._normalization import Normalizer, NormState, stats_to_json
from ._presets import TrainConfig
from ._sweep import Sweep, SweepError, build_traced_learner
from ._trainer import _KEY_STREAM, _tuples, build_learner, normalizing_policy
from ._update import LearnerState, Rollout, minibatches

__all__ = ["JAX_NATIVE_ENVS", "EngineError", "EngineState", "JitTrainer", "check_jax_native",
           "make_jax_env", "means_after_each_episode", "minibatches", "record_episodes",
           "ring_mean"]

#: gymnasium ids with a JAX-native twin in gymnax (same observations, actions and dynamics)
JAX_NATIVE_ENVS: tuple[str, ...] = ("CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCar-v0",
                                    "MountainCarContinuous-v0")

_RING = 100          # episodes in the running mean, as in the loop trainer


class EngineError(ValueError):
    """The jitted engine cannot run this configuration (the message says why)."""


def check_jax_native(env_id: str) -> None:
    """Raises :class:`EngineError` unless ``env_id`` has a JAX-native version."""
    if env_id not in JAX_NATIVE_ENVS:
        raise EngineError(f"--engine jit needs a JAX-native env; {env_id} has none (these do: "
                          f"{', '.join(JAX_NATIVE_ENVS)}); use --engine loop")


def make_jax_env(env_id: str) -> tuple[Any, Any]:
    """gymnax's ``(env, env_params)`` for a gymnasium id in :data:`JAX_NATIVE_ENVS`."""
    check_jax_native(env_id)
    try:
        import gymnax
    except ImportError:  # pragma: no cover - gymnax is a dependency of the [jit] extra
        raise EngineError("--engine jit needs gymnax: pip install 'a2c_jax[jit]'") from None
    return gymnax.make(env_id)


def record_episodes(ring: chex.Array, episodes: chex.Array, returns: chex.Array,
                    done: chex.Array) -> tuple[chex.Array, chex.Array]:
    """Pure: writes the returns of the episodes that ended (``done``) into the ring of the last
    ``len(ring)`` returns; ``(ring, episodes)`` after.

    Episode number ``i`` lives in slot ``i % len(ring)``; episodes ending in the same step are
    numbered in env order (as the loop trainer counts them). When more than ``len(ring)`` end at
    once only the last ``len(ring)`` are written, so no slot is written twice.
    """
    size = ring.shape[0]
    n_done = jnp.sum(done, dtype=jnp.int32)
    number = episodes + jnp.cumsum(done, dtype=jnp.int32) - 1
    keep = done & (number >= episodes + n_done - size)
    ring = ring.at[jnp.where(keep, number % size, size)].set(returns, mode="drop")
    return ring, episodes + n_done


def means_after_each_episode(ring: chex.Array, episodes: chex.Array, returns: chex.Array,
                             done: chex.Array) -> tuple[chex.Array, chex.Array]:
    """Pure: for each env whose episode ended (``done``), the number of finished episodes and the
    mean of the last ``len(ring)`` returns right after that episode is counted, in env order (the
    loop trainer's check after every episode). Entries where ``done`` is False are meaningless.
    Exact while at most ``len(ring)`` episodes end in one step.
    """
    size = ring.shape[0]
    number = episodes + jnp.cumsum(done, dtype=jnp.int32) - 1          # this episode's number
    evicted = jnp.where(number >= size, ring[number % size], 0.0)       # the return it replaces
    total = jnp.sum(ring) + jnp.cumsum(jnp.where(done, returns - evicted, 0.0))
    count = number + 1
    return count, total / jnp.minimum(count, size)


def ring_mean(ring: chex.Array, episodes: chex.Array) -> chex.Array:
    """The mean of the last ``min(episodes, len(ring))`` returns (0 before the first episode);
    unwritten slots hold zeros."""
    return jnp.sum(ring) / jnp.maximum(jnp.minimum(episodes, ring.shape[0]), 1)


class EngineState(NamedTuple):
    """Everything one run carries from update to update (a pytree; leading axis: runs).

    With ``shared_backbone`` (:class:`~a2c_jax.ActorCritic`), ``pi_opt`` holds the one optimizer
    state over both networks' parameters and ``v_opt`` is empty (``()``).
    """

    pi_params: Any
    pi_state: Any
    pi_opt: Any
    v_params: Any
    v_state: Any
    v_opt: Any
    env_state: Any        # gymnax state, [num_envs, ...]
    obs: Any              # [num_envs, *obs_shape]
    key: Any
    ep_return: Any        # [num_envs] return so far of the running episodes
    ring: Any             # [100] the last 100 finished returns (slot = episode number % 100)
    episodes: Any         # [] finished episodes
    vector_steps: Any     # [] vector steps taken (env steps / num_envs: int32 lasts 2**31 of them)
    solved_at: Any        # [] vector step at which the mean of the last 100 reached the threshold, -1
    # normalisation (training/_normalization.py; each () when the config does not normalise it)
    obs_stats: Any = ()   # RunningStats of the observations, [*obs_shape]
    ret_stats: Any = ()   # RunningStats of the discounted returns, []
    ret_acc: Any = ()     # [num_envs] each env's running discounted return


#: the EngineState fields with a per-env axis: sharded over the devices
_ENV_FIELDS = ("env_state", "obs", "ep_return", "ret_acc")


class JitTrainer:
    """Trains ``num_seeds`` independent runs of A2C or PPO entirely under ``jit``.

    Args:
        env_id: a gymnasium id from :data:`JAX_NATIVE_ENVS`.
        config: a :class:`TrainConfig` (the same presets as the loop trainer).
        seed: the first run's seed; run ``k`` uses ``seed + k`` (its initial parameters are those
            of ``Policy``/``V`` built with ``random_seed=seed + k``).
        num_seeds: independent runs in one compiled program (``vmap``).
        devices: the devices to shard the envs over (default: all of ``jax.devices()``);
            ``num_envs`` must be a multiple of their number.
        env_params: gymnax's env parameters (default: the env's own, which match gymnasium's).
        func_pi, func_v: your own Haiku functions ``func(S, is_training)``, as for
            :class:`~a2c_jax.Policy` and :class:`~a2c_jax.V` (default: the config's MLPs). When
            they share modules (a ``torso``), the shared parameters are averaged with
            :func:`~a2c_jax.utils.sync_shared_params` after every update step, unless the config
            has ``shared_backbone`` (then :class:`~a2c_jax.ActorCritic` updates them as one).
        sweep: a grid of traced hyperparameters (:class:`~a2c_jax.training._sweep.Sweep`): the
            program trains ``len(sweep) * num_seeds`` runs, run ``r`` with configuration
            ``r // num_seeds`` of the grid (its values replace the config's) and seed
            ``seed + r % num_seeds``. The swept hyperparameters are traced, so each run has its
            own; the others stay constants of the program.

    ``num_runs`` is the number of runs in the program (``num_seeds`` without a sweep); the
    per-run arrays (state, :meth:`curves`) have that leading axis.

    Use :meth:`run` (it compiles on first use; :meth:`compile` does it ahead); results are in
    :meth:`summary` and :meth:`curves`, run ``k``'s trained policy is :meth:`policy(k) <policy>`.
    """

    engine = "jit"

    def __init__(self, env_id: str, config: TrainConfig, seed: int = 0, num_seeds: int = 1,
                 devices: list[jax.Device] | None = None, env_params: Any = None, *,
                 func_pi: Callable | None = None, func_v: Callable | None = None,
                 sweep: Sweep | None = None) -> None:
        if num_seeds < 1:
            raise EngineError(f"num_seeds must be >= 1, got {num_seeds}")
        if sweep is not None:
            sweep.check(config)
        self.env_id, self.seed, self.num_seeds = env_id, seed, num_seeds
        #: the grid of a sweep (``None``: every run has the config's hyperparameters)
        self.sweep = sweep
        #: runs in the program: ``len(sweep) * num_seeds``, or ``num_seeds``
        self.num_runs = num_seeds * (len(sweep) if sweep is not None else 1)
        self._config = config
        self.env, default_params = make_jax_env(env_id)
        self._env_params = default_params if env_params is None else env_params
        probe = gymnasium.make(env_id)
        self.reward_threshold = probe.spec.reward_threshold if probe.spec else None
        try:
            if sweep is None:
                self.pi, self.v, self.td, self.pg, self.ac, self.learner = build_learner(
                    probe, config, seed, func_pi, func_v)
            else:
                self.pi, self.v, self.td, self.pg, self.ac, self.learner = build_traced_learner(
                    probe, config, seed, sweep.keys, func_pi, func_v)
        finally:
            probe.close()
        #: whether shared Haiku modules of pi and v (a torso) are averaged after every update step
        #: (True when they share modules and ActorCritic does not update them as one)
        self.shares_modules = self.learner.sync_shared
        self._check_spaces()
        #: the runs' observation and reward normalisation (``normalize_obs``/``normalize_reward``)
        self.normalizer = Normalizer(config, self.pi.observation_space)
        self._func_pi = func_pi
        self.devices = list(devices) if devices is not None else jax.devices()
        if config.num_envs % len(self.devices):
            raise EngineError(f"num_envs ({config.num_envs}) must be a multiple of the number of "
                              f"devices ({len(self.devices)}) to shard the envs over them")
        self.steps_per_update = config.n_steps * config.num_envs
        self.env_steps = 0       # per run
        self.updates = 0         # per run
        self.compile_s: float | None = None
        self.train_seconds = 0.0
        self.history: dict[str, list[np.ndarray]] = {}
        self._compiled: dict[int, jax.stages.Compiled] = {}
        self._shardings = self._make_shardings()
        self.state = self._init_state()

    @property
    def config(self) -> TrainConfig:
        """The run's configuration (read-only: the compiled program is built from it); with a
        sweep, the values of the swept keys are each run's (:meth:`run_config`)."""
        return self._config

    def run_seed(self, run: int) -> int:
        """The seed of run ``run``: ``seed + run % num_seeds``."""
        return self.seed + run % self.num_seeds

    def run_config(self, run: int) -> dict[str, float]:
        """The swept keys' values of run ``run`` (``{}`` without a sweep)."""
        return {} if self.sweep is None else self.sweep.configs[run // self.num_seeds]

    @property
    def env_params(self) -> Any:
        """gymnax's env parameters. Setting them discards the compiled programs, so the next
        :meth:`run` compiles with the new ones."""
        return self._env_params

    @env_params.setter
    def env_params(self, value: Any) -> None:
        self._env_params = value
        self._compiled = {}

    # ---- set-up -------------------------------------------------------------------------------

    def _check_spaces(self) -> None:
        obs_shape = self.env.observation_space(self.env_params).shape
        expected = self.pi.observation_space.shape  # None never: the trainer's spaces have one
        if expected is None or tuple(obs_shape) != tuple(expected):
            raise EngineError(f"gymnax's {self.env_id} observations have shape {obs_shape}, "
                              f"gymnasium's {expected}")

    def _init_one(self, seed: tuple[chex.PRNGKey, chex.PRNGKey]) -> EngineState:
        """The initial state of one run (pure; vmapped over the runs' seeds)."""
        init_key, key = seed
        pi, v, c = self.pi, self.v, self.config
        # Policy and V(random_seed=s) both initialise from raw_key(s, 0): identical parameters
        pi_params, pi_state = pi.init(init_key)
        v_params, v_state = v.init(init_key)
        key, reset_key = jax.random.split(key)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(reset_key, c.num_envs), self.env_params)
        learner = self.learner.init(pi_params, pi_state, v_params, v_state)
        pi_opt, v_opt = learner.pi_opt, learner.v_opt
        norm = self.normalizer.init(c.num_envs)
        return EngineState(
            pi_params=pi_params, pi_state=pi_state, pi_opt=pi_opt,
            v_params=v_params, v_state=v_state, v_opt=v_opt,
            env_state=env_state, obs=obs, key=key,
            ep_return=jnp.zeros(c.num_envs, jnp.float32), ring=jnp.zeros(_RING, jnp.float32),
            episodes=jnp.zeros((), jnp.int32), vector_steps=jnp.zeros((), jnp.int32),
            solved_at=jnp.full((), -1, jnp.int32),
            obs_stats=norm.obs, ret_stats=norm.ret, ret_acc=norm.ret_acc)

    def _init_state(self) -> EngineState:
        seeds = [self.run_seed(r) for r in range(self.num_runs)]
        init_keys = np.stack([np.asarray(raw_key(s, 0)) for s in seeds])
        keys = np.stack([np.asarray(raw_key(s, _KEY_STREAM)) for s in seeds])
        # JAX's default compiler options, as BaseFunc's constructor: the same float rounding, so
        # run k starts bitwise from Policy/V(random_seed=seed + k)'s parameters
        init = jax.jit(jax.vmap(self._init_one), out_shardings=self._shardings)
        return init((jnp.asarray(init_keys), jnp.asarray(keys)))

    def _make_shardings(self) -> EngineState:
        """Per-leaf shardings of the state: env leaves split over the mesh, the rest replicated."""
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        mesh = Mesh(np.asarray(self.devices), ("envs",))
        self.mesh = mesh
        replicated = NamedSharding(mesh, PartitionSpec())
        by_env = NamedSharding(mesh, PartitionSpec(None, "envs"))  # [runs, envs, ...]
        shapes = jax.eval_shape(jax.vmap(self._init_one), (
            jax.ShapeDtypeStruct((self.num_runs, 2), jnp.uint32),
            jax.ShapeDtypeStruct((self.num_runs, 2), jnp.uint32)))
        fields = {name: jax.tree.map(lambda _: by_env if name in _ENV_FIELDS else replicated,
                                     getattr(shapes, name))
                  for name in EngineState._fields}
        self._replicated = replicated
        return EngineState(**fields)

    # ---- the pure core ------------------------------------------------------------------------

    def _env_step(self, st: EngineState, _: None) -> tuple[EngineState, tuple[chex.Array, ...]]:
        """One vector step of every env: act, step, count; returns the transition."""
        c = self.config
        key, k_pi, k_env = jax.random.split(st.key, 3)
        # normalised with the statistics of the rollout's start (the raw ones go in the rollout)
        S = self.normalizer.observations(st.obs_stats, st.obs)
        A, logP = self.pi.sample_fn(st.pi_params, st.pi_state, k_pi, S)
        obs, env_state, r, term, trunc, info = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, c.num_envs), st.env_state, A, self.env_params)
        r = jnp.reshape(r, (c.num_envs,)).astype(jnp.float32)
        term = jnp.asarray(term, bool)
        trunc = jnp.asarray(trunc, bool) & ~term
        done = term | trunc
        ep_return = st.ep_return + r
        vector_steps = st.vector_steps + 1
        solved_at = st.solved_at
        if self.reward_threshold is not None:
            # checked after each episode, in env order, as the loop trainer does
            count, means = means_after_each_episode(st.ring, st.episodes, ep_return, done)
            reached = jnp.any(done & (count >= _RING) & (means >= self.reward_threshold))
            solved_at = jnp.where((solved_at < 0) & reached, vector_steps, solved_at)
        ring, episodes = record_episodes(st.ring, st.episodes, ep_return, done)
        transition = (st.obs, A, logP, r, term, trunc, info["final_observation"])
        st = st._replace(env_state=env_state, obs=obs, key=key, ep_return=jnp.where(done, 0.0, ep_return),
                         ring=ring, episodes=episodes, vector_steps=vector_steps, solved_at=solved_at)
        return st, transition

    def _update(self, hparams: dict[str, Any], st: EngineState,
                _: None) -> tuple[EngineState, dict[str, chex.Array]]:
        """One rollout of ``n_steps`` and its updates (:meth:`Learner.update
        <a2c_jax.training._update.Learner.update>`): the body of the chunk's scan."""
        st, transitions = jax.lax.scan(self._env_step, st, None, length=self.config.n_steps)
        S, A, logP, R, terminated, truncated, final_S = transitions
        key, k_upd = jax.random.split(st.key)
        learner = LearnerState(st.pi_params, st.pi_state, st.pi_opt, st.v_params, st.v_state,
                               st.v_opt)
        rollout = Rollout(S=S, A=A, logP=logP, R=R, terminated=terminated, truncated=truncated,
                          final_S=final_S, S_next=st.obs)
        norm, rollout = self.normalizer.rollout(NormState(st.obs_stats, st.ret_stats, st.ret_acc),
                                                rollout, hparams.get("config", {}).get("gamma"))
        learner, metrics = self.learner.update(learner, rollout, hparams, k_upd)
        st = st._replace(key=key, obs_stats=norm.obs, ret_stats=norm.ret, ret_acc=norm.ret_acc,
                         **learner._asdict())
        metrics["mean100"] = ring_mean(st.ring, st.episodes)
        metrics["episodes"] = st.episodes
        return st, metrics

    def _chunk(self, st: EngineState, hparams: dict[str, Any],
               length: int) -> tuple[EngineState, dict[str, chex.Array]]:
        def one_run(st: EngineState, hparams: dict[str, Any],
                    ) -> tuple[EngineState, dict[str, chex.Array]]:
            return jax.lax.scan(functools.partial(self._update, hparams), st, None, length=length)

        if self.sweep is not None:  # each run its own hyperparameters: [runs] leaves
            return jax.vmap(one_run)(st, hparams)
        if self.num_runs == 1:  # no vmap over a single run: XLA:CPU runs the plain scan faster
            out = one_run(jax.tree.map(lambda x: x[0], st), hparams)
            return jax.tree.map(lambda x: x[None], out)
        return jax.vmap(one_run, in_axes=(0, None))(st, hparams)

    # ---- the host side ------------------------------------------------------------------------

    def _hparams(self) -> dict[str, Any]:
        """The updaters' hyperparameters now, as device arrays (traced: changing one does not
        recompile). With a sweep every leaf has a leading run axis ``[num_runs]``, and the swept
        keys (``hparams["config"]``) hold each run's values."""
        hparams = self.learner.hyperparams()
        if self.sweep is None:
            return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), hparams)
        runs = jax.tree.map(lambda x: np.full(self.num_runs, x, np.float32), hparams)
        runs["config"] = self.sweep.run_values(self.num_seeds)
        return jax.tree.map(jnp.asarray, runs)

    def _compiled_chunk(self, length: int) -> jax.stages.Compiled:
        if length not in self._compiled:
            fn = jax.jit(self._chunk, static_argnums=2, donate_argnums=0,
                         in_shardings=(self._shardings, self._replicated),
                         out_shardings=(self._shardings, self._replicated))
            self._compiled[length] = fn.lower(self.state, self._hparams(), length).compile()
        return self._compiled[length]

    def plan(self, total_steps: int, chunks: int = 20) -> tuple[int, int]:
        """``(updates_per_chunk, number_of_chunks)`` covering ``total_steps`` env steps per run.

        Whole updates of ``n_steps * num_envs`` steps, in equal chunks (one compilation), so a
        run may take up to one chunk more than asked.
        """
        updates = max(1, math.ceil(total_steps / self.steps_per_update))
        per_chunk = math.ceil(updates / max(1, min(chunks, updates)))
        return per_chunk, math.ceil(updates / per_chunk)

    def compile(self, updates_per_chunk: int) -> float:
        """Compiles the chunk of ``updates_per_chunk`` updates; returns the seconds it took."""
        t0 = time.perf_counter()
        self._compiled_chunk(updates_per_chunk)
        seconds = time.perf_counter() - t0
        self.compile_s = (self.compile_s or 0.0) + seconds
        return seconds

    def run(self, total_steps: int, progress: bool = True, chunks: int = 20,
            on_report: Callable[[JitTrainer, dict[str, np.ndarray]], None] | None = None,
            ) -> None:
        """Trains every run until it has taken at least ``total_steps`` env steps.

        Args:
            total_steps: env steps per run, counted from the start (a resumed run continues).
            progress: a progress bar, and a line while the program compiles.
            chunks: how many compiled calls the remaining steps are split into (equal ones:
                one compilation; the run may overshoot by up to one chunk).
            on_report: ``on_report(trainer, metrics)`` after each chunk, ``metrics`` a dict of
                numpy arrays ``[num_runs, updates in the chunk]`` (as the loop engine reports).
        """
        from tqdm import tqdm

        per_chunk, n_chunks = self.plan(total_steps - self.env_steps, chunks)
        if total_steps <= self.env_steps:
            return
        vector_steps = (self.env_steps + n_chunks * per_chunk * self.steps_per_update) \
            // self.config.num_envs
        if vector_steps >= 2**31:
            raise EngineError(f"{total_steps} env steps per run is {vector_steps} vector steps; "
                              "the device-side counters hold at most 2**31 - 1 (use more envs)")
        if per_chunk not in self._compiled:
            if progress:
                print(f"compiling {per_chunk} updates x {self.num_runs} run(s) into one program...",
                      end=" ", file=sys.stderr, flush=True)
            seconds = self.compile(per_chunk)
            if progress:
                print(f"{seconds:.1f} s", file=sys.stderr, flush=True)
        fn = self._compiled[per_chunk]
        bar = tqdm(total=n_chunks * per_chunk * self.steps_per_update * self.num_runs,
                   unit="step", unit_scale=True, disable=not progress, mininterval=0.5,
                   desc=f"{self.env_id} {self.config.algo} jit x{self.num_runs}")
        try:
            for _ in range(n_chunks):
                t0 = time.perf_counter()
                # the old state's buffers are donated; the hyperparameters are read now (traced)
                self.state, metrics = fn(self.state, self._hparams())
                try:
                    metrics = jax.tree.map(_fetch, metrics)   # waits for the chunk: honest timing
                except KeyboardInterrupt:  # the chunk ran: count it, so a saved state is whole
                    self._count_chunk(jax.tree.map(_fetch, metrics), per_chunk, t0)
                    raise
                self._count_chunk(metrics, per_chunk, t0)
                bar.update(per_chunk * self.steps_per_update * self.num_runs)
                bar.set_postfix(mean100=f"{np.mean(metrics['mean100'][:, -1]):.1f}", refresh=False)
                if on_report is not None:
                    on_report(self, metrics)
        finally:
            bar.close()

    def _count_chunk(self, metrics: dict[str, np.ndarray], per_chunk: int, t0: float) -> None:
        self.train_seconds += time.perf_counter() - t0
        self.updates += per_chunk
        self.env_steps += per_chunk * self.steps_per_update
        for k, val in metrics.items():
            self.history.setdefault(k, []).append(val)

    # ---- results ------------------------------------------------------------------------------

    def curves(self) -> dict[str, np.ndarray]:
        """Per-update metrics, each ``[num_runs, updates]``."""
        return {k: np.concatenate(v, axis=1) for k, v in self.history.items()}

    def params(self, run: int = 0) -> tuple[Any, Any]:
        """``(pi_params, v_params)`` of run ``run``, on the host."""
        return self._take(run, (self.state.pi_params, self.state.v_params))

    def _take(self, run: int, tree: Any) -> Any:
        if not 0 <= run < self.num_runs:
            raise IndexError(f"run {run} out of range: {self.num_runs} run(s)")
        return jax.tree.map(lambda x: np.asarray(_fetch(x))[run], tree)

    def policy(self, run: int = 0) -> Policy:
        """A new :class:`~a2c_jax.Policy` holding run ``run``'s trained parameters and state.

        With ``normalize_obs`` it takes raw observations: run ``run``'s observation statistics
        as they are now are applied first, frozen (its ``observation_preprocessor``), as in
        evaluation (``a2c-jax eval``) and export."""
        params, state = self._take(run, (self.state.pi_params, self.state.pi_state))
        if self.normalizer.obs_on:
            return normalizing_policy(self.pi, self.normalizer,
                                      self._take(run, self.state.obs_stats), self.config,
                                      self.run_seed(run), self._func_pi, (params, state))
        # BaseFunc.copy is annotated with the base class; it returns the same class, a Policy
        pi = cast(Policy, self.pi.copy())
        pi.params, pi.function_state = jax.device_put(params), jax.device_put(state)
        return pi

    def summary(self) -> dict[str, Any]:
        """The runs' figures, with the same keys and meanings as the loop engine's."""
        solved_at = [None if s < 0 else int(s) * self.config.num_envs
                     for s in np.asarray(_fetch(self.state.solved_at))]
        curves = self.curves()
        if curves:  # None for a run that has finished no episode yet
            episodes = [int(e) for e in curves["episodes"][:, -1]]
            last = [float(m) if e > 0 else None for m, e in zip(curves["mean100"][:, -1], episodes)]
        else:
            episodes, last = [0] * self.num_runs, [None] * self.num_runs
        return run_summary(self, solved_at=solved_at, final_mean=last, episodes=episodes,
                           devices=[str(d) for d in self.devices])

    # ---- checkpoints --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Every run's full state as plain data, what :meth:`save` writes: JSON-able values and
        numpy arrays (the engine state and gymnax's env parameters as nested dicts,
        :func:`~a2c_jax.utils._trees.tree_to_state_dict`)."""
        return {
            "engine": "jit", "env_id": self.env_id, "seed": self.seed, "num_seeds": self.num_seeds,
            "config": dataclasses.asdict(self.config),
            "state": tree_to_state_dict(jax.tree.map(_gather, self.state)),
            "env_params": tree_to_state_dict(jax.device_get(self.env_params)),
            "env_steps": self.env_steps, "updates": self.updates, "compile_s": self.compile_s,
            "train_seconds": self.train_seconds,
            "history": {k: np.concatenate(v, axis=1) for k, v in self.history.items()},
            # a sweep's grid (absent without one): the rebuilt program needs it, and --resume
            # compares it with the one given
            **({"sweep": self.sweep.to_data()} if self.sweep is not None else {}),
        }

    def save(self, path: str | Path) -> Path:
        """Writes every run's full state to the checkpoint directory ``path``, atomically and
        without pickle (:func:`a2c_jax.utils.save_checkpoint`: arrays by orbax, the rest as
        JSON)."""
        return save_checkpoint(path, self.state_dict())

    @classmethod
    def load(cls, path: str | Path, devices: list[jax.Device] | None = None, *,
             func_pi: Callable | None = None, func_v: Callable | None = None) -> JitTrainer:
        """Rebuilds the runs saved by :meth:`save`, ready to continue (on ``devices``).

        The saved arrays are put into the structures the rebuilt runs hold (never one named in
        the file), and gymnax's env parameters into the env's default ones. Runs trained with
        your own ``func_pi``/``func_v`` need the same functions again.

        Raises:
            CheckpointError: the checkpoint is missing, damaged, foreign, of another format (old
                ``.pkl`` pickles are refused, unread), of the loop engine, or does not fit the
                rebuilt runs; the message names the problem.
        """
        st = load_checkpoint(path)
        if st.get("engine") != "jit":
            raise CheckpointError(f"{path} was written by the loop engine, not --engine jit")
        sweep = _saved_sweep(st, path)
        _check_jit_entries(st, path, len(sweep) if sweep is not None else 1)
        _, default_params = make_jax_env(st["env_id"])
        try:
            env_params = tree_from_state_dict(default_params, st["env_params"],
                                              f"{path}: env_params")
        except (TypeError, ValueError) as err:
            raise CheckpointError(str(err)) from None
        try:
            trainer = cls(st["env_id"], TrainConfig(**_tuples(st["config"])), st["seed"],
                          st["num_seeds"], devices=devices, env_params=env_params,
                          func_pi=func_pi, func_v=func_v, sweep=sweep)
        except EngineError:
            raise
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{path} has an invalid config or seed: {err}") from None
        # numpy leaves in the rebuilt state's structure, then placed with its shardings
        like = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), trainer.state)
        try:
            state = tree_from_state_dict(like, st["state"], f"{path}: the saved state")
        except (TypeError, ValueError) as err:
            raise CheckpointError(str(err)) from None
        trainer.state = jax.device_put(state, trainer._shardings)
        trainer.env_steps, trainer.updates = st["env_steps"], st["updates"]
        trainer.compile_s, trainer.train_seconds = st["compile_s"], st["train_seconds"]
        trainer.history = {k: [v] for k, v in st["history"].items()}
        return trainer

    def export(self, path: str | Path, run: int = 0) -> Path:
        """Writes run ``run``'s trained policy alone to the directory ``path``, in the
        checkpoints' safe format: parameters, function state, the network's description, the
        spaces and the env id; with ``normalize_obs``, the run's observation statistics (the
        loaded policy applies them). :func:`a2c_jax.load_policy` reads it without this run's
        objects."""
        from .._export import export_policy

        params, state = self._take(run, (self.state.pi_params, self.state.pi_state))
        pi = cast(Policy, self.pi.copy())   # the network as trained, on normalised observations
        pi.params, pi.function_state = jax.device_put(params), jax.device_put(state)
        stats = (stats_to_json(self._take(run, self.state.obs_stats), self.normalizer.clip_obs)
                 if self.normalizer.obs_on else None)
        return export_policy(path, pi, env_id=self.env_id, engine=self.engine,
                             config=self.config.replace(**self.run_config(run)),
                             seed=self.run_seed(run), env_steps=self.env_steps,
                             obs_normalization=stats)

    def plot(self, path: str | Path) -> None:
        """The learning curves as a PNG (:func:`~a2c_jax.training.plot_learning_curve`)."""
        plot_learning_curve(self, Path(path))


def _saved_sweep(st: Mapping[str, Any], path: str | Path) -> Sweep | None:
    """The grid of a sweep's checkpoint (``None`` for other runs), or :class:`CheckpointError`."""
    data = st.get("sweep")
    if data is None:
        return None
    try:
        return Sweep.from_data(data)
    except SweepError as err:
        raise CheckpointError(f"{path} is damaged: its 'sweep' entry is not a grid ({err})") from None


def _check_jit_entries(st: Mapping[str, Any], path: str | Path, configs: int = 1) -> None:
    """Raises :class:`CheckpointError` naming the first entry of a jit checkpoint that is missing
    or not of its kind (``configs``: the configurations of a sweep's grid)."""
    def count(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and x >= 0

    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    checks: dict[str, tuple[Callable[[Any], bool], str]] = {
        "env_id": (lambda x: x in JAX_NATIVE_ENVS, f"one of {', '.join(JAX_NATIVE_ENVS)}"),
        "seed": (lambda x: count(x) and x <= 2**32 - 1, "a seed (0 .. 2**32 - 1)"),
        "num_seeds": (lambda x: count(x) and x >= 1, "an int >= 1"),
        "config": (lambda x: isinstance(x, dict), "a dict"),
        "state": (lambda x: isinstance(x, dict), "a dict"),
        "env_params": (lambda _: True, ""),
        "env_steps": (count, "an int >= 0"), "updates": (count, "an int >= 0"),
        "compile_s": (lambda x: x is None or number(x), "a number or null"),
        "train_seconds": (number, "a number"),
        "history": (lambda x: isinstance(x, dict) and all(
            isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[0] == st["num_seeds"] * configs
            for v in x.values()), "a dict of [runs, n] arrays"),
    }
    for name, (ok, expected) in checks.items():
        if not ok(st[name]):  # a missing entry raises CheckpointError naming it
            raise CheckpointError(f"{path} is damaged: its {name!r} entry is not {expected}")


def _gather(x: chex.Array) -> np.ndarray:
    """``x`` whole on the host: over several processes, the env leaves each holds a part of are
    all-gathered (a collective: every process calls it, as :meth:`JitTrainer.save` does)."""
    if getattr(x, "is_fully_addressable", True) or x.is_fully_replicated:
        return _fetch(x)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def _fetch(x: chex.Array) -> np.ndarray:
    """A replicated array as numpy, also when other processes hold copies (multi-host)."""
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(x)
    return np.asarray(x.addressable_shards[0].data)
