"""The base of every updater: one fused, jitted step per update."""

from __future__ import annotations

import abc
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..reward_tracing import TransitionBatch
from ..utils._metrics import Metrics, pack_metrics
from ..utils._trees import (
    check_same_tree,
    check_state_dict_keys,
    conform_tree,
    tree_from_state_dict,
    tree_to_state_dict,
)
from ._base import RUN_ONCE, BaseFunc, raw_key
from ._flat_optimizer import init_optimizer
from ._ownership import held_once


def global_norm(tree: Any) -> jax.Array:
    """The L2 norm over every leaf of ``tree``, as one concatenation and one dot product.

    On XLA:CPU a reduction per leaf (``optax.tree.norm``) is one small kernel per leaf, which
    costs more than the work for small networks; this form is also the finite check of the step
    (a non-finite leaf makes it non-finite).
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros((), jnp.float32)
    flat = jnp.concatenate([jnp.ravel(x).astype(jnp.float32) for x in leaves])
    return jnp.sqrt(jnp.dot(flat, flat))


class Approximator(Protocol):
    """What an updater reads of the function it updates: a :class:`~a2c_jax.V` or
    :class:`~a2c_jax.Policy`, or :class:`~a2c_jax.ActorCritic`'s union of the two."""

    random_seed: int
    uses_rng: bool

    @property
    def params(self) -> Any: ...

    @property
    def function_state(self) -> Any: ...


def _select(pred, on_true, on_false):
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


class BaseUpdater(abc.ABC):
    """Holds the optimizer state of one function approximator and updates its parameters.

    A subclass defines one pure method, :meth:`loss_fn`. This class builds from it the fused pure
    step (loss, gradients, finite check and optimizer step together) and jit-compiles it once, with
    the parameters and optimizer state donated. Hyperparameters (:attr:`hyperparams`) are passed
    to the compiled step as traced values, so changing them never recompiles.

    Flat optimizer. An element-wise optimizer (sgd, adam, rmsprop, ...) is run on the single flat
    vector of all parameters (``optax.flatten``), which XLA:CPU executes faster than leaf by leaf
    (fewer, larger kernels). Whether the optimizer is element-wise is probed once at construction:
    two steps of both forms on test gradients, compared; an optimizer the flat form cannot run
    (``optax.masked`` or ``optax.multi_transform`` over a tree of labels, anything that raises) or
    whose updates differ (LAMB, LARS) is used leaf-wise, as given. :attr:`optimizer_flattened`
    says the outcome; ``flatten_optimizer=False`` turns the probe off (always leaf-wise),
    ``True`` flattens without probing.

    Non-finite updates. When the loss or any gradient is not finite (or the gradients' global norm
    overflows float32), the step is *skipped*: the parameters, optimizer state and function state
    stay as they were, and the metric ``skipped`` is 1. The check happens on the device; nothing
    waits for the host.
    """

    def __init__(self, f: Approximator, optimizer: optax.GradientTransformation | None = None, *,
                 flatten_optimizer: bool | None = None):
        self._check_function(f)
        if optimizer is None:
            optimizer = optax.adam(1e-3)
        if not isinstance(optimizer, optax.GradientTransformation):
            raise TypeError(f"optimizer must be an optax.GradientTransformation, got {optimizer!r}")
        # V or Policy (whose _params the steps write); ActorCritic's union of the two
        self._f: Any = f
        self._user_optimizer = optimizer
        # one jitted call (eager optax init compiles every op it runs) without backend optimisation;
        # element-wise optimizers run on the flat parameter vector (see _flat_optimizer)
        self._optimizer, self._optimizer_state, self.optimizer_flattened = init_optimizer(
            optimizer, f.params, flatten_optimizer, RUN_ONCE)
        self._key = raw_key(f.random_seed, 2)
        self._metric_keys: dict[str, tuple[str, ...]] = {}
        # the donating forms reuse the old buffers in place; the others (compiled on first need)
        # run when someone else still holds those arrays (see _donatable)
        self._step_jit = jax.jit(self._step_packed, donate_argnums=(0, 1))
        self._step_jit_keep = jax.jit(self._step_packed)
        self._grads_jit = jax.jit(self._grads_packed)
        self._apply_jit = jax.jit(self._apply_checked, donate_argnums=(0, 1))
        self._apply_jit_keep = jax.jit(self._apply_checked)

    def _check_function(self, f: object) -> None:
        """Raises ``TypeError`` unless ``f`` is a function approximator (``V`` or ``Policy``)."""
        if not isinstance(f, BaseFunc):
            raise TypeError(f"{type(self).__name__} expects an a2c_jax function approximator "
                            f"(V or Policy), got {type(f).__name__}")

    # ---- to be defined by subclasses ------------------------------------------------------------

    @abc.abstractmethod
    def loss_fn(self, params: Any, function_state: Any, hparams: dict[str, Any],
                rng: jax.Array | None, transition_batch: TransitionBatch,
                *args: Any) -> tuple[jax.Array, tuple[dict[str, jax.Array], Any, Any]]:
        """Pure: ``loss, (metrics, new_function_state, aux)`` for one batch; differentiated in params."""

    @property
    def hyperparams(self) -> dict[str, Any]:
        """The traced hyperparameters, a dict of scalars (empty by default)."""
        return {}

    # ---- the pure core ------------------------------------------------------------------------

    def init_optimizer_state(self, params: Any) -> optax.OptState:
        """Pure: a fresh optimizer state for ``params``, in the form the fused step uses.

        That is ``optimizer.init(params)``, or, when :attr:`optimizer_flattened` is True, the
        state of ``optax.flatten(optimizer)`` (one flat vector per moment): the same function the
        constructor ran for :attr:`optimizer_state`. Jittable and vmappable.

        Args:
            params: parameters of the structure of the updated function's ``params`` (for
                :class:`~a2c_jax.ActorCritic` the union, ``ac.join(pi_params, v_params)``).
        """
        return self._optimizer.init(params)

    def _grads_and_metrics(self, params, function_state, hparams, rng, transition_batch, *args):
        grad_fn = jax.value_and_grad(self.loss_fn, has_aux=True)
        (loss, (metrics, new_state, aux)), grads = grad_fn(params, function_state, hparams, rng,
                                                           transition_batch, *args)
        name = type(self).__name__
        metrics = {f"{name}/{k}": v for k, v in metrics.items()}
        metrics[f"{name}/loss"] = loss
        metrics[f"{name}/grads_norm"] = global_norm(grads)
        return grads, new_state, metrics, aux

    def _apply(self, params, opt_state, grads, ok):
        def apply(params, opt_state, grads):
            updates, new_opt_state = self._optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), new_opt_state

        def skip(params, opt_state, grads):
            return params, opt_state

        # a branch, not a per-leaf select: the skipped step costs nothing, the taken one no extra
        return jax.lax.cond(ok, apply, skip, params, opt_state, grads)

    def _split_key(self, key):
        """``(next key, subkey)``; for a deterministic function ``(key, None)``: no key to split,
        nothing to compile for it."""
        if self._f.uses_rng:
            return tuple(jax.random.split(key))
        return key, None

    def step_with_state(self, params: Any, opt_state: optax.OptState, function_state: Any,
                        hparams: dict[str, Any], rng: jax.Array, transition_batch: TransitionBatch,
                        *args: Any
                        ) -> tuple[Any, optax.OptState, Any, jax.Array, dict[str, jax.Array], Any]:
        """The fused pure step, function state and PRNG key included.

        Returns:
            ``(params, opt_state, function_state, rng, metrics, aux)``: ``rng`` is the next key,
            ``aux`` whatever :meth:`loss_fn` returned beside the loss (e.g. the TD error).
        """
        rng, subkey = self._split_key(rng)
        grads, new_state, metrics, aux = self._grads_and_metrics(
            params, function_state, hparams, subkey, transition_batch, *args)
        name = type(self).__name__
        # a non-finite gradient leaf makes the global norm non-finite: one scalar to check
        ok = jnp.isfinite(metrics[f"{name}/loss"]) & jnp.isfinite(metrics[f"{name}/grads_norm"])
        params, opt_state = self._apply(params, opt_state, grads, ok)
        metrics[f"{name}/skipped"] = 1.0 - ok.astype(jnp.float32)
        return params, opt_state, _select(ok, new_state, function_state), rng, metrics, aux

    def _step_packed(self, *args):
        # the jitted form behind update(): metrics come back as one stacked array; their names
        # are static, recorded while tracing
        params, opt_state, state, rng, metrics, aux = self.step_with_state(*args)
        self._metric_keys["step"], values = pack_metrics(metrics)
        return params, opt_state, state, rng, values, aux

    def _grads_packed(self, *args):
        grads, state, metrics, aux = self._grads_and_metrics(*args)
        self._metric_keys["grads"], values = pack_metrics(metrics)
        return grads, state, values, aux

    def step(self, params: Any, opt_state: optax.OptState, transition_batch: TransitionBatch,
             *args: Any, hparams: dict[str, Any] | None = None, rng: jax.Array | None = None
             ) -> tuple[Any, optax.OptState, dict[str, jax.Array]]:
        """The fused pure step ``(params, opt_state, batch, ...) -> (params, opt_state, metrics)``.

        For use inside your own ``jit``/``scan``/``vmap`` (no jit inside). ``hparams`` defaults to
        :attr:`hyperparams`, ``rng`` to a fixed key. It runs the function in training mode with the
        approximator's current ``function_state``; for stateful Haiku functions (batch norm) use
        :meth:`step_with_state`, which also returns the new state. Example::

            def train(params, opt_state, batches, advs):
                def body(carry, xs):
                    params, opt_state, metrics = vanilla_pg.step(*carry, *xs)
                    return (params, opt_state), metrics
                return jax.lax.scan(body, (params, opt_state), (batches, advs))
        """
        if jax.tree.leaves(self._f.function_state):
            raise ValueError(f"{type(self).__name__}.step drops the new function state; this "
                             "function has Haiku state, so use step_with_state instead")
        hparams = self.hyperparams if hparams is None else hparams
        rng = jax.random.PRNGKey(0) if rng is None else rng
        params, opt_state, _, _, metrics, _ = self.step_with_state(
            params, opt_state, self._f.function_state, hparams, rng, transition_batch, *args)
        return params, opt_state, metrics

    # ---- the stateful surface -----------------------------------------------------------------

    def _check_batch(self, transition_batch):
        if not isinstance(transition_batch, TransitionBatch):
            raise TypeError(f"expected a TransitionBatch, got {type(transition_batch).__name__}")
        check_batch_shapes(transition_batch)

    def _donatable(self) -> bool:
        """Whether the params and optimizer state are referenced by this updater's function
        approximator and by this updater only, so that the step may delete them (donation).

        A user's ``old = v.params``, a target ``v_targ.params = v.params`` or a shallow copy keeps
        the arrays alive: the step then leaves them intact and writes new ones.
        """
        return held_once(self._f, "_params") and held_once(self, "_optimizer_state")

    def _run_step(self, transition_batch, *args):
        # callers have run self._check_batch (or a check that includes it)
        f = self._f
        step = self._step_jit if self._donatable() else self._step_jit_keep
        params, opt_state, state, self._key, metrics, aux = step(
            f.params, self._optimizer_state, f.function_state, self.hyperparams, self._key,
            transition_batch, *args)
        # bypass the setters' shape checks: the compiled step preserves structure by construction
        f._params, f._function_state, self._optimizer_state = params, state, opt_state
        return Metrics(self._metric_keys["step"], metrics), aux

    def _run_grads(self, transition_batch, *args):
        f = self._f
        self._key, subkey = self._split_key(self._key)
        return self._grads_jit(f.params, f.function_state, self.hyperparams, subkey,
                               transition_batch, *args)

    def _apply_checked(self, params, opt_state, grads):
        return self._apply(params, opt_state, grads, jnp.isfinite(global_norm(grads)))

    def apply_grads(self, grads: Any, function_state: Any = None) -> None:
        """Applies gradients from :meth:`grads_and_metrics` (skipped if any is not finite)."""
        f = self._f
        check_same_tree(grads, f.params, f"{type(self).__name__}.apply_grads: grads")
        apply = self._apply_jit if self._donatable() else self._apply_jit_keep
        f._params, self._optimizer_state = apply(f.params, self._optimizer_state, grads)
        if function_state is not None:
            f.function_state = function_state

    @property
    def optimizer(self) -> optax.GradientTransformation:
        """The optax optimizer as given (read-only; build a new updater to change it)."""
        return self._user_optimizer

    @property
    def optimizer_state(self) -> optax.OptState:
        """The optimizer state. Setting checks the tree structure and leaf shapes.

        When :attr:`optimizer_flattened` is True this is the state of ``optax.flatten(optimizer)``
        (one flat vector per moment), not of ``optimizer`` itself.
        """
        return self._optimizer_state

    @optimizer_state.setter
    def optimizer_state(self, new_state: optax.OptState) -> None:
        self._optimizer_state = conform_tree(new_state, self._optimizer_state,
                                             f"{type(self).__name__}.optimizer_state")

    def state_dict(self) -> dict[str, Any]:
        """The updater's own training state, as plain nested dicts of arrays.

        ``{"optimizer_state": ..., "rng": ...}``. The optimizer state (in the form the step uses,
        flat when :attr:`optimizer_flattened`) is written as nested dicts: an optax
        ``NamedTuple``'s fields by name (``mu``, ``nu``, ``count``), a tuple's entries (a
        ``chain``'s states) by index as strings (``"0"``, ``"1"``), a dict's by key; empty states
        (``EmptyState``, masked-out entries) leave nothing. E.g. for ``optax.adam`` over a flat
        vector: ``{"0": {"count": int32[], "mu": float32[n], "nu": float32[n]}}``. ``rng`` is the
        updater's PRNG key (raw ``uint32[2]``). The live arrays, not copies. The function's params
        are not here: they are in its own :meth:`~a2c_jax.V.state_dict`.
        """
        return {"optimizer_state": tree_to_state_dict(self._optimizer_state), "rng": self._key}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores what :meth:`state_dict` returned, into the current optimizer state's structure
        (``NamedTuple`` types included), so the compiled step takes it as it took the original.

        Every entry must match the current one in structure, shape and dtype exactly (nothing is
        broadcast or cast); a Python ``int``/``float`` is accepted for a scalar entry such as
        ``count``. On an error nothing is changed.

        Raises:
            ValueError: a key is missing or unexpected, or a shape differs (the message names the
                entry, e.g. ``state_dict['optimizer_state']['0']['mu']``).
            TypeError: an entry is of another type or dtype.
        """
        what = f"{type(self).__name__}.load_state_dict: state_dict"
        check_state_dict_keys(state_dict, ("optimizer_state", "rng"), what)
        opt_state = tree_from_state_dict(self._optimizer_state, state_dict["optimizer_state"],
                                         f"{what}['optimizer_state']")
        self._key = tree_from_state_dict(self._key, state_dict["rng"], f"{what}['rng']")
        self._optimizer_state = opt_state


# per-transition scalars: exactly [B]; the rest: a leading axis of B on every leaf
_SCALAR_FIELDS = ("Rn", "In", "W", "logP", "logP_next", "idx")
_ARRAY_FIELDS = ("S", "A", "S_next", "A_next")


def check_batch_shapes(batch: TransitionBatch) -> None:
    """Raises ``ValueError`` naming the field unless every field of ``batch`` has ``B`` rows.

    ``Rn``, ``In``, ``W``, ``logP``, ``logP_next`` and ``idx`` must have shape ``[B]`` exactly (a
    ``[B, 1]`` column would broadcast against ``[B]`` into ``[B, B]`` inside the loss); every leaf
    of ``S``, ``A``, ``S_next``, ``A_next`` must have ``B`` as its leading dimension. ``None``
    fields are skipped. Shapes only: no device sync.
    """
    shape = getattr(batch.Rn, "shape", None)
    if shape is None or len(shape) != 1:
        raise ValueError(f"TransitionBatch.Rn has shape {np.shape(batch.Rn)}; expected [B], one "
                         "n-step return per transition")
    n = shape[0]
    want = (n,)
    for name in _SCALAR_FIELDS:
        x = getattr(batch, name)
        if x is not None and getattr(x, "shape", None) != want:
            what = f"shape {np.shape(x)}" if hasattr(x, "shape") else f"type {type(x).__name__}"
            raise ValueError(f"TransitionBatch.{name} has {what}; expected an array of shape "
                             f"({n},), one value per transition (batch size {n}, from Rn)")
    for name in _ARRAY_FIELDS:
        x = getattr(batch, name)
        shape = getattr(x, "shape", None)  # an array (the usual case) or a pytree of them
        for got in ([shape] if shape is not None else map(np.shape, jax.tree.leaves(x))):
            if not got or got[0] != n:
                raise ValueError(f"TransitionBatch.{name} has shape {got}; expected a leading "
                                 f"axis of {n} (batch size {n}, from Rn)")
