"""Synchronous A2C / PPO over gymnasium vector envs, composed from the library's pure pieces.

The rollout is ``n_steps`` vector steps of ``num_envs`` envs (one jitted policy call per vector
step); the values of every observation of the rollout, of the next observation and of the final
observations of truncated episodes come from one jitted value call; advantages are
:func:`~a2c_jax.reward_tracing.compute_gae` (truncation-aware); the updates are the fused steps of
:class:`~a2c_jax.td_learning.SimpleTD` (regressing onto the GAE returns) and
:class:`~a2c_jax.policy_objectives.VanillaPG` or :class:`~a2c_jax.policy_objectives.PPOClip`
(with an entropy bonus), or, with ``shared_backbone``, :class:`~a2c_jax.ActorCritic`'s one step
over both. No second copy of the maths.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from collections import deque
from pathlib import Path
from typing import Any

import gymnasium
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._actor_critic import ActorCritic
from .._core import Policy, V
from ..policy_objectives import PPOClip, VanillaPG
from ..regularizers import EntropyRegularizer
from ..reward_tracing import TransitionBatch, compute_gae
from ..td_learning import SimpleTD
from ..utils._checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..utils._evaluate import evaluate_greedy
from ..value_losses import mse
from ._presets import TrainConfig

_ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}
# seeds are 0 .. 2**32 - 1: gymnasium refuses negative ones, and Policy/V reduce theirs modulo 2**32
MAX_SEED = 2**32 - 1


def make_vector_env(env_id: str, num_envs: int, asynchronous: bool = False):
    """``num_envs`` copies of ``env_id`` with gymnasium's same-step autoreset.

    Same-step autoreset returns the first observation of the next episode at once and puts the
    final observation in ``info["final_obs"]``, which the trainer bootstraps truncations from.
    """
    # the passive env checker only inspects the first steps; without it every step is one call
    # shorter
    fns = [functools.partial(gymnasium.make, env_id, disable_env_checker=True)
           for _ in range(num_envs)]
    mode = gymnasium.vector.AutoresetMode.SAME_STEP
    if asynchronous:  # spawned workers: forking a process that runs JAX's threads can deadlock
        return gymnasium.vector.AsyncVectorEnv(fns, autoreset_mode=mode, context="spawn")
    return gymnasium.vector.SyncVectorEnv(fns, autoreset_mode=mode)


def _mlp(sizes, activation, name):
    layers = []
    for i, n in enumerate(sizes):
        layers += [hk.Linear(n, name=f"{name}_{i}"), _ACTIVATIONS[activation]]
    return hk.Sequential(layers)


OBSERVATION_SPACES = (gymnasium.spaces.Box, gymnasium.spaces.Discrete, gymnasium.spaces.MultiBinary)
ACTION_SPACES = (gymnasium.spaces.Box, gymnasium.spaces.Discrete)


def _names(types) -> str:
    names = [t.__name__ for t in types]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def check_spaces(env: gymnasium.Env, env_id: str | None = None) -> None:
    """Raises ``TypeError`` naming the space unless the trainer's MLPs support ``env``'s spaces.

    Observations must come as one array per env (``Box``; ``Discrete``, one-hot encoded;
    ``MultiBinary``), not as ``Tuple``/``Dict`` structures; actions must be ``Discrete`` or
    ``Box`` (the policies' categorical and Gaussian distributions).
    """
    name = env_id or (env.spec.id if getattr(env, "spec", None) else "the env")
    for kind, space, ok in (("observation", env.observation_space, OBSERVATION_SPACES),
                            ("action", env.action_space, ACTION_SPACES)):
        if not isinstance(space, ok):
            raise TypeError(
                f"{name} has the {kind} space {space!r}, which the trainer does not support "
                f"(observations: {_names(OBSERVATION_SPACES)}; actions: {_names(ACTION_SPACES)})")


def build_functions(env: gymnasium.Env, config: TrainConfig, seed: int) -> tuple[Policy, V]:
    """Separate actor and critic MLPs (SB3's default layout) as a Policy and a V.

    With ``config.shared_backbone`` the hidden layers are one torso that both use (modules
    ``torso_0``, ``torso_1``, ...; heads ``pi_out`` and ``v_out``). Both initialise from the same
    key, so they start with the same torso.

    Raises:
        TypeError: an observation or action space the MLPs do not support (see
            :func:`check_spaces`; the message names the space).
    """
    check_spaces(env)
    hidden, act = config.hidden, config.activation
    space = env.action_space
    v_body, pi_body = ("torso", "torso") if config.shared_backbone else ("v", "pi")

    def func_v(S, is_training):
        X = _mlp(hidden, act, v_body)(S.reshape(S.shape[0], -1))
        return hk.Linear(1, name="v_out")(X)[:, 0]

    def func_pi(S, is_training):
        X = _mlp(hidden, act, pi_body)(S.reshape(S.shape[0], -1))
        small = hk.initializers.VarianceScaling(0.01)
        if isinstance(space, gymnasium.spaces.Discrete):
            return {"logits": hk.Linear(int(space.n), w_init=small, name="pi_out")(X)}
        size = int(np.prod(space.shape))
        mu = hk.Linear(size, w_init=small, name="pi_out")(X).reshape(-1, *space.shape)
        logvar = hk.get_parameter("logvar", space.shape, init=jnp.zeros)
        return {"mu": mu, "logvar": jnp.broadcast_to(logvar, mu.shape)}

    return Policy(func_pi, env, random_seed=seed), V(func_v, env, random_seed=seed)


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


class Trainer:
    """One training run: envs, approximators, updaters, counters; resumable from a checkpoint."""

    def __init__(self, env_id: str, config: TrainConfig, seed: int = 0,
                 asynchronous: bool = False):
        self.env_id, self.config, self.seed = env_id, config, seed
        self.asynchronous = asynchronous
        probe = gymnasium.make(env_id)
        self.reward_threshold = probe.spec.reward_threshold if probe.spec else None
        self.pi, self.v = build_functions(probe, config, seed)
        probe.close()
        self.td, self.pg = build_updaters(self.pi, self.v, config)
        #: the one updater of both with ``config.shared_backbone`` (else None: td and pg update)
        self.ac = build_actor_critic(self.td, self.pg, config)
        self.envs = make_vector_env(env_id, config.num_envs, asynchronous)
        self.obs, _ = self.envs.reset(seed=seed)
        self._np_rng = np.random.default_rng(seed)
        K = config.num_envs
        self.ep_return, self.ep_length = np.zeros(K), np.zeros(K, np.int64)
        self.returns: list[float] = []   # every finished episode, in order
        self.ends: list[int] = []        # the env step at which each one finished
        self.recent: deque = deque(maxlen=100)
        self.env_steps = self.updates = 0
        self.solved_at_step: int | None = None
        self.train_seconds = 0.0

    # ---- one rollout and its updates ----------------------------------------------------------

    @functools.cached_property
    def _advantages(self):
        c, v = self.config, self.v
        T, K = c.n_steps, c.num_envs

        def advantages(params, state, rng, S_all, R, term, trunc):
            values = v.values(params, state, rng, S_all)
            V, next_value, finals = values[:T * K], values[T * K:T * K + K], values[T * K + K:]
            return compute_gae(R, V.reshape(T, K), next_value, term, gamma=c.gamma,
                               lam=c.gae_lambda, truncated=trunc, final_values=finals.reshape(T, K))

        return jax.jit(advantages)

    def _rollout(self):
        K, T = self.config.num_envs, self.config.n_steps
        obs_shape = self.obs.shape[1:]
        S = np.zeros((T, K, *obs_shape), self.obs.dtype)
        finals = np.zeros_like(S)
        A, logP = [], np.zeros((T, K), np.float32)
        R, term, trunc = (np.zeros((T, K), np.float32) for _ in range(3))
        for t in range(T):
            S[t] = self.obs
            a, logp = self.pi.batch(self.obs, return_logp=True)
            obs, r, te, tr, info = self.envs.step(a)
            A.append(a)
            logP[t], R[t], term[t], trunc[t] = logp, r, te, tr & ~te
            if "_final_obs" in info:
                for k in np.flatnonzero(info["_final_obs"]):
                    finals[t, k] = info["final_obs"][k]
            self._count(r, te | tr)
            self.obs = obs
        return S, np.stack(A), logP, R, term, trunc, finals

    def _count(self, rewards, ended):
        self.ep_return += rewards
        self.ep_length += 1
        self.env_steps += len(rewards)
        for k in np.flatnonzero(ended):
            self.returns.append(float(self.ep_return[k]))
            self.ends.append(self.env_steps)
            self.recent.append(float(self.ep_return[k]))
            self.ep_return[k], self.ep_length[k] = 0.0, 0
            if (self.solved_at_step is None and self.reward_threshold is not None
                    and len(self.recent) == 100 and np.mean(self.recent) >= self.reward_threshold):
                self.solved_at_step = self.env_steps

    def _update(self, S, A, logP, R, term, trunc, finals):
        c = self.config
        T, K = R.shape
        flat = S.reshape(T * K, *S.shape[2:])
        # the values of the rollout, of the next observation and of the truncations' final
        # observations, and GAE on them: one compiled call
        adv, ret = self._advantages(self.v.params, self.v.function_state, self.v._key,
                                    np.concatenate([flat, self.obs, finals.reshape(flat.shape)]),
                                    R * c.reward_scale, term, trunc)
        adv, ret = np.asarray(adv).reshape(-1), np.asarray(ret).reshape(-1)
        n = T * K
        A_flat = A.reshape(n, *A.shape[2:])
        batch = TransitionBatch(S=flat, A=A_flat, logP=logP.reshape(-1), Rn=ret.astype(np.float32),
                                In=np.zeros(n, np.float32), S_next=flat, A_next=A_flat,
                                logP_next=logP.reshape(-1), W=np.ones(n, np.float32),
                                idx=np.arange(n, dtype=np.int32))
        size = min(c.batch_size or n, n)
        for _ in range(max(1, c.n_epochs)):
            order = self._np_rng.permutation(n) if size < n else None
            for start in range(0, n - size + 1, size):
                if order is None:  # the whole rollout is the batch
                    mb, a = batch, adv
                else:
                    idx = order[start:start + size]
                    mb, a = jax.tree.map(lambda x, idx=idx: x[idx], batch), adv[idx]
                if c.normalize_advantage:
                    a = (a - a.mean()) / (a.std() + 1e-8)
                if self.ac is not None:  # one step on both; its metrics hold both parts'
                    m_v = m_pi = self.ac.update(mb, a.astype(np.float32))
                else:
                    m_v = self.td.update(mb)
                    m_pi = self.pg.update(mb, a.astype(np.float32))
        self.updates += 1
        return m_v, m_pi

    # ---- the run ------------------------------------------------------------------------------

    def run(self, total_steps: int, progress: bool = True, on_rollout=None) -> None:
        """Trains until ``env_steps >= total_steps`` (whole rollouts).

        ``on_rollout(trainer, m_v, m_pi)`` after each rollout's updates, with the metrics of the
        last value and policy steps (with ``shared_backbone``, ``m_v`` and ``m_pi`` are the same
        :class:`~a2c_jax.ActorCritic` metrics).
        """
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=min(self.env_steps, total_steps), unit="step",
                   disable=not progress, desc=f"{self.env_id} {self.config.algo}", mininterval=0.5)
        t0 = time.perf_counter()
        try:
            while self.env_steps < total_steps:
                before = self.env_steps
                rollout = self._rollout()
                m_v, m_pi = self._update(*rollout)
                bar.update(self.env_steps - before)
                if self.recent:
                    bar.set_postfix(mean100=f"{np.mean(self.recent):.1f}", refresh=False)
                if on_rollout is not None:
                    on_rollout(self, m_v, m_pi)
        finally:
            self.train_seconds += time.perf_counter() - t0
            bar.close()

    def evaluate(self, episodes: int | None = None) -> float:
        """Mean return of the greedy policy (``pi.mode``) over fresh episodes."""
        return evaluate_greedy(self.pi, self.env_id, episodes or self.config.eval_episodes,
                               first_seed=1_000_000 + 1000 * self.seed)

    def summary(self, engine: str = "loop") -> dict[str, Any]:
        return {
            "env": self.env_id, "algo": self.config.algo, "engine": engine, "seed": self.seed,
            "num_envs": self.config.num_envs, "env_steps": self.env_steps,
            "wall_s": round(self.train_seconds, 3),
            "steps_per_s": round(self.env_steps / max(self.train_seconds, 1e-9), 1),
            "solved_at_step": self.solved_at_step,
            "final_mean_return": float(np.mean(self.recent)) if self.recent else None,
            "episodes": len(self.returns), "updates": self.updates,
            "reward_threshold": self.reward_threshold,
            "config": dataclasses.asdict(self.config),
        }

    # ---- checkpoints --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id, "seed": self.seed, "config": dataclasses.asdict(self.config),
            "pi": {"params": self.pi.params, "state": self.pi.function_state, "key": self.pi._key},
            "v": {"params": self.v.params, "state": self.v.function_state, "key": self.v._key},
            "td": {"opt": self.td.optimizer_state, "key": self.td._key},
            "pg": {"opt": self.pg.optimizer_state, "key": self.pg._key},
            "ac": None if self.ac is None else {"opt": self.ac.optimizer_state,
                                                "key": self.ac._key},
            "envs": None if self.asynchronous else self.envs, "obs": self.obs,
            "np_rng": self._np_rng.bit_generator.state,
            "ep_return": self.ep_return, "ep_length": self.ep_length, "returns": self.returns,
            "ends": self.ends, "recent": list(self.recent), "env_steps": self.env_steps,
            "updates": self.updates, "solved_at_step": self.solved_at_step,
            "train_seconds": self.train_seconds,
        }

    def save(self, path: str | Path) -> Path:
        """Writes the run's full state atomically (see :func:`a2c_jax.utils.save_checkpoint`)."""
        return save_checkpoint(path, self.state_dict())

    @classmethod
    def load(cls, path: str | Path, asynchronous: bool = False) -> Trainer:
        """Rebuilds a run from :meth:`save`'s checkpoint, ready to continue.

        With synchronous envs the envs themselves are restored, so a resumed run continues
        exactly as an uninterrupted one would. Asynchronous envs cannot be saved; they restart
        from a reset seeded by the step count.
        """
        st = load_checkpoint(path)
        if st.get("engine") == "jit":
            raise CheckpointError(f"{path} was written by --engine jit; resume it with --engine jit")
        _check_entries(st, _STATE_ENTRIES, path)
        seed = st["seed"]
        if (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                or not 0 <= seed <= MAX_SEED):
            raise CheckpointError(f"{path} has an invalid seed {seed!r}")
        if st["env_id"] not in gymnasium.registry:
            raise CheckpointError(f"{path} is a run on {st['env_id']!r}, an env gymnasium does "
                                  "not know here")
        try:
            trainer = cls(st["env_id"], TrainConfig(**_tuples(st["config"])), st["seed"],
                          asynchronous=asynchronous)
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{path} has an invalid config or seed: {err}") from None
        put = jax.device_put
        try:  # the setters check tree structure and leaf shapes against the rebuilt networks
            trainer.pi.params, trainer.pi.function_state = (put(st["pi"]["params"]),
                                                            put(st["pi"]["state"]))
            trainer.v.params, trainer.v.function_state = (put(st["v"]["params"]),
                                                          put(st["v"]["state"]))
        except (TypeError, ValueError) as err:
            trainer.close()
            raise CheckpointError(f"{path}: the saved parameters do not fit the run's networks "
                                  f"({err})") from None
        trainer.pi._key, trainer.v._key = put(st["pi"]["key"]), put(st["v"]["key"])
        trainer.td.optimizer_state, trainer.td._key = put(st["td"]["opt"]), put(st["td"]["key"])
        trainer.pg.optimizer_state, trainer.pg._key = put(st["pg"]["opt"]), put(st["pg"]["key"])
        if trainer.ac is not None:
            ac = st.get("ac")
            if not isinstance(ac, dict) or not {"opt", "key"} <= set(ac):
                trainer.close()
                raise CheckpointError(f"{path} is a shared_backbone run without the state of its "
                                      "ActorCritic ('ac': opt, key)")
            try:
                trainer.ac.optimizer_state = put(ac["opt"])
            except (TypeError, ValueError) as err:
                trainer.close()
                raise CheckpointError(f"{path}: the saved ActorCritic optimizer state does not "
                                      f"fit the run's networks ({err})") from None
            trainer.ac._key = put(ac["key"])
        if st["envs"] is not None and not asynchronous:
            trainer.envs.close()
            trainer.envs, trainer.obs = st["envs"], st["obs"]
        else:
            trainer.obs, _ = trainer.envs.reset(seed=st["seed"] + st["env_steps"])
        trainer._np_rng.bit_generator.state = st["np_rng"]
        trainer.ep_return, trainer.ep_length = st["ep_return"], st["ep_length"]
        trainer.returns, trainer.ends = list(st["returns"]), list(st["ends"])
        trainer.recent.extend(st["recent"])
        trainer.env_steps, trainer.updates = st["env_steps"], st["updates"]
        trainer.solved_at_step, trainer.train_seconds = st["solved_at_step"], st["train_seconds"]
        return trainer

    def close(self) -> None:
        self.envs.close()


# the entries of Trainer.state_dict that Trainer.load reads (a nested dict lists sub-entries)
_STATE_ENTRIES = {
    "env_id": None, "seed": None, "config": None,
    "pi": {"params": None, "state": None, "key": None},
    "v": {"params": None, "state": None, "key": None},
    "td": {"opt": None, "key": None}, "pg": {"opt": None, "key": None},
    "envs": None, "obs": None, "np_rng": None, "ep_return": None, "ep_length": None,
    "returns": None, "ends": None, "recent": None, "env_steps": None, "updates": None,
    "solved_at_step": None, "train_seconds": None,
}


def _check_entries(st, spec: dict, path, prefix: str = "") -> None:
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


def _weighted_mse(weight, y_true, y_pred, w=None):
    return weight * mse(y_true, y_pred, w)


def _tuples(config: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}


def plot_learning_curve(trainer: Trainer, path: Path) -> None:
    """Mean return of the last 100 episodes against env steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = np.asarray(trainer.returns)
    fig, ax = plt.subplots(figsize=(7, 4))
    if len(r):
        mean100 = [r[max(0, i - 99): i + 1].mean() for i in range(len(r))]
        ax.plot(trainer.ends, mean100, label="mean of the last 100 episodes")
        ax.plot(trainer.ends, r, ".", ms=2, alpha=0.3, label="episode return")
    if trainer.reward_threshold is not None:
        ax.axhline(trainer.reward_threshold, color="grey", ls="--", lw=0.8, label="threshold")
    ax.set(xlabel="env steps", ylabel="return",
           title=f"{trainer.env_id}, {trainer.config.algo}, seed {trainer.seed}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(path: Path, data: Any) -> None:
    """Writes JSON atomically (temporary file, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default))
    tmp.replace(path)


def _json_default(x):
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    if isinstance(x, float) and math.isnan(x):
        return None
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
