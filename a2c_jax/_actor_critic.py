"""One optimizer step on the actor's and the critic's losses together (a shared torso)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import optax

from ._core import Policy, V
from ._core._ownership import held_once
from ._core._updater import BaseUpdater, global_norm
from .policy_objectives import PolicyObjective
from .reward_tracing import TransitionBatch
from .td_learning import SimpleTD
from .utils._metrics import Metrics
from .utils._sync import _top_level, first_differing_module, module_signature
from .utils._trees import check_same_tree, copy_tree


def _check_shared(pi_tree: Mapping[str, Any], v_tree: Mapping[str, Any], what: str) -> None:
    """Raises ``ValueError`` naming the first top-level module that ``pi_tree`` and ``v_tree``
    both hold with different parameter names, shapes or dtypes."""
    shared = sorted({_top_level(k) for k in pi_tree} & {_top_level(k) for k in v_tree})
    found = first_differing_module((pi_tree, v_tree), shared, scope=True, dtypes=True)
    if found is not None:
        top = found[0]
        sig = [module_signature(t, top, scope=True, dtypes=True) for t in (pi_tree, v_tree)]
        raise ValueError(
            f"ActorCritic: the policy and the value function both have a {what} module "
            f"{top!r}, but with different structure or shapes:\n  pi: {sig[0]}\n  v:  {sig[1]}"
            "\na module they share must be the same module; name-scope the heads (e.g. "
            "hk.experimental.name_scope('pi')) so that only the torso shares a name")


class _Union:
    """``pi`` and ``v`` seen as one function approximator, for :class:`BaseUpdater`.

    Its ``params`` (and ``function_state``) are the union of the two Haiku dicts: a top-level
    module held by both appears once, with the *policy's* values. A read-only view with what an
    updater reads of its function (:class:`~a2c_jax._core._updater.Approximator`), not a
    ``BaseFunc``: there is nothing to transform or initialise. ActorCritic writes the parts back
    to ``pi`` and ``v`` itself.
    """

    def __init__(self, pi: Policy, v: V):
        _check_shared(pi.params, v.params, "parameter")
        _check_shared(pi.function_state, v.function_state, "state")
        self.pi, self.v = pi, v
        self.random_seed = pi.random_seed
        self.uses_rng = pi.uses_rng or v.uses_rng
        self._keys = {"params": (tuple(pi.params), tuple(v.params)),
                      "state": (tuple(pi.function_state), tuple(v.function_state))}
        # one set of parameters from the start: v takes the policy's copy of every shared module
        # (its own arrays, so that the steps may donate either)
        for attr in ("_params", "_function_state"):
            pi_tree, v_tree = getattr(pi, attr), getattr(v, attr)
            shared = {k: pi_tree[k] for k in v_tree if k in pi_tree}
            if shared:
                setattr(v, attr, {**v_tree, **copy_tree(shared)})

    @property
    def params(self) -> dict:
        return {**self.v._params, **self.pi._params}

    @property
    def function_state(self) -> dict:
        return {**self.v._function_state, **self.pi._function_state}

    def parts(self, tree: dict, kind: str = "params") -> tuple[dict, dict]:
        """``(pi's part, v's part)`` of a union dict; shared modules go to both."""
        pi_keys, v_keys = self._keys[kind]
        return {k: tree[k] for k in pi_keys}, {k: tree[k] for k in v_keys}

    def __repr__(self) -> str:
        return f"_Union(pi={self.pi!r}, v={self.v!r})"


def default_optimizer() -> optax.GradientTransformation:
    """Seed 000's optimizer: the global gradient norm clipped at 0.5, then torch's
    ``RMSprop(lr=7e-4, alpha=0.99, eps=1e-5)``, which adds ``eps`` outside the square root."""
    return optax.chain(optax.clip_by_global_norm(0.5),
                       optax.rmsprop(7e-4, decay=0.99, eps=1e-5, eps_in_sqrt=False))


class ActorCritic(BaseUpdater):
    """Updates a policy and a value function with one optimizer step on their summed loss.

    The loss is ``policy loss + regularizer penalty + vf_coef * value loss``: the policy
    objective's loss (:meth:`PolicyObjective.loss_fn <a2c_jax.policy_objectives.PolicyObjective.loss_fn>`,
    regularizer included) plus ``vf_coef`` times the TD learner's
    (:meth:`SimpleTD.loss_fn <a2c_jax.td_learning.SimpleTD.loss_fn>`). It is minimised over the
    *union* of ``pi.params`` and ``v.params``: a top-level Haiku module present in both (a shared
    torso) is one set of parameters, whose gradient is the sum of both losses' gradients, and after
    each step ``pi`` and ``v`` hold the same values for it. This is the agent of seed 000
    (``A2CAgent``: one network with two heads, one RMSprop, ``p_loss + 0.5 * v_loss - 0.01 * H``).

    Which copy counts. At construction ``v`` takes ``pi``'s values of every shared module (so
    ``v(s)`` and the advantages computed before the first step already use the torso that is
    trained); from then on every step writes the same values to both. Set ``ac.params`` to change
    both.

    The value target. The TD learner regresses ``v(S)`` on ``G = Rn + In * v(S_next)``. For GAE
    returns (seed 000), pass a batch with ``Rn = returns`` and ``In = 0``: the value loss is then
    exactly ``loss_function(returns, v(S))``, e.g. ``huber(returns, v(S))``::

        adv, ret = a2c_jax.reward_tracing.compute_gae(R, values, next_value, dones)
        batch = TransitionBatch(S=S, A=A, logP=logP, Rn=ret, In=zeros, S_next=S, A_next=A,
                                logP_next=logP, W=ones, idx=arange)
        ac.update(batch, (adv - adv.mean()) / (adv.std(ddof=1) + 1e-8))

    Only the objects' *losses* are used: their own optimizers and optimizer states are not (the
    one optimizer here replaces them). Hyperparameters (``vf_coef``, the objective's and the
    regularizer's) are traced, so changing them does not recompile. The step is
    :class:`~a2c_jax._core._updater.BaseUpdater`'s: fused, jitted once, donating, skipped when
    the loss or a gradient is not finite (``ActorCritic/skipped`` is then 1).

    Metrics: ``ActorCritic/loss`` (the total), ``ActorCritic/grads_norm``,
    ``ActorCritic/skipped``, and the parts' own, under their own names: e.g. ``VanillaPG/loss``
    (policy loss with the penalty), ``VanillaPG/entropy``, ``SimpleTD/loss`` (the value loss,
    before ``vf_coef``), ``SimpleTD/td_error``, ``SimpleTD/value``.

    Args:
        policy_objective: e.g. :class:`~a2c_jax.policy_objectives.VanillaPG` (with a regularizer).
        td_learning: a :class:`~a2c_jax.td_learning.SimpleTD` (its ``v_targ``, if any, is used
            in the target).
        optimizer: an optax optimizer over all parameters; default seed 000's,
            ``optax.chain(optax.clip_by_global_norm(0.5), optax.rmsprop(7e-4, decay=0.99,
            eps=1e-5, eps_in_sqrt=False))`` (torch's RMSprop adds ``eps`` outside the square
            root).
        vf_coef: the value loss's weight, finite and ``>= 0``; may be changed later
            (``ac.vf_coef = 1.0``) without recompiling.

    Raises:
        TypeError: ``policy_objective`` is not a :class:`PolicyObjective` or ``td_learning`` not
            a :class:`SimpleTD` (e.g. the two swapped).
        ValueError: ``pi`` and ``v`` share a top-level module name with different parameters
            (the message names it); ``vf_coef`` negative or not finite.
    """

    def __init__(self, policy_objective: PolicyObjective, td_learning: SimpleTD,
                 optimizer: optax.GradientTransformation | None = None, vf_coef: float = 0.5, *,
                 flatten_optimizer: bool | None = None):
        for name, obj, kind, example in (("policy_objective", policy_objective, PolicyObjective,
                                          "VanillaPG(pi)"),
                                         ("td_learning", td_learning, SimpleTD, "SimpleTD(v)")):
            if not isinstance(obj, kind):
                raise TypeError(
                    f"ActorCritic: {name} must be a {kind.__name__} (e.g. {example}), got "
                    f"{type(obj).__name__}; the order is ActorCritic(policy_objective, "
                    "td_learning)")
        self.policy_objective, self.td_learning = policy_objective, td_learning
        self.vf_coef = vf_coef
        self._union = _Union(policy_objective.pi, td_learning.v)
        super().__init__(self._union, default_optimizer() if optimizer is None else optimizer,
                         flatten_optimizer=flatten_optimizer)

    def _check_function(self, f: object) -> None:
        # the function is the union of pi and v that __init__ built (checked there)
        if not isinstance(f, _Union):
            raise TypeError(f"ActorCritic updates the union of a policy and a value function, got "
                            f"{type(f).__name__}")

    @property
    def pi(self) -> Policy:
        return self.policy_objective.pi

    @property
    def v(self) -> V:
        return self.td_learning.v

    @property
    def vf_coef(self) -> float:
        return self._vf_coef

    @vf_coef.setter
    def vf_coef(self, value: float) -> None:
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"vf_coef must be a number, got {value!r}") from None
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"vf_coef must be finite and >= 0, got {value}")
        self._vf_coef = value

    @property
    def hyperparams(self) -> dict[str, Any]:
        return {"vf_coef": self._vf_coef, "policy": self.policy_objective.hyperparams,
                "value": self.td_learning.hyperparams}

    @property
    def params(self) -> dict:
        """The union of ``pi.params`` and ``v.params`` (shared modules once, the policy's copy):
        the ``params`` of :meth:`step`. Setting it sets both (with their checks)."""
        return self._union.params

    @params.setter
    def params(self, new_params: dict) -> None:
        check_same_tree(new_params, self.params, "ActorCritic.params")
        self.pi.params, self.v.params = self._union.parts(new_params)

    @property
    def function_state(self) -> dict:
        """The union of ``pi.function_state`` and ``v.function_state``; setting sets both."""
        return self._union.function_state

    @function_state.setter
    def function_state(self, new_state: dict) -> None:
        check_same_tree(new_state, self.function_state, "ActorCritic.function_state")
        self.pi.function_state, self.v.function_state = self._union.parts(new_state, "state")

    @staticmethod
    def join(pi_tree: dict, v_tree: dict) -> dict:
        """The union of a policy's and a value function's Haiku dicts (params or function state),
        as :attr:`params` is made: a shared module once, the policy's copy. Pure."""
        return {**v_tree, **pi_tree}

    def split(self, params: dict) -> tuple[dict, dict]:
        """``(pi_params, v_params)`` of a union such as :meth:`step` returns; shared modules go to
        both. Pure (for your own ``jit``/``scan`` around :meth:`step`)."""
        return self._union.parts(params)

    def split_state(self, function_state: dict) -> tuple[dict, dict]:
        """:meth:`split` for the union of the function states."""
        return self._union.parts(function_state, "state")

    # ---- the pure core ------------------------------------------------------------------------

    def init_optimizer_state(self, params: Any) -> optax.OptState:
        """Pure: a fresh optimizer state for the union ``params = ac.join(pi_params, v_params)``,
        in the form :meth:`step` uses (flat when :attr:`optimizer_flattened`). Jittable and
        vmappable (e.g. over the params of several seeds)."""
        return super().init_optimizer_state(params)

    def loss_fn(self, params: Any, function_state: Any, hparams: dict[str, Any],
                rng: jax.Array | None, transition_batch: TransitionBatch, Adv: Any,
                target_params: Any = None, target_state: Any = None
                ) -> tuple[jax.Array, tuple[dict[str, jax.Array], Any, Any]]:
        """Pure: ``loss, (metrics, new_function_state, td_error)`` over the union ``params``.

        ``target_params``/``target_state`` are those of the TD learner's ``v_targ`` (``None``
        without one). Metrics carry their full names (``VanillaPG/entropy``, ...).
        """
        po, td, union = self.policy_objective, self.td_learning, self._union
        pi_params, v_params = union.parts(params)
        pi_state, v_state = union.parts(function_state, "state")
        rng_pi = rng_v = None
        if rng is not None:
            rng_pi, rng_v = jax.random.split(rng)
        p_loss, (p_metrics, pi_state, _) = po.loss_fn(
            pi_params, pi_state, hparams["policy"], rng_pi if self.pi.uses_rng else None,
            transition_batch, Adv)
        v_loss, (v_metrics, v_state, td_error) = td.loss_fn(
            v_params, v_state, hparams["value"], rng_v if self.v.uses_rng else None,
            transition_batch, target_params, target_state)
        p_name, v_name = type(po).__name__, type(td).__name__
        metrics = {**{f"{p_name}/{k}": x for k, x in p_metrics.items()}, f"{p_name}/loss": p_loss,
                   **{f"{v_name}/{k}": x for k, x in v_metrics.items()}, f"{v_name}/loss": v_loss}
        # a shared stateful module (batch norm in the torso) saw the same S with the same params
        # in both: the policy's new state is kept, as for the params
        new_state = {**v_state, **pi_state}
        return p_loss + hparams["vf_coef"] * v_loss, (metrics, new_state, td_error)

    def _grads_and_metrics(self, params, function_state, hparams, rng, transition_batch, *args):
        # as BaseUpdater's, but the parts' metrics keep their own names (loss_fn qualifies them)
        grad_fn = jax.value_and_grad(self.loss_fn, has_aux=True)
        (loss, (metrics, new_state, aux)), grads = grad_fn(params, function_state, hparams, rng,
                                                           transition_batch, *args)
        name = type(self).__name__
        metrics = {**metrics, f"{name}/loss": loss, f"{name}/grads_norm": global_norm(grads)}
        return grads, new_state, metrics, aux

    # the jitted forms hand back pi's and v's parts as separate outputs: XLA gives every output
    # its own buffers, so the shared modules are not aliased between pi and v and the next step
    # may donate them

    def _step_packed(self, *args):
        params, opt_state, state, rng, values, aux = super()._step_packed(*args)
        return (self._union.parts(params), opt_state, self._union.parts(state, "state"), rng,
                values, aux)

    def _apply_checked(self, params, opt_state, grads):
        params, opt_state = super()._apply_checked(params, opt_state, grads)
        return self._union.parts(params), opt_state

    # ---- the stateful surface -----------------------------------------------------------------

    def _target_args(self):
        vt = self.td_learning.v_targ
        return (None, None) if vt is None else (vt.params, vt.function_state)

    def _donatable(self) -> bool:
        return (held_once(self.pi, "_params") and held_once(self.v, "_params")
                and held_once(self, "_optimizer_state"))

    def _set_parts(self, params: tuple[dict, dict], state: tuple[dict, dict] | None = None) -> None:
        # bypass the setters' checks: the compiled step preserves structure by construction
        (self.pi._params, self.v._params) = params
        if state is not None:
            (self.pi._function_state, self.v._function_state) = state

    def _run_step(self, transition_batch, *args):
        step = self._step_jit if self._donatable() else self._step_jit_keep
        params, self._optimizer_state, state, self._key, metrics, aux = step(
            self._union.params, self._optimizer_state, self._union.function_state,
            self.hyperparams, self._key, transition_batch, *args)
        self._set_parts(params, state)
        return Metrics(self._metric_keys["step"], metrics), aux

    def check_inputs(self, transition_batch: TransitionBatch, Adv: Any) -> None:
        """Raises unless ``(transition_batch, Adv)`` are valid arguments of :meth:`update`: the
        policy objective's checks (the batch's fields, ``Adv`` of shape ``[B]``, actions in the
        action space, ``logP`` present where the objective needs it), which cover the TD
        learner's (the batch's fields)."""
        # PolicyObjective keeps these checks in a protected method of its own package
        self.policy_objective._check_inputs(transition_batch, Adv)

    def update(self, transition_batch: TransitionBatch, Adv: Any) -> Metrics:
        """One fused gradient step on the batch; updates ``pi.params`` and ``v.params``.

        Args:
            transition_batch: a :class:`~a2c_jax.reward_tracing.TransitionBatch` of size ``B``
                (for GAE returns: ``Rn = returns``, ``In = 0``; see the class).
            Adv: the advantages ``[B]``, used as given (normalise them first if you want to).
        """
        self.check_inputs(transition_batch, Adv)
        metrics, _ = self._run_step(transition_batch, Adv, *self._target_args())
        return metrics

    def grads_and_metrics(self, transition_batch: TransitionBatch, Adv: Any
                          ) -> tuple[Any, Any, Metrics]:
        """The gradients without applying them: ``(grads, function_state, metrics)``, ``grads``
        and ``function_state`` over the union (as :attr:`params`)."""
        self.check_inputs(transition_batch, Adv)
        grads, state, metrics, _ = self._run_grads(transition_batch, Adv, *self._target_args())
        return grads, state, Metrics(self._metric_keys["grads"], metrics)

    def apply_grads(self, grads: Any, function_state: Any = None) -> None:
        """Applies gradients from :meth:`grads_and_metrics` (skipped if any is not finite)."""
        check_same_tree(grads, self.params, "ActorCritic.apply_grads: grads")
        apply = self._apply_jit if self._donatable() else self._apply_jit_keep
        params, self._optimizer_state = apply(self.params, self._optimizer_state, grads)
        self._set_parts(params)
        if function_state is not None:
            self.function_state = function_state

    def __repr__(self) -> str:
        return (f"ActorCritic(policy_objective={self.policy_objective!r}, "
                f"td_learning={self.td_learning!r}, vf_coef={self._vf_coef})")
