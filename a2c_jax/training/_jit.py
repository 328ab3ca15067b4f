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
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

from .._core import Policy, V
from .._core._base import RUN_ONCE, raw_key
from ..reward_tracing import TransitionBatch, compute_gae
from ..utils._checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..utils._sync import _shared_groups, sync_shared_params
from ..utils._trees import check_same_tree
from ._presets import TrainConfig
from ._trainer import _tuples, build_actor_critic, build_functions, build_updaters

#: gymnasium ids with a JAX-native twin in gymnax (same observations, actions and dynamics)
JAX_NATIVE_ENVS: tuple[str, ...] = ("CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCar-v0",
                                    "MountainCarContinuous-v0")

_RING = 100          # episodes in the running mean, as in the loop trainer
_KEY_STREAM = 7      # raw_key stream of the engine's own PRNG key (0, 1: init and sampling)


class EngineError(ValueError):
    """The jitted engine cannot run this configuration (the message says why)."""


def check_jax_native(env_id: str) -> None:
    """Raises :class:`EngineError` unless ``env_id`` has a JAX-native version."""
    if env_id not in JAX_NATIVE_ENVS:
        raise EngineError(f"--engine jit needs a JAX-native env; {env_id} has none (these do: "
                          f"{', '.join(JAX_NATIVE_ENVS)}); use --engine loop")


def make_jax_env(env_id: str):
    """gymnax's ``(env, env_params)`` for a gymnasium id in :data:`JAX_NATIVE_ENVS`."""
    check_jax_native(env_id)
    try:
        import gymnax
    except ImportError:  # pragma: no cover - gymnax is a dependency of the [jit] extra
        raise EngineError("--engine jit needs gymnax: pip install 'a2c_jax[jit]'") from None
    return gymnax.make(env_id)


def record_episodes(ring, episodes, returns, done):
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


def means_after_each_episode(ring, episodes, returns, done):
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


def ring_mean(ring, episodes):
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


#: the EngineState fields with a per-env axis: sharded over the devices
_ENV_FIELDS = ("env_state", "obs", "ep_return")


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

    Use :meth:`run` (it compiles on first use; :meth:`compile` does it ahead); results are in
    :meth:`summary` and :meth:`curves`, run ``k``'s trained policy is :meth:`policy(k) <policy>`.
    """

    def __init__(self, env_id: str, config: TrainConfig, seed: int = 0, num_seeds: int = 1,
                 devices: list | None = None, env_params: Any = None, *,
                 func_pi: Callable | None = None, func_v: Callable | None = None):
        if num_seeds < 1:
            raise EngineError(f"num_seeds must be >= 1, got {num_seeds}")
        self.env_id, self.config, self.seed, self.num_seeds = env_id, config, seed, num_seeds
        self.env, default_params = make_jax_env(env_id)
        self.env_params = default_params if env_params is None else env_params
        probe = gymnasium.make(env_id)
        self.reward_threshold = probe.spec.reward_threshold if probe.spec else None
        if func_pi is None or func_v is None:
            self.pi, self.v = build_functions(probe, config, seed)
        if func_pi is not None:
            self.pi = Policy(func_pi, probe, random_seed=seed)
        if func_v is not None:
            self.v = V(func_v, probe, random_seed=seed)
        probe.close()
        self.td, self.pg = build_updaters(self.pi, self.v, config)
        #: with ``config.shared_backbone``: the one updater of both (else None)
        self.ac = build_actor_critic(self.td, self.pg, config)
        #: whether pi and v share Haiku modules (a torso); without ActorCritic they are averaged
        #: after every update step
        self.shares_modules = bool(_shared_groups((self.pi.params, self.v.params)))
        self._check_spaces()
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
        self._compiled: dict[int, Any] = {}
        self._shardings = self._make_shardings()
        self.state = self._init_state()

    # ---- set-up -------------------------------------------------------------------------------

    def _check_spaces(self) -> None:
        obs_shape = self.env.observation_space(self.env_params).shape
        if tuple(obs_shape) != tuple(self.pi.observation_space.shape):
            raise EngineError(f"gymnax's {self.env_id} observations have shape {obs_shape}, "
                              f"gymnasium's {self.pi.observation_space.shape}")

    def _init_one(self, seed):
        """The initial state of one run (pure; vmapped over the runs' seeds)."""
        init_key, key = seed
        pi, v, c = self.pi, self.v, self.config
        # Policy and V(random_seed=s) both initialise from raw_key(s, 0): identical parameters
        example = jnp.zeros((1, *pi.observation_space.shape), jnp.float32)
        pi_params, pi_state = pi._transformed.init(init_key, pi.observation_preprocessor(example),
                                                   True)
        v_params, v_state = v._transformed.init(init_key, v.observation_preprocessor(example), True)
        key, reset_key = jax.random.split(key)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(reset_key, c.num_envs), self.env_params)
        if self.ac is None:
            pi_opt, v_opt = self.pg._optimizer.init(pi_params), self.td._optimizer.init(v_params)
        else:
            pi_opt, v_opt = self.ac._optimizer.init(self.ac.join(pi_params, v_params)), ()
        return EngineState(
            pi_params=pi_params, pi_state=pi_state, pi_opt=pi_opt,
            v_params=v_params, v_state=v_state, v_opt=v_opt,
            env_state=env_state, obs=obs, key=key,
            ep_return=jnp.zeros(c.num_envs, jnp.float32), ring=jnp.zeros(_RING, jnp.float32),
            episodes=jnp.zeros((), jnp.int32), vector_steps=jnp.zeros((), jnp.int32),
            solved_at=jnp.full((), -1, jnp.int32))

    def _init_state(self) -> EngineState:
        seeds = [self.seed + k for k in range(self.num_seeds)]
        init_keys = np.stack([np.asarray(raw_key(s, 0)) for s in seeds])
        keys = np.stack([np.asarray(raw_key(s, _KEY_STREAM)) for s in seeds])
        init = jax.jit(jax.vmap(self._init_one), out_shardings=self._shardings,
                       compiler_options=RUN_ONCE)
        return init((jnp.asarray(init_keys), jnp.asarray(keys)))

    def _make_shardings(self):
        """Per-leaf shardings of the state: env leaves split over the mesh, the rest replicated."""
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        mesh = Mesh(np.asarray(self.devices), ("envs",))
        self.mesh = mesh
        replicated = NamedSharding(mesh, PartitionSpec())
        by_env = NamedSharding(mesh, PartitionSpec(None, "envs"))  # [runs, envs, ...]
        shapes = jax.eval_shape(jax.vmap(self._init_one), (
            jax.ShapeDtypeStruct((self.num_seeds, 2), jnp.uint32),
            jax.ShapeDtypeStruct((self.num_seeds, 2), jnp.uint32)))
        fields = {name: jax.tree.map(lambda _: by_env if name in _ENV_FIELDS else replicated,
                                     getattr(shapes, name))
                  for name in EngineState._fields}
        self._replicated = replicated
        return EngineState(**fields)

    # ---- the pure core ------------------------------------------------------------------------

    def _env_step(self, st: EngineState, _):
        """One vector step of every env: act, step, count; returns the transition."""
        c = self.config
        key, k_pi, k_env = jax.random.split(st.key, 3)
        A, logP = self.pi.sample_fn(st.pi_params, st.pi_state, k_pi, st.obs)
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

    def _update(self, st: EngineState, _):
        """One rollout of ``n_steps`` and its updates: the body of the chunk's scan."""
        c = self.config
        T, E = c.n_steps, c.num_envs
        st, (S, A, logP, R, term, trunc, finals) = jax.lax.scan(self._env_step, st, None, length=T)
        key, k_v, k_upd = jax.random.split(st.key, 3)
        # env-major [E, T, ...] from here on: flattened, each device's envs stay one contiguous
        # block, so nothing has to move between devices
        env_major = functools.partial(jnp.swapaxes, axis1=0, axis2=1)
        S, finals, A, logP = env_major(S), env_major(finals), env_major(A), env_major(logP)
        # the values of the rollout, of the next observation and of the final observations of
        # truncated episodes, in one forward pass; then GAE, exactly as the loop trainer
        per_env = jnp.concatenate([S, st.obs[:, None], finals], axis=1)      # [E, 2T + 1, ...]
        values = self.v.values(st.v_params, st.v_state, k_v,
                               per_env.reshape(E * (2 * T + 1), *S.shape[2:])).reshape(E, -1)
        adv, ret = compute_gae(R * c.reward_scale, values[:, :T].T, values[:, T], term,
                               gamma=c.gamma, lam=c.gae_lambda, truncated=trunc,
                               final_values=values[:, T + 1:].T)
        batch = TransitionBatch(S=S, A=A, logP=logP, Rn=ret.T, In=jnp.zeros((E, T)), S_next=S,
                                A_next=A, logP_next=logP, W=jnp.ones((E, T)),
                                idx=jnp.arange(E * T, dtype=jnp.int32).reshape(E, T))
        params = (st.pi_params, st.pi_opt, st.pi_state, st.v_params, st.v_opt, st.v_state)
        params, metrics = self._updates(params, batch, adv.T, k_upd)
        pi_params, pi_opt, pi_state, v_params, v_opt, v_state = params
        st = st._replace(pi_params=pi_params, pi_opt=pi_opt, pi_state=pi_state, v_params=v_params,
                         v_opt=v_opt, v_state=v_state, key=key)
        metrics["mean100"] = ring_mean(st.ring, st.episodes)
        metrics["episodes"] = st.episodes
        return st, metrics

    def _minibatch(self, params, xs):
        """The fused steps of the critic and the policy on one minibatch (TD first, as the loop)."""
        pi_params, pi_opt, pi_state, v_params, v_opt, v_state = params
        batch, adv, key = xs
        k_td, k_pg = jax.random.split(key)
        if self.config.normalize_advantage:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        ac = self.ac
        if ac is not None:  # one step on the union of both networks' params; pi_opt holds its state
            params, pi_opt, state, _, metrics, _ = ac.step_with_state(
                ac.join(pi_params, v_params), pi_opt, ac.join(pi_state, v_state), ac.hyperparams,
                key, batch, adv, None, None)
            (pi_params, v_params), (pi_state, v_state) = ac.split(params), ac.split_state(state)
            return (pi_params, pi_opt, pi_state, v_params, v_opt, v_state), metrics
        v_params, v_opt, v_state, _, m_v, _ = self.td.step_with_state(
            v_params, v_opt, v_state, self.td.hyperparams, k_td, batch, None, None)
        pi_params, pi_opt, pi_state, _, m_pi, _ = self.pg.step_with_state(
            pi_params, pi_opt, pi_state, self.pg.hyperparams, k_pg, batch, adv)
        if self.shares_modules:  # as the coax recipe does after every batch
            pi_params, v_params = sync_shared_params(pi_params, v_params)
        return (pi_params, pi_opt, pi_state, v_params, v_opt, v_state), {**m_v, **m_pi}

    def _updates(self, params, batch, adv, key):
        """The updates on one rollout; ``batch`` and ``adv`` are env-major, ``[E, T, ...]``.

        A2C: one step on the whole rollout. PPO: ``n_epochs`` passes over :func:`minibatches`.
        """
        c = self.config
        E, T = adv.shape
        n = E * T
        flat = functools.partial(_merge_leading, 2)
        size = min(c.batch_size or n, n)
        if size == n and c.n_epochs <= 1:  # A2C: the whole rollout, one step each
            return self._minibatch(params, (jax.tree.map(flat, batch), flat(adv), key))
        num_mb = n // size

        def epoch(params, k):
            k_perm, k_mb = jax.random.split(k)
            mbs = minibatches((batch, adv), k_perm, size)
            params, metrics = jax.lax.scan(self._minibatch, params,
                                           (*mbs, jax.random.split(k_mb, num_mb)))
            return params, _last(metrics)

        params, metrics = jax.lax.scan(epoch, params, jax.random.split(key, max(1, c.n_epochs)))
        return params, _last(metrics)

    def _chunk(self, st: EngineState, length: int):
        def one_run(st):
            return jax.lax.scan(self._update, st, None, length=length)

        if self.num_seeds == 1:  # no vmap over a single run: ~10% faster on XLA:CPU
            out = one_run(jax.tree.map(lambda x: x[0], st))
            return jax.tree.map(lambda x: x[None], out)
        return jax.vmap(one_run)(st)

    # ---- the host side ------------------------------------------------------------------------

    def _compiled_chunk(self, length: int):
        if length not in self._compiled:
            fn = jax.jit(self._chunk, static_argnums=1, donate_argnums=0,
                         in_shardings=(self._shardings,),
                         out_shardings=(self._shardings, self._replicated))
            self._compiled[length] = fn.lower(self.state, length).compile()
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

    def run(self, total_steps: int, progress: bool = True, chunks: int = 20, on_chunk=None) -> None:
        """Trains every run until it has taken at least ``total_steps`` env steps.

        Args:
            total_steps: env steps per run, counted from the start (a resumed run continues).
            progress: a progress bar, and a line while the program compiles.
            chunks: how many compiled calls the remaining steps are split into (equal ones:
                one compilation; the run may overshoot by up to one chunk).
            on_chunk: ``on_chunk(trainer, metrics)`` after each chunk, ``metrics`` a dict of
                numpy arrays ``[num_seeds, updates in the chunk]``.
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
                print(f"compiling {per_chunk} updates x {self.num_seeds} run(s) into one program...",
                      end=" ", file=sys.stderr, flush=True)
            seconds = self.compile(per_chunk)
            if progress:
                print(f"{seconds:.1f} s", file=sys.stderr, flush=True)
        fn = self._compiled[per_chunk]
        bar = tqdm(total=n_chunks * per_chunk * self.steps_per_update * self.num_seeds,
                   unit="step", unit_scale=True, disable=not progress, mininterval=0.5,
                   desc=f"{self.env_id} {self.config.algo} jit x{self.num_seeds}")
        try:
            for _ in range(n_chunks):
                t0 = time.perf_counter()
                self.state, metrics = fn(self.state)   # the old state's buffers are donated
                try:
                    metrics = jax.tree.map(_fetch, metrics)   # waits for the chunk: honest timing
                except KeyboardInterrupt:  # the chunk ran: count it, so a saved state is whole
                    self._count_chunk(jax.tree.map(_fetch, metrics), per_chunk, t0)
                    raise
                self._count_chunk(metrics, per_chunk, t0)
                bar.update(per_chunk * self.steps_per_update * self.num_seeds)
                bar.set_postfix(mean100=f"{np.mean(metrics['mean100'][:, -1]):.1f}", refresh=False)
                if on_chunk is not None:
                    on_chunk(self, metrics)
        finally:
            bar.close()

    def _count_chunk(self, metrics, per_chunk: int, t0: float) -> None:
        self.train_seconds += time.perf_counter() - t0
        self.updates += per_chunk
        self.env_steps += per_chunk * self.steps_per_update
        for k, val in metrics.items():
            self.history.setdefault(k, []).append(val)

    # ---- results ------------------------------------------------------------------------------

    def curves(self) -> dict[str, np.ndarray]:
        """Per-update metrics, each ``[num_seeds, updates]``."""
        return {k: np.concatenate(v, axis=1) for k, v in self.history.items()}

    def params(self, run: int = 0) -> tuple[Any, Any]:
        """``(pi_params, v_params)`` of run ``run``, on the host."""
        return self._take(run, (self.state.pi_params, self.state.v_params))

    def _take(self, run: int, tree):
        if not 0 <= run < self.num_seeds:
            raise IndexError(f"run {run} out of range: {self.num_seeds} run(s)")
        return jax.tree.map(lambda x: np.asarray(_fetch(x))[run], tree)

    def policy(self, run: int = 0):
        """The :class:`~a2c_jax.Policy` holding run ``run``'s trained parameters and state."""
        params, state = self._take(run, (self.state.pi_params, self.state.pi_state))
        self.pi.params, self.pi.function_state = jax.device_put(params), jax.device_put(state)
        return self.pi

    def summary(self) -> dict[str, Any]:
        solved_at = [None if s < 0 else int(s) * self.config.num_envs
                     for s in np.asarray(_fetch(self.state.solved_at))]
        curves = self.curves()
        if curves:  # None for a run that has finished no episode yet
            last = [float(m) if e > 0 else None
                    for m, e in zip(curves["mean100"][:, -1], curves["episodes"][:, -1])]
        else:
            last = [None] * self.num_seeds
        total = self.env_steps * self.num_seeds
        return {
            "env": self.env_id, "algo": self.config.algo, "engine": "jit", "seed": self.seed,
            "num_seeds": self.num_seeds, "num_envs": self.config.num_envs,
            "devices": [str(d) for d in self.devices], "env_steps": self.env_steps,
            "env_steps_all_seeds": total, "updates": self.updates,
            "compile_s": None if self.compile_s is None else round(self.compile_s, 3),
            "wall_s": round(self.train_seconds, 3),
            "steps_per_s": round(total / max(self.train_seconds, 1e-9), 1),
            # the first run's (seed ``seed``), as the loop trainer reports them; every run below
            "solved_at_step": solved_at[0], "final_mean_return": last[0],
            "runs": [{"seed": self.seed + k, "solved_at_step": solved_at[k],
                      "final_mean_return": last[k]} for k in range(self.num_seeds)],
            "reward_threshold": self.reward_threshold,
            "config": dataclasses.asdict(self.config),
        }


    # ---- checkpoints --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        if not all(getattr(x, "is_fully_addressable", True) for x in jax.tree.leaves(self.state)):
            raise EngineError("checkpoints of a run sharded over several hosts are not supported: "
                              "this process holds only its own envs")
        return {
            "engine": "jit", "env_id": self.env_id, "seed": self.seed, "num_seeds": self.num_seeds,
            "config": dataclasses.asdict(self.config), "state": jax.tree.map(_fetch, self.state),
            "env_params": jax.device_get(self.env_params),
            "env_steps": self.env_steps, "updates": self.updates, "compile_s": self.compile_s,
            "train_seconds": self.train_seconds, "history": self.history,
        }

    def save(self, path) -> Path:
        """Writes every run's full state atomically (see :func:`a2c_jax.utils.save_checkpoint`)."""
        return save_checkpoint(path, self.state_dict())

    @classmethod
    def load(cls, path, devices: list | None = None, *, func_pi: Callable | None = None,
             func_v: Callable | None = None) -> JitTrainer:
        """Rebuilds the runs saved by :meth:`save`, ready to continue (on ``devices``).

        Runs trained with your own ``func_pi``/``func_v`` need the same functions again.
        """
        st = load_checkpoint(path)
        if st.get("engine") != "jit":
            raise CheckpointError(f"{path} was written by the loop engine, not --engine jit")
        trainer = cls(st["env_id"], TrainConfig(**_tuples(st["config"])), st["seed"],
                      st["num_seeds"], devices=devices, env_params=st["env_params"],
                      func_pi=func_pi, func_v=func_v)
        try:
            check_same_tree(st["state"], trainer.state, f"{path}: the saved state")
        except (TypeError, ValueError) as err:
            raise CheckpointError(str(err)) from None
        trainer.state = jax.device_put(st["state"], trainer._shardings)
        trainer.env_steps, trainer.updates = st["env_steps"], st["updates"]
        trainer.compile_s, trainer.train_seconds = st["compile_s"], st["train_seconds"]
        trainer.history = st["history"]
        return trainer

    def plot(self, path) -> None:
        """The mean of the last 100 episodes against env steps, one line per run, as a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        curves = self.curves()
        fig, ax = plt.subplots(figsize=(7, 4))
        if curves:
            mean100, episodes = curves["mean100"], curves["episodes"]
            steps = np.arange(1, mean100.shape[1] + 1) * self.steps_per_update
            for k in range(self.num_seeds):
                have = episodes[k] > 0
                ax.plot(steps[have], mean100[k][have], lw=1, label=f"seed {self.seed + k}"
                        if self.num_seeds <= 8 else None)
        if self.reward_threshold is not None:
            ax.axhline(self.reward_threshold, color="grey", ls="--", lw=0.8, label="threshold")
        ax.set(xlabel="env steps (per run)", ylabel="mean return, last 100 episodes",
               title=f"{self.env_id}, {self.config.algo}, --engine jit, {self.num_seeds} run(s)")
        ax.legend(loc="lower right", fontsize="small")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def minibatches(tree, key, size: int):
    """Pure: one epoch's minibatches of ``size`` from ``tree``'s env-major ``[E, T, ...]`` leaves,
    stacked: ``[n // size, size, ...]`` (``n = E * T``; a remainder is dropped).

    Stratified by env when ``size`` divides ``n`` and the number of minibatches divides ``T``:
    each env's steps are shuffled and minibatch ``m`` holds slice ``m`` of every env's steps, env
    by env, so a device's share of every minibatch comes from its own envs. Otherwise the
    minibatches come from one shuffle of all ``n`` steps (the loop trainer's way).
    """
    E, T = jax.tree.leaves(tree)[0].shape[:2]
    n = E * T
    num_mb = n // size
    flat = functools.partial(_merge_leading, 2)
    if n % size == 0 and T % num_mb == 0:
        order = jax.vmap(jax.random.permutation, (0, None))(jax.random.split(key, E), T)

        def split(x):
            x = jnp.take_along_axis(x, order.reshape(E, T, *[1] * (x.ndim - 2)), axis=1)
            x = x.reshape(E, num_mb, T // num_mb, *x.shape[2:])
            return flat(jnp.swapaxes(x, 0, 1), start=1)
    else:
        order = jax.random.permutation(key, n)[:num_mb * size].reshape(num_mb, size)

        def split(x):
            return flat(x)[order]
    return jax.tree.map(split, tree)


def _merge_leading(count: int, x, start: int = 0):
    """``x`` with its axes ``start .. start + count - 1`` merged into one."""
    shape = x.shape
    return x.reshape(*shape[:start], -1, *shape[start + count:])


def _last(metrics: dict) -> dict:
    """The metrics of the last minibatch, except ``*/skipped``: 1 if any step was skipped."""
    return {k: jnp.max(m) if k.endswith("/skipped") else m[-1] for k, m in metrics.items()}


def _fetch(x) -> np.ndarray:
    """A replicated array as numpy, also when other processes hold copies (multi-host)."""
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(x)
    return np.asarray(x.addressable_shards[0].data)
