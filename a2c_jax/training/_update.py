"""The update of one rollout, written once: the loop engine calls it as one compiled call per
rollout, the jitted engine inside its ``lax.scan``.

``Learner.update(state, rollout, hparams, key)`` is pure. From a time-major :class:`Rollout` it
computes the values of every observation (the rollout's, the next one and the final observations
of truncated episodes) in one forward pass, the advantages and returns with
:func:`~a2c_jax.reward_tracing.compute_gae` (truncation-aware), and then runs ``n_epochs`` passes
of the fused steps over :func:`minibatches` of the rollout: :class:`~a2c_jax.td_learning.SimpleTD`
first, then the policy objective (:class:`~a2c_jax.policy_objectives.VanillaPG` or
:class:`~a2c_jax.policy_objectives.PPOClip`), or :class:`~a2c_jax.ActorCritic`'s one step over both
when the network is shared. Advantages are normalised per minibatch when the config asks.

The hyperparameters of the updaters (PPO's ``epsilon``, a regularizer's ``beta``, ActorCritic's
``vf_coef``) travel as the traced argument ``hparams`` (:meth:`Learner.hyperparams` reads them
from the updaters), so changing them never recompiles; the config's fields (``gamma``,
``gae_lambda``, sizes, and ``vf_coef`` when it weighs SimpleTD's own loss) are constants of the
compiled program, except those named in ``Learner(traced=...)`` (one of :data:`TRACEABLE`): these
travel in ``hparams["config"]`` too, so one program can run each of a batch of runs with its own
values (``a2c-jax train --engine jit --sweep``; :mod:`a2c_jax.training._sweep` builds the
updaters such a learner needs). With ``traced=()`` (every run but a sweep) nothing changes: the
program is the one with constants.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from .._actor_critic import ActorCritic
from .._core import Policy, V
from ..policy_objectives import PPOClip, VanillaPG
from ..reward_tracing import TransitionBatch, compute_gae
from ..td_learning import SimpleTD
from ..utils._sync import sync_shared_params
from ._presets import TrainConfig

#: the config fields a :class:`Learner` can take as traced values (``hparams["config"]``) instead
#: of constants, and where each acts: the optimizers' injected hyperparameters
#: (``optax.inject_hyperparams``), the updaters' own traced hyperparameters, or GAE
TRACEABLE: dict[str, str] = {
    "learning_rate": "both optimizers' step size",
    "max_grad_norm": "both optimizers' gradient clipping",
    "ent_coef": "the entropy regularizer's beta",
    "vf_coef": "the value loss's weight",
    "clip_epsilon": "PPO's clipping epsilon",
    "gamma": "the discount in GAE",
    "gae_lambda": "GAE's lambda",
    "reward_scale": "the factor on the rewards before GAE",
}
#: the traced fields that live in the optimizers' states
_INJECTED = ("learning_rate", "max_grad_norm")


class LearnerState(NamedTuple):
    """The parameters, function states and optimizer states one update carries (a pytree).

    With a shared network (:class:`~a2c_jax.ActorCritic`) ``pi_opt`` holds the one optimizer
    state over both networks' parameters and ``v_opt`` is empty (``()``).
    """

    pi_params: Any
    pi_state: Any
    pi_opt: Any
    v_params: Any
    v_state: Any
    v_opt: Any


class Rollout(NamedTuple):
    """``T`` vector steps of ``E`` envs, time-major (a pytree of arrays).

    Attributes:
        S: observations ``[T, E, *obs_shape]``.
        A: actions taken ``[T, E, *action_shape]``.
        logP: ``log π(A|S)`` under the policy that acted, ``[T, E]``.
        R: rewards ``[T, E]``.
        terminated: the episode terminated after step ``t``, ``[T, E]`` bool.
        truncated: a time limit cut it after step ``t`` (and it did not terminate), ``[T, E]``.
        final_S: the final observation of the episodes cut at step ``t`` (any value elsewhere),
            ``[T, E, *obs_shape]``.
        S_next: the observation after the last step, ``[E, *obs_shape]``.
    """

    S: chex.Array
    A: chex.Array
    logP: chex.Array
    R: chex.Array
    terminated: chex.Array
    truncated: chex.Array
    final_S: chex.Array
    S_next: chex.Array


class Learner:
    """The pure update of a rollout for one configuration of networks and updaters.

    Args:
        pi, v: the policy and the value function (their pure ``sample_fn``/``values`` are used).
        td: the critic's :class:`~a2c_jax.td_learning.SimpleTD`.
        pg: the policy objective.
        config: the run's :class:`~a2c_jax.training.TrainConfig`.
        ac: the :class:`~a2c_jax.ActorCritic` over ``pg`` and ``td`` when the network is shared
            and trained as one (``config.shared_backbone``), else ``None``.
        sync_shared: average the modules that ``pi`` and ``v`` share after every step (the coax
            recipe's :func:`~a2c_jax.utils.sync_shared_params`); only without ``ac``.
        traced: config fields (keys of :data:`TRACEABLE`) read from ``hparams["config"]`` instead
            of ``config``. The updaters must be built for it: the optimizers with
            ``optax.inject_hyperparams`` for ``learning_rate``/``max_grad_norm``, a regularizer
            for ``ent_coef``, a ``vf_coef`` hyperparameter in ``td`` (or ``ac``) for ``vf_coef``,
            PPO for ``clip_epsilon`` (:func:`a2c_jax.training._sweep.build_traced_learner`).

    Raises:
        ValueError: a ``traced`` field that is not traceable or that the updaters cannot take.
    """

    def __init__(self, pi: Policy, v: V, td: SimpleTD, pg: VanillaPG | PPOClip,
                 config: TrainConfig, ac: ActorCritic | None = None, *,
                 sync_shared: bool = False, traced: Sequence[str] = ()) -> None:
        self.pi, self.v, self.td, self.pg, self.ac = pi, v, td, pg, ac
        self.config = config
        self.sync_shared = sync_shared and ac is None
        #: the config fields that travel traced in ``hparams["config"]`` (empty: all constants)
        self.traced = tuple(traced)
        self._check_traced()

    def _check_traced(self) -> None:
        """Raises ``ValueError`` for a traced field the updaters were not built to take."""
        policy = self.hyperparams().get("ac", {}).get("policy") or self.pg.hyperparams
        needs = {"ent_coef": ("beta" in policy["regularizer"], "an entropy regularizer"),
                 "clip_epsilon": ("epsilon" in policy["objective"], "PPO's objective"),
                 "vf_coef": ("vf_coef" in (self.td if self.ac is None else self.ac).hyperparams,
                             "a vf_coef hyperparameter in the critic's updater")}
        for name in self.traced:
            if name not in TRACEABLE:
                raise ValueError(f"{name} cannot be traced; these can: {', '.join(TRACEABLE)}")
            if name in needs and not needs[name][0]:
                raise ValueError(f"a traced {name} needs {needs[name][1]}")
            if name in _INJECTED:
                pairs = ([(self.ac, self.ac.params)] if self.ac is not None
                         else [(self.td, self.v.params), (self.pg, self.pi.params)])
                for updater, params in pairs:
                    opt = jax.eval_shape(updater.init_optimizer_state, params)
                    if not any(name in n.hyperparams for n in _inject_nodes(opt)):
                        raise ValueError(f"a traced {name} needs optimizers built with "
                                         f"optax.inject_hyperparams({name}=...)")

    # ---- state and hyperparameters --------------------------------------------------------------

    def init(self, pi_params: Any, pi_state: Any, v_params: Any, v_state: Any) -> LearnerState:
        """Pure: the state of a fresh run from the networks' initial parameters and states."""
        if self.ac is None:
            pi_opt = self.pg.init_optimizer_state(pi_params)
            v_opt = self.td.init_optimizer_state(v_params)
        else:
            pi_opt, v_opt = self.ac.init_optimizer_state(self.ac.join(pi_params, v_params)), ()
        return LearnerState(pi_params, pi_state, pi_opt, v_params, v_state, v_opt)

    def hyperparams(self) -> dict[str, Any]:
        """The updaters' traced hyperparameters as they are now (a pytree of scalars), and the
        :attr:`traced` config fields under ``"config"`` (these win over the updaters' own)."""
        out: dict[str, Any] = ({"ac": self.ac.hyperparams} if self.ac is not None
                               else {"td": self.td.hyperparams, "pg": self.pg.hyperparams})
        if self.traced:
            out["config"] = {name: getattr(self.config, name) for name in self.traced}
        return out

    def _placed(self, hparams: dict[str, Any]) -> dict[str, Any]:
        """``hparams`` with the traced config fields copied to where the updaters read them."""
        cfg = hparams.get("config", {})
        if not cfg:
            return hparams
        hp = jax.tree.map(lambda x: x, hparams)      # new containers, the same leaves
        if self.ac is not None:
            policy, critic = hp["ac"]["policy"], hp["ac"]
        else:
            policy, critic = hp["pg"], hp["td"]
        if "ent_coef" in cfg:
            policy["regularizer"]["beta"] = cfg["ent_coef"]
        if "clip_epsilon" in cfg:
            policy["objective"]["epsilon"] = cfg["clip_epsilon"]
        if "vf_coef" in cfg:
            critic["vf_coef"] = cfg["vf_coef"]
        return hp

    # ---- the update ---------------------------------------------------------------------------

    def advantages(self, state: LearnerState, rollout: Rollout, key: chex.PRNGKey,
                   hparams: dict[str, Any] | None = None) -> tuple[chex.Array, chex.Array]:
        """Pure: ``(advantages, returns)``, each ``[T, E]``, from one value pass and GAE
        (``gamma``, ``gae_lambda`` and ``reward_scale`` from ``hparams["config"]`` when traced,
        else the config's constants)."""
        cfg = (hparams or {}).get("config", {})
        gamma = cfg.get("gamma", self.config.gamma)
        lam = cfg.get("gae_lambda", self.config.gae_lambda)
        reward_scale = cfg.get("reward_scale", self.config.reward_scale)
        T, E = rollout.R.shape
        # env-major [E, 2T + 1, ...]: flattened, each device's envs stay one contiguous block when
        # the envs are sharded, so no observation moves between devices
        env_major = functools.partial(jnp.swapaxes, axis1=0, axis2=1)
        obs = jnp.concatenate([env_major(rollout.S), rollout.S_next[:, None],
                               env_major(rollout.final_S)], axis=1)
        values = self.v.values(state.v_params, state.v_state, key,
                               obs.reshape(E * (2 * T + 1), *obs.shape[2:])).reshape(E, 2 * T + 1)
        return compute_gae(rollout.R * reward_scale, values[:, :T].T, values[:, T],
                           rollout.terminated, gamma=gamma, lam=lam,
                           truncated=rollout.truncated, final_values=values[:, T + 1:].T)

    def update(self, state: LearnerState, rollout: Rollout, hparams: dict[str, Any],
               key: chex.PRNGKey) -> tuple[LearnerState, dict[str, chex.Array]]:
        """Pure: the state after the rollout's updates, and the metrics of its last step.

        A2C (one epoch, the whole rollout as the batch): one step of each updater. PPO:
        ``n_epochs`` passes over :func:`minibatches` of ``batch_size``. ``*/skipped`` is 1 if any
        step of the rollout was skipped (a non-finite loss or gradient).
        """
        c = self.config
        k_v, k_mb = jax.random.split(key)
        adv, ret = self.advantages(state, rollout, k_v, hparams)
        injected = {k: v for k, v in hparams.get("config", {}).items() if k in _INJECTED}
        if injected:  # the optimizers read these from their states
            state = state._replace(pi_opt=set_injected(state.pi_opt, injected),
                                   v_opt=set_injected(state.v_opt, injected))
        hparams = self._placed(hparams)
        env_major = functools.partial(jnp.swapaxes, axis1=0, axis2=1)
        T, E = rollout.R.shape
        # env-major [E, T, ...] from here on: flattened, each device's envs stay one contiguous
        # block when the envs are sharded, so nothing has to move between devices
        S, A, logP = env_major(rollout.S), env_major(rollout.A), env_major(rollout.logP)
        ones = jnp.ones((E, T), jnp.float32)
        batch = TransitionBatch(S=S, A=A, logP=logP, Rn=env_major(ret).astype(jnp.float32),
                                In=jnp.zeros((E, T), jnp.float32), S_next=S, A_next=A,
                                logP_next=logP, W=ones,
                                idx=jnp.arange(E * T, dtype=jnp.int32).reshape(E, T))
        data = (batch, env_major(adv).astype(jnp.float32))
        n = E * T
        size = min(c.batch_size or n, n)
        step = functools.partial(self._minibatch, hparams)
        if size == n and c.n_epochs <= 1:  # A2C: the whole rollout, one step each
            return step(state, (*jax.tree.map(_merge2, data), k_mb))
        num_mb = n // size

        def epoch(state: LearnerState,
                  k: chex.PRNGKey) -> tuple[LearnerState, dict[str, chex.Array]]:
            k_perm, k_steps = jax.random.split(k)
            mbs = minibatches(data, k_perm, size)
            state, metrics = jax.lax.scan(step, state, (*mbs, jax.random.split(k_steps, num_mb)))
            return state, _last(metrics)

        state, metrics = jax.lax.scan(epoch, state, jax.random.split(k_mb, max(1, c.n_epochs)))
        return state, _last(metrics)

    def _minibatch(self, hparams: dict[str, Any], state: LearnerState,
                   xs: tuple[TransitionBatch, chex.Array, chex.PRNGKey],
                   ) -> tuple[LearnerState, dict[str, chex.Array]]:
        """The fused steps on one minibatch: the critic's, then the policy's (or ActorCritic's)."""
        batch, adv, key = xs
        if self.config.normalize_advantage:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        ac = self.ac
        if ac is not None:  # one step on the union of both networks' params
            params, opt, fstate, _, metrics, _ = ac.step_with_state(
                ac.join(state.pi_params, state.v_params), state.pi_opt,
                ac.join(state.pi_state, state.v_state), hparams["ac"], key, batch, adv, None, None)
            (pi_params, v_params), (pi_state, v_state) = ac.split(params), ac.split_state(fstate)
            return LearnerState(pi_params, pi_state, opt, v_params, v_state, ()), metrics
        k_td, k_pg = jax.random.split(key)
        v_params, v_opt, v_state, _, m_v, _ = self.td.step_with_state(
            state.v_params, state.v_opt, state.v_state, hparams["td"], k_td, batch, None, None)
        pi_params, pi_opt, pi_state, _, m_pi, _ = self.pg.step_with_state(
            state.pi_params, state.pi_opt, state.pi_state, hparams["pg"], k_pg, batch, adv)
        if self.sync_shared:  # as the coax recipe does after every batch
            pi_params, v_params = sync_shared_params(pi_params, v_params)
        return LearnerState(pi_params, pi_state, pi_opt, v_params, v_state, v_opt), {**m_v, **m_pi}


def _is_inject(x: Any) -> bool:
    return isinstance(x, (optax.InjectHyperparamsState, optax.InjectStatefulHyperparamsState))


def _inject_nodes(opt_state: Any) -> list[Any]:
    """The ``optax.inject_hyperparams`` states within an optimizer state."""
    return [x for x in jax.tree.leaves(opt_state, is_leaf=_is_inject) if _is_inject(x)]


def set_injected(opt_state: Any, values: dict[str, Any]) -> Any:
    """Pure: ``opt_state`` with the ``optax.inject_hyperparams`` entries named in ``values`` set
    to them (cast to the entries' dtypes); states without such entries are returned as they are.
    """
    def put(x: Any) -> Any:
        if not _is_inject(x):
            return x
        hp = {k: (jnp.asarray(values[k], jnp.result_type(v)) if k in values else v)
              for k, v in x.hyperparams.items()}
        return x._replace(hyperparams=hp)

    return jax.tree.map(put, opt_state, is_leaf=_is_inject)


def minibatches(tree: Any, key: chex.PRNGKey, size: int) -> Any:
    """Pure: one epoch's minibatches of ``size`` from ``tree``'s env-major ``[E, T, ...]`` leaves,
    stacked: ``[n // size, size, ...]`` (``n = E * T``; a remainder is dropped).

    Stratified by env when ``size`` divides ``n`` and the number of minibatches divides ``T``:
    each env's steps are shuffled and minibatch ``m`` holds slice ``m`` of every env's steps, env
    by env, so a device's share of every minibatch comes from its own envs. Otherwise the
    minibatches come from one shuffle of all ``n`` steps. Both engines use this one function.
    """
    E, T = jax.tree.leaves(tree)[0].shape[:2]
    n = E * T
    num_mb = n // size
    if n % size == 0 and T % num_mb == 0:
        order = jax.vmap(jax.random.permutation, (0, None))(jax.random.split(key, E), T)

        def split(x: chex.Array) -> chex.Array:
            x = jnp.take_along_axis(x, order.reshape(E, T, *[1] * (x.ndim - 2)), axis=1)
            x = x.reshape(E, num_mb, T // num_mb, *x.shape[2:])
            return _merge2(jnp.swapaxes(x, 0, 1), start=1)
    else:
        order = jax.random.permutation(key, n)[:num_mb * size].reshape(num_mb, size)

        def split(x: chex.Array) -> chex.Array:
            return _merge2(x)[order]
    return jax.tree.map(split, tree)


def _merge2(x: chex.Array, start: int = 0) -> chex.Array:
    """``x`` with its axes ``start`` and ``start + 1`` merged into one."""
    return x.reshape(*x.shape[:start], -1, *x.shape[start + 2:])


def _last(metrics: dict[str, chex.Array]) -> dict[str, chex.Array]:
    """The metrics of the last minibatch, except ``*/skipped``: 1 if any step was skipped."""
    return {k: jnp.max(m) if k.endswith("/skipped") else m[-1] for k, m in metrics.items()}

