"""The loop engine: A2C / PPO over gymnasium vector envs, and the builders both engines share.

The rollout is ``n_steps`` vector steps of ``num_envs`` envs (one compiled policy call per vector
step); its update is one compiled call of the pure
:meth:`Learner.update <a2c_jax.training._update.Learner.update>` that the jitted engine runs in
its ``lax.scan`` (values, GAE, epochs of minibatches, the fused steps). No second copy of the
maths or of the orchestration. The envs can be split over devices and processes (see
:class:`Trainer`): each process steps its own, the update all-reduces the gradients.
"""

from __future__ import annotations

import dataclasses
import functools
import signal
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import chex
import gymnasium
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._actor_critic import ActorCritic
from .._core import Policy, V
from .._core._base import raw_key
from ..policy_objectives import PPOClip, VanillaPG
from ..regularizers import EntropyRegularizer
from ..td_learning import SimpleTD
from ..utils._checkpoint import (
    CheckpointError,
    from_json,
    load_checkpoint,
    save_checkpoint,
    to_json,
)
from ..utils._env_state import restore_vector_env, snapshot_vector_env
from ..utils._evaluate import evaluate_greedy
from ..utils._metrics import pack_metrics
from ..utils._sync import _shared_groups
from ..utils._trees import tree_from_state_dict, tree_to_state_dict
from ..value_losses import mse
from ._distributed import local_env_slice
from ._driver import eval_seed, plot_learning_curve, run_summary
from ._normalization import Normalizer, NormState, stats_to_json
from ._presets import TrainConfig
from ._update import Learner, LearnerState, Rollout

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {"tanh": jnp.tanh, "relu": jax.nn.relu}
# seeds are 0 .. 2**32 - 1: gymnasium refuses negative ones, and Policy/V reduce theirs modulo 2**32
MAX_SEED = 2**32 - 1
_KEY_STREAM = 7      # raw_key stream of the engines' own update keys (0, 1: init and sampling)


def make_vector_env(env_id: str, num_envs: int, asynchronous: bool = False,
                    env_kwargs: Mapping[str, Any] | None = None) -> gymnasium.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` (``gymnasium.make(env_id, **env_kwargs)``; a
    ``module:id`` is made in each asynchronous worker too) with gymnasium's same-step autoreset.

    Same-step autoreset returns the first observation of the next episode at once and puts the
    final observation in ``info["final_obs"]``, which the trainer bootstraps truncations from.
    """
    # the passive env checker only inspects the first steps; without it every step is one call
    # shorter
    fns = [functools.partial(gymnasium.make, env_id,
                             **{**dict(env_kwargs or {}), "disable_env_checker": True})
           for _ in range(num_envs)]
    mode = gymnasium.vector.AutoresetMode.SAME_STEP
    if asynchronous:  # spawned workers: forking a process that runs JAX's threads can deadlock
        return gymnasium.vector.AsyncVectorEnv(fns, autoreset_mode=mode, context="spawn")
    return gymnasium.vector.SyncVectorEnv(fns, autoreset_mode=mode)


def _mlp(sizes: Sequence[int], activation: str, name: str) -> hk.Sequential:
    layers: list[Callable[[jax.Array], jax.Array]] = []
    for i, n in enumerate(sizes):
        layers += [hk.Linear(n, name=f"{name}_{i}"), _ACTIVATIONS[activation]]
    return hk.Sequential(layers)


OBSERVATION_SPACES = (gymnasium.spaces.Box, gymnasium.spaces.Discrete, gymnasium.spaces.MultiBinary)
ACTION_SPACES = (gymnasium.spaces.Box, gymnasium.spaces.Discrete)


def _names(types: Sequence[type]) -> str:
    names = [t.__name__ for t in types]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def check_spaces(env: gymnasium.Env, env_id: str | None = None) -> None:
    """Raises ``TypeError`` naming the space unless the trainer's MLPs support ``env``'s spaces.

    Observations must come as one array per env (``Box``; ``Discrete``, one-hot encoded;
    ``MultiBinary``), not as ``Tuple``/``Dict`` structures; actions must be ``Discrete`` or
    ``Box`` (the policies' categorical and Gaussian distributions).
    """
    spec: gymnasium.envs.registration.EnvSpec | None = getattr(env, "spec", None)
    name = env_id or (spec.id if spec else "the env")
    for kind, space, ok in (("observation", env.observation_space, OBSERVATION_SPACES),
                            ("action", env.action_space, ACTION_SPACES)):
        if not isinstance(space, ok):
            raise TypeError(
                f"{name} has the {kind} space {space!r}, which the trainer does not support "
                f"(observations: {_names(OBSERVATION_SPACES)}; actions: {_names(ACTION_SPACES)})")


def build_functions(env: gymnasium.Env, config: TrainConfig, seed: int, *,
                    observation_preprocessor: Callable | None = None) -> tuple[Policy, V]:
    """Separate actor and critic MLPs (SB3's default layout) as a Policy and a V.

    With ``config.shared_backbone`` the hidden layers are one torso that both use (modules
    ``torso_0``, ``torso_1``, ...; heads ``pi_out`` and ``v_out``). Both initialise from the same
    key, so they start with the same torso. ``observation_preprocessor`` (default: the spaces'
    own) is given to both; a run's normalising policy is built with one (:meth:`Trainer.policy`).

    Raises:
        TypeError: an observation or action space the MLPs do not support (see
            :func:`check_spaces`; the message names the space).
    """
    check_spaces(env)
    hidden, act = config.hidden, config.activation
    space = env.action_space
    v_body, pi_body = ("torso", "torso") if config.shared_backbone else ("v", "pi")

    def func_v(S: chex.Array, is_training: bool) -> chex.Array:
        X = _mlp(hidden, act, v_body)(S.reshape(S.shape[0], -1))
        return hk.Linear(1, name="v_out")(X)[:, 0]

    def func_pi(S: chex.Array, is_training: bool) -> dict[str, chex.Array]:
        X = _mlp(hidden, act, pi_body)(S.reshape(S.shape[0], -1))
        small = hk.initializers.VarianceScaling(0.01)
        if isinstance(space, gymnasium.spaces.Discrete):
            return {"logits": hk.Linear(int(space.n), w_init=small, name="pi_out")(X)}
        shape = space.shape
        if shape is None:  # never: check_spaces admits only Box besides Discrete, and a Box has one
            raise TypeError(f"the action space {space!r} has no shape")
        size = int(np.prod(shape))
        mu = hk.Linear(size, w_init=small, name="pi_out")(X).reshape(-1, *shape)
        logvar = hk.get_parameter("logvar", shape, init=jnp.zeros)
        return {"mu": mu, "logvar": jnp.broadcast_to(logvar, mu.shape)}

    pre = observation_preprocessor
    return (Policy(func_pi, env, observation_preprocessor=pre, random_seed=seed),
            V(func_v, env, observation_preprocessor=pre, random_seed=seed))


def _optimizer(config: TrainConfig, lr: float) -> optax.GradientTransformation:
    if config.optimizer == "rmsprop":
        opt = optax.rmsprop(lr, decay=0.99, eps=1e-5)
    elif config.optimizer == "adam":
        opt = optax.adam(lr)
    else:
        raise ValueError(f"unknown optimizer {config.optimizer!r}")
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), opt)


def build_updaters(pi: Policy, v: V, config: TrainConfig) -> tuple[SimpleTD, VanillaPG | PPOClip]:
    """The critic's :class:`SimpleTD` (MSE weighted by ``vf_coef``) and the policy objective
    (:class:`VanillaPG` for ``"a2c"``, :class:`PPOClip` for ``"ppo"``, with the entropy bonus).

    With ``config.shared_backbone`` the value loss is plain MSE: ``vf_coef`` weighs it in
    :func:`build_actor_critic`'s summed loss instead.
    """
    value_loss = (mse if config.shared_backbone
                  else functools.partial(_weighted_mse, config.vf_coef))
    # gradient clipping by the global norm and rmsprop/adam treat every element alike: they run on
    # the flat parameter vector without the construction-time check (see BaseUpdater)
    td = SimpleTD(v, optimizer=_optimizer(config, config.learning_rate), loss_function=value_loss,
                  flatten_optimizer=True)
    reg = EntropyRegularizer(pi, beta=config.ent_coef) if config.ent_coef > 0 else None
    opt = _optimizer(config, config.learning_rate)
    if config.algo == "ppo":
        return td, PPOClip(pi, optimizer=opt, regularizer=reg, epsilon=config.clip_epsilon,
                           flatten_optimizer=True)
    if config.algo == "a2c":
        return td, VanillaPG(pi, optimizer=opt, regularizer=reg, flatten_optimizer=True)
    raise ValueError(f"unknown algo {config.algo!r}: use 'a2c' or 'ppo'")


def build_actor_critic(td: SimpleTD, pg: VanillaPG | PPOClip,
                       config: TrainConfig) -> ActorCritic | None:
    """With ``config.shared_backbone``: the :class:`~a2c_jax.ActorCritic` over ``pg`` and ``td``
    (one optimizer over all parameters, ``vf_coef`` from the config), which then replaces their
    own steps; ``None`` otherwise."""
    if not config.shared_backbone:
        return None
    return ActorCritic(pg, td, optimizer=_optimizer(config, config.learning_rate),
                       vf_coef=config.vf_coef, flatten_optimizer=True)


def build_networks(probe: gymnasium.Env, config: TrainConfig, seed: int,
                   func_pi: Callable | None = None,
                   func_v: Callable | None = None) -> tuple[Policy, V]:
    """The run's :class:`Policy` and :class:`V`: the user's Haiku functions where given, else the
    preset MLPs (:func:`build_functions`), each initialised from ``seed``."""
    if func_pi is None or func_v is None:
        pi, v = build_functions(probe, config, seed)
    if func_pi is not None:
        pi = Policy(func_pi, probe, random_seed=seed)
    if func_v is not None:
        v = V(func_v, probe, random_seed=seed)
    return pi, v


def build_learner(probe: gymnasium.Env, config: TrainConfig, seed: int,
                  func_pi: Callable | None = None, func_v: Callable | None = None,
                  ) -> tuple[Policy, V, SimpleTD, VanillaPG | PPOClip, ActorCritic | None, Learner]:
    """The networks, updaters and :class:`~a2c_jax.training._update.Learner` of a run (both
    engines build theirs here).

    Returns:
        ``(pi, v, td, pg, ac, learner)``; ``ac`` is ``None`` unless ``config.shared_backbone``.
        When ``func_pi`` and ``func_v`` share modules (a torso) and there is no ``ac``, the learner
        averages the shared parameters after every step (:func:`~a2c_jax.utils.sync_shared_params`).
    """
    pi, v = build_networks(probe, config, seed, func_pi, func_v)
    td, pg = build_updaters(pi, v, config)
    ac = build_actor_critic(td, pg, config)
    shares = bool(_shared_groups((dict(pi.params), dict(v.params))))
    return pi, v, td, pg, ac, Learner(pi, v, td, pg, config, ac, sync_shared=shares)


def sample_per_env(pi: Policy, params: hk.Params, function_state: hk.State,
                   step_key: chex.PRNGKey, S: chex.Array,
                   first: int = 0) -> tuple[chex.Array, chex.Array]:
    """Pure: ``(A, logP)`` for a batch of envs ``first, first + 1, ...`` (global indices), env
    ``k`` sampled with its own key ``fold_in(step_key, k)`` from its own row.

    Env ``k``'s action depends on ``step_key``, ``k`` and its observation only, not on which other
    envs share the batch: the envs of a run split over devices or processes act as they would in
    one batch. (``vmap`` of ``pi.sample_fn`` over single rows: the network still runs as one
    batched matmul.)
    """
    index = first + jnp.arange(S.shape[0], dtype=jnp.uint32)
    keys = jax.vmap(jax.random.fold_in, (None, 0))(step_key, index)

    def one(key: chex.PRNGKey, s: chex.Array) -> tuple[chex.Array, chex.Array]:
        A, logP = pi.sample_fn(params, function_state, key, s[None])
        return A[0], logP[0]

    return jax.vmap(one)(keys, S)


def _act(pi: Policy, first: int, params: hk.Params, function_state: hk.State,
         key: chex.PRNGKey, S: chex.Array) -> tuple[chex.Array, chex.PRNGKey]:
    """Pure: the actions and log-probabilities of this process's envs (global indices ``first,
    ...``; :func:`sample_per_env` with one step key split from ``key``), packed as one float32
    array ``[B, action_size + 1]`` (one device-to-host copy per vector step), and the next key."""
    key, subkey = jax.random.split(key)
    A, logP = sample_per_env(pi, params, function_state, subkey, S, first)
    flat = A.reshape(A.shape[0], -1).astype(jnp.float32)
    return jnp.concatenate([flat, logP[:, None].astype(jnp.float32)], axis=1), key


def _act_normalized(pi: Policy, first: int, normalizer: Normalizer, params: hk.Params,
                    function_state: hk.State, key: chex.PRNGKey, obs_stats: Any,
                    S: chex.Array) -> tuple[chex.Array, chex.PRNGKey]:
    """Pure: :func:`_act` on the raw observations ``S`` normalised with ``obs_stats`` (frozen
    during the rollout; :meth:`Normalizer.observations`), in the same one compiled call."""
    return _act(pi, first, params, function_state, key, normalizer.observations(obs_stats, S))


def _learn(learner: Learner, names: list[str], state: LearnerState, rollout: Rollout,
           hparams: dict[str, Any], key: chex.PRNGKey,
           ) -> tuple[LearnerState, chex.Array, chex.PRNGKey]:
    """Pure: the rollout's update, its metrics packed as one float32 array (their names, static,
    are written to ``names`` while tracing), and the next key."""
    key, subkey = jax.random.split(key)
    state, metrics = learner.update(state, rollout, hparams, subkey)
    names[:], values = pack_metrics(metrics)
    return state, values, key


def _learn_gathering(learner: Learner, names: list[str], state: LearnerState, rollout: Rollout,
                     hparams: dict[str, Any], key: chex.PRNGKey, episodes: chex.Array,
                     ) -> tuple[LearnerState, chex.Array, chex.PRNGKey, chex.Array]:
    """Pure: :func:`_learn`, and ``episodes`` passed through: compiled with ``episodes`` sharded
    by env in and replicated out, the same program all-gathers every process's finished
    episodes (no second collective per rollout)."""
    return (*_learn(learner, names, state, rollout, hparams, key), episodes)


def _learn_normalized(learner: Learner, normalizer: Normalizer, names: list[str],
                      state: LearnerState, norm: NormState, rollout: Rollout,
                      hparams: dict[str, Any], key: chex.PRNGKey, *episodes: chex.Array,
                      ) -> tuple[Any, ...]:
    """Pure: the raw ``rollout`` normalised and the statistics moved
    (:meth:`Normalizer.rollout`), then :func:`_learn`; returns ``(state, metrics, key, norm)``,
    and ``episodes`` passed through as :func:`_learn_gathering` does."""
    norm, rollout = normalizer.rollout(norm, rollout)
    return (*_learn(learner, names, state, rollout, hparams, key), norm, *episodes)


def _episode_bits(ended: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """``[T, E, 3]`` uint32: whether env ``e`` ended an episode at step ``t``, and that episode's
    float64 return as two uint32 words (exact, with JAX's 32-bit default types)."""
    words = np.ascontiguousarray(returns, np.float64).view(np.uint32).reshape(*returns.shape, 2)
    return np.concatenate([ended[..., None].astype(np.uint32), words], axis=-1)


def _from_episode_bits(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_episode_bits` undone: ``(ended [T, E] bool, returns [T, E] float64)``."""
    words = np.ascontiguousarray(bits[..., 1:])
    return bits[..., 0].astype(bool), words.view(np.float64)[..., 0]


class Trainer:
    """One training run of A2C or PPO over gymnasium vector envs.

    Each vector step is one compiled call (the policy samples the envs' actions); each rollout's
    update is one compiled call of :meth:`Learner.update <a2c_jax.training._update.Learner.update>`,
    the same function the jitted engine runs inside its ``lax.scan``. The run's parameters and
    optimizer states are :attr:`state` (a :class:`~a2c_jax.training._update.LearnerState`);
    :attr:`pi` and :attr:`v` hand them out as :class:`~a2c_jax.Policy`/:class:`~a2c_jax.V`.

    Data parallelism: the ``num_envs`` global envs are split evenly over ``devices``, in order,
    and each process steps only the block of its own devices (:attr:`env_slice`; global env ``k``
    is seeded with ``seed + k``). Every process holds the same act key stream: each vector step
    splits one step key off it and env ``k`` samples with ``fold_in(step_key, k)`` from its own
    row (:func:`sample_per_env`), so an env acts the same whatever batch it is in. Acting runs on
    the process's first device with a local copy of the parameters. With several devices the
    update runs over a :attr:`mesh` (axis ``"envs"``): the state replicated, the rollout sharded
    by env, and the one compiled call all-reduces the gradients (the losses are means over the
    global batch). Over several processes the same call also all-gathers the finished episodes,
    which every process records in the order one process sees them (by vector step, then global
    env index): :attr:`returns`, :attr:`ends`, :attr:`solved_at_step`, :attr:`env_steps` (global
    env steps), the curves and the summary are the same in every process and equal to one
    process's with the same global envs and seed; the parameters equal up to the float
    reassociation of the all-reduce. :attr:`obs`, :attr:`ep_return` and :attr:`ep_length` are
    the process's own envs. With one device in one process nothing of this is used: numpy in,
    the plain compiled update.

    Args:
        env_id: a gymnasium env id.
        config: a :class:`TrainConfig`.
        seed: seeds the networks, the envs and every key of the run.
        asynchronous: gymnasium's ``AsyncVectorEnv`` instead of ``SyncVectorEnv``.
        func_pi, func_v: your own Haiku functions ``func(S, is_training)`` (default: the config's
            MLPs), as for :class:`~a2c_jax.training.JitTrainer`.
        report_every: :meth:`run` fetches the metrics from the device and calls ``on_report``
            every this many updates (and at the end).
        devices: the devices to split the envs over, each process's consecutive (default: the
            first device of each process; one process: JAX's default device). ``num_envs``
            must be a multiple of their number (else ``ValueError``).
    """

    engine = "loop"
    num_seeds = 1

    def __init__(self, env_id: str, config: TrainConfig, seed: int = 0,
                 asynchronous: bool = False, *, func_pi: Callable | None = None,
                 func_v: Callable | None = None, report_every: int = 100,
                 devices: list[jax.Device] | None = None) -> None:
        self.env_id, self.seed = env_id, seed
        self._config = config
        self.asynchronous = asynchronous
        self.report_every = max(1, int(report_every))
        self.steps_per_update = config.n_steps * config.num_envs
        #: the devices the envs are split over, in order (default: each process's first device)
        self.devices = (list(devices) if devices is not None else
                        [jax.local_devices(process_index=p)[0] for p in range(jax.process_count())])
        if not self.devices or config.num_envs % len(self.devices):
            raise ValueError(f"num_envs ({config.num_envs}) must be a multiple of the number of "
                             f"devices ({len(self.devices)}) to split the envs over them")
        #: the global indices of the envs this process steps
        self.env_slice = local_env_slice(config.num_envs, self.devices)
        self._set_up_mesh()
        probe = gymnasium.make(env_id, **dict(config.env_kwargs))
        self.reward_threshold = probe.spec.reward_threshold if probe.spec else None
        try:
            self._pi, self._v, self.td, self.pg, self.ac, self.learner = build_learner(
                probe, config, seed, func_pi, func_v)
        finally:
            probe.close()
        self.state = self.learner.init(self._pi.params, self._pi.function_state,
                                       self._v.params, self._v.function_state)
        self._func_pi = func_pi
        #: the run's observation and reward normalisation (``normalize_obs``/``normalize_reward``)
        self.normalizer = Normalizer(config, self._pi.observation_space)
        # every process holds the same two key streams: acting (one step key per vector step,
        # folded with each env's global index) and updating (replicated over the mesh)
        self._act_key, self._key = raw_key(seed, 1), raw_key(seed, _KEY_STREAM)
        if self.mesh is not None:
            self._key = self._replicate(self._key)
        first = self.env_slice.start
        self._act = jax.jit(functools.partial(_act, self._pi, first))
        # with normalize_obs: the same one call per vector step, normalising first
        self._act_norm = jax.jit(functools.partial(_act_normalized, self._pi, first,
                                                   self.normalizer))
        self._metric_names: list[str] = []
        self._learn = self._compile_learn()
        self._hparams_cache: tuple[Any, Any] = (None, None)
        K = self.env_slice.stop - first
        self.envs = make_vector_env(env_id, K, asynchronous, dict(config.env_kwargs))
        # sub-env j of this process is global env first + j, seeded with seed + first + j
        self.obs, _ = self.envs.reset(seed=seed + first)
        self.ep_return, self.ep_length = np.zeros(K), np.zeros(K, np.int64)
        self.norm = self.normalizer.init(K)
        # with the envs over several processes: this rollout's ends of this process's episodes
        # (per vector step: which envs ended, their returns), merged with the others' at the update
        self._local_ends: list[tuple[np.ndarray, np.ndarray]] = []
        self.returns: list[float] = []   # every finished episode, in order
        self.ends: list[int] = []        # the env step at which each one finished
        self.recent: deque[float] = deque(maxlen=100)
        self._mean100: float | None = 0.0   # the mean of recent; None: to compute again
        self.env_steps = self.updates = 0
        self.solved_at_step: int | None = None
        self.train_seconds = 0.0
        self.compile_s: float | None = None
        #: per-update metrics fetched so far, each a list of ``[1, n]`` blocks (see :meth:`curves`)
        self.history: dict[str, list[np.ndarray]] = {}
        # each update's packed metrics (on the device until fetched), mean100 and episode count
        self._pending: list[tuple[chex.Array, float, int]] = []

    @property
    def config(self) -> TrainConfig:
        """The run's configuration (read-only: the compiled update is built from it)."""
        return self._config

    # ---- devices and processes ----------------------------------------------------------------

    def _set_up_mesh(self) -> None:
        """One device: no mesh (numpy in, the update compiled for that device). Several: a mesh
        over them (axis ``"envs"``), with the shardings of the replicated state and of the
        rollout split by env."""
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        #: the mesh the update runs on (``None`` with one device)
        self.mesh: Mesh | None = None
        # the one device, when it is not JAX's default one (the state is put there)
        self._device = self.devices[0] if self.devices[0] != jax.devices()[0] else None
        # several processes' envs: each update also gathers the processes' finished episodes
        self._gather = len({d.process_index for d in self.devices}) > 1
        if len(self.devices) == 1:
            return
        self.mesh = Mesh(np.asarray(self.devices), ("envs",))
        self._replicated = NamedSharding(self.mesh, PartitionSpec())
        self._by_env = NamedSharding(self.mesh, PartitionSpec("envs"))            # [E, ...]
        self._by_env_t = NamedSharding(self.mesh, PartitionSpec(None, "envs"))    # [T, E, ...]

    def _replicate(self, x: Any) -> jax.Array:
        """``x`` (the same value in every process) as one array replicated over the mesh."""
        if isinstance(x, jax.Array) and x.sharding == self._replicated:
            return x
        return jax.make_array_from_process_local_data(self._replicated, np.asarray(x))

    def _compile_learn(self) -> Callable:
        """``_learn`` jitted: plainly with one device; with a mesh, the state, hyperparameters and
        key replicated and the rollout split by env, so the compiler all-reduces the gradients
        (and, over several processes, all-gathers the finished episodes)."""
        learn = functools.partial(_learn, self.learner, self._metric_names)
        if self.normalizer.active:
            learn = functools.partial(_learn_normalized, self.learner, self.normalizer,
                                      self._metric_names)
        if self.mesh is None:
            return jax.jit(learn)
        rep, by_env_t = self._replicated, self._by_env_t
        rollout = Rollout._make([by_env_t] * 7 + [self._by_env])   # S_next: [E, ...]
        if self.normalizer.active:
            norm = self._norm_shardings()
            gather = (by_env_t,) if self._gather else ()
            return jax.jit(learn, in_shardings=(rep, norm, rollout, rep, rep, *gather),
                           out_shardings=(rep, rep, rep, norm, *((rep,) if gather else ())))
        if not self._gather:
            return jax.jit(learn, in_shardings=(rep, rollout, rep, rep), out_shardings=rep)
        return jax.jit(functools.partial(_learn_gathering, self.learner, self._metric_names),
                       in_shardings=(rep, rollout, rep, rep, by_env_t), out_shardings=rep)

    @property
    def state(self) -> LearnerState:
        """The parameters, function states and optimizer states of the run; with several devices,
        global arrays replicated over :attr:`mesh` (a state set here is put there)."""
        return self._state

    @state.setter
    def state(self, value: LearnerState) -> None:
        if self.mesh is not None:
            value = jax.tree.map(self._replicate, value)
        elif self._device is not None:
            value = jax.device_put(value, self._device)
        self._set_state(value)

    def _set_state(self, value: LearnerState) -> None:
        self._state = value
        if self.mesh is not None:  # acting runs on this process's first device, on a local copy
            self._act_params = self._local((value.pi_params, value.pi_state))

    @staticmethod
    def _local_key(key: Any) -> Any:
        """The update key on this process (it is put on the mesh by the first update)."""
        return key.addressable_data(0) if hasattr(key, "addressable_data") else key

    def _local(self, tree: Any) -> Any:
        """``tree``'s arrays on this process's first device (the replicas are all the same)."""
        if self.mesh is None:
            return tree
        return jax.tree.map(lambda x: x.addressable_data(0), tree)

    def _norm_shardings(self) -> NormState:
        """With a mesh: the statistics replicated, each env's running return split by env."""
        empty = self.normalizer.init(1)
        rep = functools.partial(jax.tree.map, lambda _: self._replicated)
        return NormState(obs=rep(empty.obs), ret=rep(empty.ret),
                         ret_acc=self._by_env if self.normalizer.reward_on else ())

    @property
    def norm(self) -> NormState:
        """The normalisation statistics (:class:`~a2c_jax.training._normalization.NormState`):
        updated by every rollout's update, empty (``()``) for what the config switches off. With
        a mesh, global arrays: the statistics replicated, ``ret_acc`` split by env (set here:
        this process's envs' part, ``[K]``)."""
        return self._norm

    @norm.setter
    def norm(self, value: NormState) -> None:
        if self.mesh is not None:
            E = self.config.num_envs
            value = NormState(
                obs=jax.tree.map(self._replicate, value.obs),
                ret=jax.tree.map(self._replicate, value.ret),
                ret_acc=(jax.make_array_from_process_local_data(
                    self._by_env, np.asarray(value.ret_acc, np.float32), (E,))
                    if self.normalizer.reward_on else ()))
        else:  # on the run's device, as device arrays (numpy from a checkpoint is put there)
            value = jax.device_put(value, self._device)
        self._norm = value

    def _norm_on_host(self) -> tuple[Any, Any, np.ndarray | None]:
        """``(obs stats, return stats, this process's ret_acc [K])`` as numpy (or ``()``)."""
        norm = self._norm
        stats = jax.device_get(self._local((norm.obs, norm.ret)))
        if not self.normalizer.reward_on:
            return (*stats, None)
        acc = norm.ret_acc
        if self.mesh is not None:  # this process's envs, in order of their global index
            shards = sorted(acc.addressable_shards, key=lambda sh: sh.index[0].start or 0)
            return (*stats, np.concatenate([np.asarray(sh.data) for sh in shards]))
        return (*stats, np.asarray(acc))

    # ---- the networks -------------------------------------------------------------------------

    @property
    def pi(self) -> Policy:
        """The run's policy, given the run's current parameters each time it is read (the run's
        parameters live in :attr:`state`: setting ``trainer.pi.params`` does not change them, and
        a reference kept across :meth:`run` shows the old ones until ``trainer.pi`` is read again;
        :meth:`policy` gives an independent copy; with ``normalize_obs`` this is the network itself,
        which takes normalised observations, and :meth:`policy` the one that takes raw ones).
        :attr:`td`, :attr:`pg` and :attr:`ac` are the run's configuration; their own optimizer
        states are not the run's (those are in :attr:`state`)."""
        self._pi.params, self._pi.function_state = self._local((self.state.pi_params,
                                                                self.state.pi_state))
        return self._pi

    @property
    def v(self) -> V:
        """The value function, holding the run's current parameters."""
        self._v.params, self._v.function_state = self._local((self.state.v_params,
                                                              self.state.v_state))
        return self._v

    def policy(self, run: int = 0) -> Policy:
        """A new :class:`~a2c_jax.Policy` holding the run's current parameters, as
        :meth:`JitTrainer.policy <a2c_jax.training.JitTrainer.policy>` gives (the loop engine trains
        one run; ``run`` must be 0). Unlike :attr:`pi`, it does not change as training goes on.

        With ``normalize_obs`` it takes raw observations: the run's observation statistics as
        they are now are applied first, frozen (its ``observation_preprocessor``), while
        :attr:`pi` is the network the engine feeds normalised observations."""
        if run != 0:
            raise IndexError(f"run {run} out of range: the loop engine trains 1 run")
        if not self.normalizer.obs_on:
            return cast(Policy, self.pi.copy())
        pi = self.pi
        return normalizing_policy(pi, self.normalizer, self._norm_on_host()[0], self.config,
                                  self.seed, self._func_pi, (pi.params, pi.function_state))

    def params(self, run: int = 0) -> tuple[Any, Any]:
        """``(pi_params, v_params)`` on the host (``run`` must be 0)."""
        self.policy(run)
        return jax.device_get(self._local((self.state.pi_params, self.state.v_params)))

    # ---- one rollout and its update -----------------------------------------------------------

    def _rollout(self) -> Rollout:
        """``n_steps`` vector steps of this process's envs (``[T, K, ...]``, ``K`` local envs)."""
        K, T = len(self.ep_return), self.config.n_steps
        obs_shape = self.obs.shape[1:]
        S = np.zeros((T, K, *obs_shape), self.obs.dtype)
        finals = np.zeros_like(S)
        space = self._pi.action_space
        discrete = isinstance(space, gymnasium.spaces.Discrete)
        A = np.zeros((T, K) if discrete else (T, K, *space.shape),
                     np.int64 if discrete else space.dtype)
        logP = np.zeros((T, K), np.float32)
        R, term, trunc = np.zeros((T, K), np.float32), np.zeros((T, K), bool), np.zeros((T, K), bool)
        params, fstate = ((self.state.pi_params, self.state.pi_state) if self.mesh is None
                          else self._act_params)
        self._local_ends = []
        obs_stats = self._local(self._norm.obs) if self.normalizer.obs_on else None
        for t in range(T):
            S[t] = self.obs
            if obs_stats is None:
                packed, self._act_key = self._act(params, fstate, self._act_key, self.obs)
            else:  # the statistics stay as they are until the rollout's update
                packed, self._act_key = self._act_norm(params, fstate, self._act_key, obs_stats,
                                                       self.obs)
            packed = np.asarray(packed)
            a = packed[:, 0].astype(np.int64) if discrete else packed[:, :-1].reshape(A.shape[1:])
            obs, r, te, tr, info = self.envs.step(a)
            A[t], logP[t], R[t], term[t], trunc[t] = a, packed[:, -1], r, te, tr & ~te
            if "_final_obs" in info:
                for k in np.flatnonzero(info["_final_obs"]):
                    finals[t, k] = info["final_obs"][k]
            self._count(r, te | tr)
            self.obs = obs
        return Rollout(S, A, logP, R, term, trunc, finals, self.obs)

    def _count(self, rewards: np.ndarray, ended: np.ndarray) -> None:
        """One vector step of this process's envs: their running episodes, the global step count
        and, when every env is here, the episodes that ended (in env order)."""
        self.ep_return += rewards
        self.ep_length += 1
        self.env_steps += self.config.num_envs
        if not ended.any():
            if self._gather:
                self._local_ends.append((ended, np.zeros(len(rewards))))
            return
        if self._gather:  # the other processes' envs end episodes too: merged at the update
            self._local_ends.append((ended, np.where(ended, self.ep_return, 0.0)))
            self.ep_return[ended], self.ep_length[ended] = 0.0, 0
            return
        for k in np.flatnonzero(ended):
            self._record(float(self.ep_return[k]), self.env_steps)
            self.ep_return[k], self.ep_length[k] = 0.0, 0

    def _record(self, ret: float, step: int) -> None:
        """A finished episode: its return, ended at global env step ``step``."""
        self._mean100 = None
        self.returns.append(ret)
        self.ends.append(step)
        self.recent.append(ret)
        if (self.solved_at_step is None and self.reward_threshold is not None
                and len(self.recent) == 100 and np.mean(self.recent) >= self.reward_threshold):
            self.solved_at_step = step

    def _merge_episodes(self, bits: np.ndarray) -> None:
        """Records every process's episodes that ended in the last rollout, gathered as
        ``[T, E, 3]`` (:func:`_episode_bits`, global env order), in the order one process would
        see them: by vector step, then by global env index."""
        ended, returns = _from_episode_bits(bits)
        T, E = ended.shape
        start = self.env_steps - T * E
        for t, k in zip(*np.nonzero(ended)):   # row-major: step by step, env by env
            self._record(float(returns[t, k]), start + (int(t) + 1) * E)

    def _hparams(self) -> dict[str, Any]:
        """The updaters' hyperparameters as device arrays, converted again only when changed."""
        # a copy of the values: an updater may hand out (and later change) its own dict
        now = jax.tree.map(float, self.learner.hyperparams())
        if now != self._hparams_cache[0]:
            put = (functools.partial(jnp.asarray, dtype=jnp.float32) if self.mesh is None
                   else lambda x: self._replicate(np.float32(x)))
            self._hparams_cache = (now, jax.tree.map(put, now))
        return self._hparams_cache[1]

    def _update(self, rollout: Rollout) -> None:
        """The rollout's update: one compiled call; its metrics stay on the device until
        :meth:`_fetch_metrics`. ``rollout`` holds this process's envs."""
        first = self.compile_s is None
        t0 = time.perf_counter()
        if self.mesh is None and self.normalizer.active:
            self._state, metrics, self._key, self._norm = self._learn(
                self._state, self._norm, rollout, self._hparams(), self._key)
        elif self.mesh is None:  # one device: numpy in, nothing else
            self._state, metrics, self._key = self._learn(self._state, rollout, self._hparams(),
                                                          self._key)
        else:
            metrics = self._update_on_mesh(rollout)
        if first:  # the first call traces and compiles: recorded, as the jit engine's compile_s
            jax.block_until_ready(self.state)
            self.compile_s = time.perf_counter() - t0
        self.updates += 1
        self._pending.append((metrics, self.mean100(), len(self.returns)))

    def _update_on_mesh(self, rollout: Rollout) -> jax.Array:
        """:meth:`_update` over the mesh: this process's share of the rollout becomes its part of
        global arrays split by env; over several processes the same call gathers the finished
        episodes, merged here. Returns the metrics (a local copy)."""
        T, E = rollout.R.shape[0], self.config.num_envs

        def by_env(x: np.ndarray, sharding: Any) -> jax.Array:
            axis = 0 if sharding is self._by_env else 1
            shape = (*x.shape[:axis], E, *x.shape[axis + 1:])
            return jax.make_array_from_process_local_data(sharding, np.asarray(x), shape)

        sharded = Rollout._make([by_env(x, self._by_env_t) for x in rollout[:7]]
                                + [by_env(rollout.S_next, self._by_env)])
        key = self._replicate(self._key)   # a no-op unless a key was set from outside
        norm = (self._norm,) if self.normalizer.active else ()
        if not self._gather:
            state, metrics, self._key, *norm = self._learn(self._state, *norm, sharded,
                                                           self._hparams(), key)
        else:
            K = rollout.R.shape[1]
            ends = self._local_ends if len(self._local_ends) == T else [
                (np.zeros(K, bool), np.zeros(K))] * T    # a rollout not collected by _rollout
            self._local_ends = []
            local = _episode_bits(np.stack([e for e, _ in ends]), np.stack([r for _, r in ends]))
            state, metrics, self._key, *norm, bits = self._learn(
                self._state, *norm, sharded, self._hparams(), key, by_env(local, self._by_env_t))
            self._merge_episodes(np.asarray(bits.addressable_data(0)))
        if norm:
            self._norm = norm[0]
        self._set_state(state)
        return metrics.addressable_data(0)

    def mean100(self) -> float:
        """The mean return of the last 100 finished episodes (0 before the first)."""
        if self._mean100 is None:
            self._mean100 = float(np.mean(self.recent)) if self.recent else 0.0
        return self._mean100

    def _fetch_metrics(self) -> dict[str, np.ndarray]:
        """Moves the pending per-update metrics into :attr:`history`; returns them, each
        ``[1, n]`` (``n`` updates), with ``mean100`` and ``episodes`` as the jit engine has them."""
        if not self._pending:
            return {}
        device, mean100, episodes = zip(*self._pending)
        self._pending = []
        fetched = np.stack(jax.device_get(list(device)))   # [n, metrics]: one array per update
        block: dict[str, np.ndarray] = {
            k: fetched[None, :, i].astype(np.float32) for i, k in enumerate(self._metric_names)}
        block["mean100"] = np.asarray(mean100, np.float32)[None]
        block["episodes"] = np.asarray(episodes, np.int32)[None]
        for k, val in block.items():
            self.history.setdefault(k, []).append(val)
        return block

    # ---- the run ------------------------------------------------------------------------------

    def run(self, total_steps: int, progress: bool = True,
            on_report: Callable[[Trainer, dict[str, np.ndarray]], None] | None = None) -> None:
        """Trains until ``env_steps >= total_steps`` (whole rollouts).

        ``on_report(trainer, metrics)`` every :attr:`report_every` updates and after the last,
        ``metrics`` a dict of numpy arrays ``[1, updates since the last report]`` (the losses of
        each update's last step, ``mean100`` and ``episodes``), as the jit engine reports chunks.
        """
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=min(self.env_steps, total_steps), unit="step",
                   disable=not progress, desc=f"{self.env_id} {self.config.algo}", mininterval=0.5)
        # Ctrl-C is held until the current rollout's update is done, so that a checkpoint saved on
        # interrupt never counts steps that were not learned from (a second Ctrl-C stops at once)
        interrupted: list[bool] = []
        previous = None
        if threading.current_thread() is threading.main_thread():
            def hold(signum: int, frame: Any) -> None:
                if interrupted:
                    raise KeyboardInterrupt
                interrupted.append(True)

            previous = signal.signal(signal.SIGINT, hold)
        t0 = time.perf_counter()
        try:
            while self.env_steps < total_steps:
                before = self.env_steps
                self._update(self._rollout())
                bar.update(self.env_steps - before)
                if self.recent and not bar.disable:
                    bar.set_postfix(mean100=f"{self.mean100():.1f}", refresh=False)
                if (self.updates % self.report_every == 0 or self.env_steps >= total_steps
                        or interrupted):
                    jax.block_until_ready(self.state)
                    self.train_seconds += time.perf_counter() - t0
                    block = self._fetch_metrics()
                    if on_report is not None and block:
                        on_report(self, block)
                    t0 = time.perf_counter()  # the time of reporting is not training time
                if interrupted:
                    raise KeyboardInterrupt
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            jax.block_until_ready(self.state)
            self.train_seconds += time.perf_counter() - t0
            bar.close()

    def evaluate(self, episodes: int | None = None) -> float:
        """Mean return of the greedy policy (``pi.mode``) over fresh episodes (with
        ``normalize_obs``: the observations normalised with the run's statistics, frozen;
        :meth:`policy`)."""
        from ._config import make_env

        env = make_env(self.env_id, self.config)   # with the run's env_kwargs
        try:
            return evaluate_greedy(self.policy(0), env, episodes or self.config.eval_episodes,
                                   first_seed=eval_seed(self.seed))
        finally:
            env.close()

    def curves(self) -> dict[str, np.ndarray]:
        """Per-update metrics, each ``[1, updates]`` (the jit engine's layout)."""
        self._fetch_metrics()
        return {k: np.concatenate(v, axis=1) for k, v in self.history.items()}

    def summary(self) -> dict[str, Any]:
        """The run's figures, with the same keys and meanings as the jit engine's."""
        self._fetch_metrics()
        final = float(np.mean(self.recent)) if self.recent else None
        return run_summary(self, solved_at=[self.solved_at_step], final_mean=[final],
                           episodes=[len(self.returns)], devices=[str(d) for d in self.devices])

    def plot(self, path: str | Path) -> None:
        """The learning curve as a PNG (:func:`plot_learning_curve`)."""
        plot_learning_curve(self, Path(path))

    # ---- checkpoints --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The run's full state as plain data, what :meth:`save` writes: JSON-able values and
        numpy arrays, nothing live (no env objects).

        The learner state comes as nested dicts (:func:`~a2c_jax.utils._trees.tree_to_state_dict`);
        ``"envs"`` is this process's part, as JSON: its envs as a plain-data snapshot
        (:func:`~a2c_jax.utils._env_state.snapshot_vector_env`, or ``None`` and the
        ``reset_reason``), its observations and its running episodes' returns and lengths (with
        ``normalize_reward``, also its envs' running discounted returns, ``ret_acc``).
        ``"normalization"`` holds the observation and return statistics (``{}`` when the config
        normalises nothing).
        """
        self._fetch_metrics()
        snapshot: dict[str, Any] | None = None
        reason: str | None = "asynchronous envs (worker processes) cannot be saved"
        if not self.asynchronous:
            snapshot, reason = snapshot_vector_env(self.envs)
        local = {"env_slice": [self.env_slice.start, self.env_slice.stop], "snapshot": snapshot,
                 "reset_reason": reason,
                 "obs": to_json(np.asarray(self.obs), None, "obs"),
                 "ep_return": to_json(self.ep_return, None, "ep_return"),
                 "ep_length": to_json(self.ep_length, None, "ep_length")}
        obs_stats, ret_stats, ret_acc = self._norm_on_host()
        if ret_acc is not None:
            local["ret_acc"] = to_json(ret_acc, None, "ret_acc")
        return {
            "engine": "loop", "env_id": self.env_id, "seed": self.seed,
            "config": dataclasses.asdict(self.config),
            "learner": tree_to_state_dict(jax.device_get(self._local(self.state))),
            "keys": {"act": np.asarray(self._act_key),
                     "update": np.asarray(self._local_key(self._key))},
            "envs": local, "returns": list(self.returns), "ends": list(self.ends),
            "recent": list(self.recent), "env_steps": self.env_steps, "updates": self.updates,
            "solved_at_step": self.solved_at_step, "train_seconds": self.train_seconds,
            "compile_s": self.compile_s,
            "history": {k: np.concatenate(v, axis=1) for k, v in self.history.items()},
            "normalization": tree_to_state_dict({"obs": obs_stats, "ret": ret_stats}),
        }

    def save(self, path: str | Path) -> Path:
        """Writes the run's full state to the checkpoint directory ``path``, atomically and
        without pickle (:func:`a2c_jax.utils.save_checkpoint`): arrays by orbax, the rest as
        JSON, this process's envs in ``envs.process-<i>.json``.

        Warns when the envs cannot be saved as plain data (e.g. Box2D envs): a run resumed from
        the checkpoint then resets them instead of continuing their episodes.
        """
        state = self.state_dict()
        local = state.pop("envs")
        if local["snapshot"] is None and not self.asynchronous:
            warnings.warn(f"{self.env_id}: {local['reset_reason']}; a run resumed from this "
                          "checkpoint resets its envs instead of continuing their episodes",
                          stacklevel=2)
        return save_checkpoint(path, state, per_process={"envs": local})

    @classmethod
    def load(cls, path: str | Path, asynchronous: bool = False, *,
             func_pi: Callable | None = None, func_v: Callable | None = None) -> Trainer:
        """Rebuilds a run from :meth:`save`'s checkpoint, ready to continue.

        The parameters and optimizer states are put into the structure the rebuilt run holds
        (never one named in the file). Synchronous envs are built afresh and the saved snapshot
        is set onto them, so a resumed run continues exactly as an uninterrupted one would. Envs
        that could not be saved (asynchronous ones, or envs holding objects that are not plain
        data) restart from a reset seeded by the step count, with a warning. Runs trained with
        your own ``func_pi``/``func_v`` need the same functions again.

        Raises:
            CheckpointError: the checkpoint is missing, damaged, foreign, of another format (old
                ``.pkl`` pickles are refused, unread), of the jit engine, or does not fit the
                rebuilt run; the message names the problem.
        """
        st = load_checkpoint(path)
        if st.get("engine") == "jit":
            raise CheckpointError(f"{path} was written by --engine jit; resume it with --engine jit")
        _check_entries(st, _STATE_ENTRIES, path)
        seed = st["seed"]
        if (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                or not 0 <= seed <= MAX_SEED):
            raise CheckpointError(f"{path} has an invalid seed {seed!r}")
        if not isinstance(st["env_id"], str):
            raise CheckpointError(f"{path} has an invalid env id {st['env_id']!r}")
        _check_known_env(st["env_id"], path)
        counters = _check_counters(st, path)
        try:
            trainer = cls(st["env_id"], TrainConfig(**_tuples(st["config"])), st["seed"],
                          asynchronous=asynchronous, func_pi=func_pi, func_v=func_v)
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{path} has an invalid config or seed: {err}") from None
        try:  # into the structures of the rebuilt networks and optimizers, leaf by leaf
            state = tree_from_state_dict(trainer.state, st["learner"],
                                         f"{path}: the saved learner state")
            act_key = tree_from_state_dict(trainer._act_key, st["keys"]["act"], f"{path}: keys/act")
            key = tree_from_state_dict(trainer._key, st["keys"]["update"], f"{path}: keys/update")
            local = _local_entries(st["envs"], trainer, path)
            span = [trainer.env_slice.start, trainer.env_slice.stop]
            if local["snapshot"] is not None and not asynchronous and local["env_slice"] == span:
                restore_vector_env(trainer.envs, local["snapshot"], str(path))
                trainer.obs = local["obs"]
                ep_return, ep_length = local["ep_return"], local["ep_length"]
            else:
                if local["env_slice"] != span:  # e.g. a multi-process run read by one process
                    reason = (f"its envs were saved as {local['env_slice']} of a run over several "
                              f"processes, this process steps envs {span}")
                elif local["snapshot"] is None:
                    reason = local["reset_reason"]
                else:
                    reason = "the run resumes with asynchronous envs, which take no saved state"
                reset = seed + counters["env_steps"] + trainer.env_slice.start
                warnings.warn(f"{path}: {reason}; its envs are reset (seed {reset}) instead of "
                              "continuing their episodes", stacklevel=2)
                trainer.obs, _ = trainer.envs.reset(seed=reset)
                # new episodes: the partial ones' returns must not carry over into them
                ep_return, ep_length = np.zeros_like(trainer.ep_return), np.zeros_like(trainer.ep_length)
                local["ret_acc"] = np.zeros(len(ep_return), np.float32)   # SB3 resets it too
            norm = _load_norm(trainer, st, local, path)
        except (TypeError, ValueError) as err:  # CheckpointError is a ValueError
            trainer.close()
            raise CheckpointError(str(err)) from None
        trainer.state, trainer._act_key, trainer._key = state, act_key, key
        trainer.norm = norm
        trainer.ep_return, trainer.ep_length = ep_return, ep_length
        trainer.returns, trainer.ends = counters["returns"], counters["ends"]
        trainer.recent.extend(counters["recent"])
        trainer._mean100 = None
        trainer.env_steps, trainer.updates = counters["env_steps"], counters["updates"]
        trainer.solved_at_step = counters["solved_at_step"]
        trainer.train_seconds, trainer.compile_s = counters["train_seconds"], counters["compile_s"]
        trainer.history = {k: [v] for k, v in counters["history"].items()}
        return trainer

    def export(self, path: str | Path) -> Path:
        """Writes the trained policy alone to the directory ``path``, in the checkpoints' safe
        format: parameters, function state, the network's description, the spaces and the env
        id; with ``normalize_obs``, the observation statistics (the loaded policy applies them).
        :func:`a2c_jax.load_policy` reads it without this run's objects."""
        from .._export import export_policy

        obs_stats = self._norm_on_host()[0] if self.normalizer.obs_on else None
        return export_policy(path, cast(Policy, self.pi.copy()), env_id=self.env_id,
                             engine=self.engine, config=self.config, seed=self.seed,
                             env_steps=self.env_steps, obs_normalization=(
                                 None if obs_stats is None
                                 else stats_to_json(obs_stats, self.normalizer.clip_obs)))

    def close(self) -> None:
        self.envs.close()


# the entries of Trainer.state_dict that Trainer.load reads (a nested dict lists sub-entries)
_STATE_ENTRIES = {
    "env_id": None, "seed": None, "config": None,
    "learner": None, "keys": {"act": None, "update": None},
    "envs": {"env_slice": None, "snapshot": None, "reset_reason": None, "obs": None,
             "ep_return": None, "ep_length": None},
    "returns": None, "ends": None, "recent": None, "env_steps": None, "updates": None,
    "solved_at_step": None, "train_seconds": None, "compile_s": None, "history": None,
}


def _check_entries(st: Mapping[str, Any], spec: Mapping[str, Any], path: str | Path,
                   prefix: str = "") -> None:
    """Raises :class:`CheckpointError` naming the first entry of ``spec`` that ``st`` lacks."""
    for key, sub in spec.items():
        name = f"{prefix}{key}"
        if key not in st:
            raise CheckpointError(f"{path} is incomplete: it has no {name!r} entry")
        if sub is not None:
            if not isinstance(st[key], dict):
                raise CheckpointError(f"{path} is damaged: its {name!r} entry is of type "
                                      f"{type(st[key]).__name__}, not dict")
            _check_entries(st[key], sub, path, f"{name}/")
    if not prefix and not isinstance(st["config"], dict):
        raise CheckpointError(f"{path} has an invalid config: a {type(st['config']).__name__}, "
                              "not a dict")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_counters(st: Mapping[str, Any], path: str | Path) -> dict[str, Any]:
    """The run's counters, returns and history from a loaded checkpoint, each checked."""
    checks: dict[str, tuple[Callable[[Any], bool], str]] = {
        "returns": (lambda x: isinstance(x, list) and all(map(_is_number, x)), "a list of numbers"),
        "ends": (lambda x: isinstance(x, list) and all(map(_is_int, x)), "a list of ints"),
        "recent": (lambda x: isinstance(x, list) and len(x) <= 100 and all(map(_is_number, x)),
                   "a list of at most 100 numbers"),
        "env_steps": (lambda x: _is_int(x) and x >= 0, "an int >= 0"),
        "updates": (lambda x: _is_int(x) and x >= 0, "an int >= 0"),
        "solved_at_step": (lambda x: x is None or _is_int(x), "an int or null"),
        "train_seconds": (_is_number, "a number"),
        "compile_s": (lambda x: x is None or _is_number(x), "a number or null"),
        "history": (lambda x: isinstance(x, dict) and all(
            isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[0] == 1 for v in x.values()),
                    "a dict of [1, n] arrays"),
    }
    for name, (ok, expected) in checks.items():
        if not ok(st[name]):
            raise CheckpointError(f"{path} is damaged: its {name!r} entry is not {expected}")
    if len(st["returns"]) != len(st["ends"]):
        raise CheckpointError(f"{path} is damaged: its 'returns' and 'ends' differ in length")
    out = {name: st[name] for name in checks}
    out["returns"] = [float(x) for x in out["returns"]]
    out["recent"] = [float(x) for x in out["recent"]]
    return out


def _local_entries(local: Mapping[str, Any], trainer: Trainer, path: str | Path) -> dict[str, Any]:
    """This process's envs entry of a loaded checkpoint, its arrays checked against the rebuilt
    run's (the observations' shape and dtype, the episode counters')."""
    where = f"{path}: envs"
    saved = local["env_slice"]
    if not (isinstance(saved, list) and len(saved) == 2 and all(_is_int(x) for x in saved)
            and 0 <= saved[0] < saved[1] <= trainer.config.num_envs):
        raise CheckpointError(f"{where}: invalid env_slice {saved!r}")
    out = dict(local)
    count = saved[1] - saved[0]   # this entry's envs (another process count: reset on load)
    for name, like in (("obs", trainer.obs), ("ep_return", trainer.ep_return),
                       ("ep_length", trainer.ep_length)):
        value = from_json(local[name], None, where)
        like = np.asarray(like)
        if not isinstance(value, np.ndarray) or value.shape != (count, *like.shape[1:]) \
                or value.dtype != like.dtype:
            raise CheckpointError(f"{where}: its {name!r} is not {like.dtype}{list(like.shape)}")
        out[name] = value
    if local["snapshot"] is None and not isinstance(local["reset_reason"], str):
        raise CheckpointError(f"{where}: no env snapshot, and no reason given")
    return out


def _weighted_mse(weight: float, y_true: chex.Array, y_pred: chex.Array,
                  w: chex.Array | None = None) -> chex.Array:
    return weight * mse(y_true, y_pred, w)


def _check_known_env(env_id: str, path: str | Path) -> None:
    """Raises :class:`CheckpointError` unless gymnasium can make the saved ``env_id`` here: a
    registered id, or ``module:id`` whose module is already imported (never imported because a
    checkpoint names it)."""
    from ._config import check_env_id

    try:
        check_env_id(env_id, may_import=False)
    except ValueError as err:
        raise CheckpointError(f"{path} is a run on {env_id!r}, which cannot be made here: "
                              f"{err}") from None


def _tuples(config: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}


def normalizing_policy(pi: Policy, normalizer: Normalizer, obs_stats: Any, config: TrainConfig,
                       seed: int, func_pi: Callable | None, params: tuple[Any, Any]) -> Policy:
    """A new :class:`~a2c_jax.Policy` of ``pi``'s network (the preset MLP, or ``func_pi``) holding
    ``params = (params, function_state)``, whose ``observation_preprocessor`` normalises raw
    observations with ``obs_stats``, frozen (:meth:`Normalizer.preprocessor`): what evaluation
    and export use when a run normalises its observations (both engines)."""
    from types import SimpleNamespace

    spaces: Any = SimpleNamespace(observation_space=pi.observation_space,   # what Policy reads
                                  action_space=pi.action_space, spec=None)
    pre = normalizer.preprocessor(obs_stats)
    if func_pi is None:
        out, _ = build_functions(spaces, config, seed, observation_preprocessor=pre)
    else:
        out = Policy(func_pi, spaces, observation_preprocessor=pre, random_seed=seed)
    out.params, out.function_state = jax.device_put(jax.device_get(params))
    return out


def _load_norm(trainer: Trainer, st: Mapping[str, Any], local: Mapping[str, Any],
               path: str | Path) -> NormState:
    """The normalisation state of a loaded checkpoint, in the rebuilt run's structures (a
    checkpoint from before normalisation existed has none: fine while the config uses none)."""
    normalizer = trainer.normalizer
    fresh = normalizer.init(len(trainer.ep_return))
    if not normalizer.active:
        return fresh
    if "normalization" not in st:
        raise CheckpointError(f"{path} is incomplete: its config normalises, and it has no "
                              "'normalization' entry")
    like = jax.device_get({"obs": fresh.obs, "ret": fresh.ret})
    stats = tree_from_state_dict(like, st["normalization"], f"{path}: normalization")
    ret_acc: Any = ()
    if normalizer.reward_on:
        value = local.get("ret_acc")
        value = from_json(value, None, f"{path}: envs") if not isinstance(value, np.ndarray) else value
        if (not isinstance(value, np.ndarray) or value.shape != fresh.ret_acc.shape
                or value.dtype != np.float32):
            raise CheckpointError(f"{path}: envs: its 'ret_acc' is not float32[{len(trainer.ep_return)}]")
        ret_acc = value
    return NormState(obs=stats["obs"], ret=stats["ret"], ret_acc=ret_acc)
