"""TD(n) learning of a state-value function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax

from .._core import V
from .._core._updater import BaseUpdater
from ..functional import n_step_target, td_error_from_loss, value_loss
from ..reward_tracing import TransitionBatch
from ..utils._metrics import Metrics
from ..value_losses import huber


class SimpleTD(BaseUpdater):
    """Regresses ``v(S)`` onto the n-step bootstrapped target ``G = Rn + In * v_targ(S_next)``.

    The TD error is the advantage estimate of A2C. It is coax's: ``td_error = -B * dL/dv(S)``,
    the negative gradient of the value loss with respect to the predicted values
    (:func:`td_error_from_loss`). Under :func:`~a2c_jax.value_losses.mse` that is exactly
    ``G - v(S)``; under the default :func:`~a2c_jax.value_losses.huber` (``delta=1``) it is
    ``G - v(S)`` clipped to ``[-1, 1]``. This is a decision, measured: with the raw ``G - v(S)`` as
    the advantage, coax's A2C recipe reached a 20-episode average of 475 on CartPole in 1 of 20
    seeds by 100k steps, against coax's 9 (README, "The recipe over 20 seeds";
    ``benchmarks/results/recipe_seeds_100000_before_coax_td.json``).
    With a ``value_transform`` the derivative is taken where the loss is, in the transformed
    space (as coax). In rlax's names, ``Rn`` is the discounted n-step reward sum ``r_t``, ``In``
    the discount ``discount_t`` and ``S_next`` the bootstrap state ``s_t``.

    Args:
        v: the :class:`~a2c_jax.V` to update.
        v_targ: the value function used in the target (e.g. a slowly updated ``v.copy()``);
            ``None`` uses ``v`` itself, with the gradient stopped through the target.
        optimizer: an optax optimizer (default ``optax.adam(1e-3)``).
        loss_function: ``loss(y_true, y_pred, w) -> scalar``, the weighted mean over the batch;
            default :func:`a2c_jax.value_losses.huber` with ``delta=1``, as coax. With a
            ``value_transform`` the regression is in the transformed space.

    ``loss_function`` and ``v_targ`` are read when the step is compiled, so they are read-only
    afterwards (assigning one raises ``AttributeError``; build a new ``SimpleTD``). The target's
    *parameters* are passed to every step: ``v_targ.soft_update(v, tau)`` takes effect at once.
    The regression itself is :func:`a2c_jax.functional.value_loss` onto
    :func:`a2c_jax.functional.n_step_target`.
    """

    def __init__(self, v: V, v_targ: V | None = None,
                 optimizer: optax.GradientTransformation | None = None,
                 loss_function: Callable | None = None, *,
                 flatten_optimizer: bool | None = None):
        if not isinstance(v, V):
            raise TypeError(f"SimpleTD expects a V, got {type(v).__name__}")
        if v_targ is not None and not isinstance(v_targ, V):
            raise TypeError(f"v_targ must be a V or None, got {type(v_targ).__name__}")
        if v_targ is v:
            v_targ = None  # the same object: use the params being updated, not a donated alias
        super().__init__(v, optimizer, flatten_optimizer=flatten_optimizer)
        if loss_function is not None and not callable(loss_function):
            raise TypeError(f"loss_function must be callable as loss(y_true, y_pred, w), got "
                            f"{loss_function!r}")
        self._v_targ = v_targ
        self._loss_function = huber if loss_function is None else loss_function
        self._td_error_jit = jax.jit(self._td_error_with_key)

    @property
    def v(self) -> V:
        """The value function being updated."""
        return self._f

    @property
    def v_targ(self) -> V | None:
        """The value function of the target, or ``None`` (``v`` itself). Read-only: the compiled
        step calls its function when it is traced, so a new one would be ignored; update its
        parameters instead (``td.v_targ.soft_update(td.v, tau)``)."""
        return self._v_targ

    @v_targ.setter
    def v_targ(self, value: V | None) -> None:
        raise AttributeError("SimpleTD.v_targ is read when the step is compiled; build a new "
                             "SimpleTD to change it (or update its params: v_targ.soft_update)")

    @property
    def loss_function(self) -> Callable:
        """``loss(y_true, y_pred, w) -> scalar``. Read-only: the compiled step calls it when it is
        traced, so a new one would be ignored."""
        return self._loss_function

    @loss_function.setter
    def loss_function(self, value: Callable) -> None:
        raise AttributeError("SimpleTD.loss_function is read when the step is compiled; build a "
                             "new SimpleTD to change it")

    def _target_args(self):
        vt = self._v_targ
        return (None, None) if vt is None else (vt.params, vt.function_state)

    def _regression(self, out, G):
        """``(V, y_true, y_pred)``: the values, and what the loss compares (transformed space)."""
        transform = self.v.value_transform
        if transform is None:
            return out, G, out
        return transform[1](out), transform[0](G), out

    def td_error_fn(self, params: Any, function_state: Any, rng: chex.PRNGKey | None,
                    transition_batch: TransitionBatch, target_params: Any = None,
                    target_state: Any = None) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Pure: ``(G, V, td_error)``, each ``[B]``, under the given params (evaluation mode).

        ``G`` and ``V`` are in value space; ``td_error = -B * dL/dv(S)`` (see the class).
        """
        G = self._target(params, function_state, rng, transition_batch, target_params,
                         target_state)
        out, _ = self.v.function(params, function_state, rng, transition_batch.S, False)
        V, y_true, y_pred = self._regression(out, G)
        return G, V, td_error_from_loss(self._loss_function, y_true, y_pred)

    def _td_error_with_key(self, params, function_state, key, transition_batch, *target):
        # the key split runs inside the compiled call: an eager split is a dispatch of its own
        key, subkey = self._split_key(key)
        return key, self.td_error_fn(params, function_state, subkey, transition_batch, *target)[2]

    def _target(self, params, function_state, rng, transition_batch, target_params, target_state):
        if self._v_targ is None:
            v_next = self.v.values(params, function_state, rng, transition_batch.S_next)
        else:
            v_next = self._v_targ.values(target_params, target_state, rng, transition_batch.S_next)
        dtype = v_next.dtype  # the batch's own dtype (e.g. integer rewards) promotes, as before
        Rn, In = jnp.asarray(transition_batch.Rn, dtype), jnp.asarray(transition_batch.In, dtype)
        return n_step_target(Rn, In, v_next)

    def loss_fn(self, params: Any, function_state: Any, hparams: dict[str, Any],
                rng: chex.PRNGKey | None, transition_batch: TransitionBatch, target_params: Any,
                target_state: Any) -> tuple[jax.Array, tuple[dict[str, jax.Array], Any, jax.Array]]:
        """Pure: ``loss, (metrics, new_function_state, td_error)``: the value loss of ``v(S)``
        against :func:`~a2c_jax.functional.n_step_target` (:func:`~a2c_jax.functional.value_loss`)
        and coax's TD error (:func:`~a2c_jax.functional.td_error_from_loss`), ``[B]``."""
        rng_targ, rng = (None, None) if rng is None else jax.random.split(rng)
        G = self._target(params, function_state, rng_targ, transition_batch, target_params,
                         target_state)
        out, new_state = self.v.function(params, function_state, rng, transition_batch.S, True)
        V, y_true, y_pred = self._regression(out, G)
        td_error = td_error_from_loss(self._loss_function, y_true, jax.lax.stop_gradient(y_pred))
        loss = value_loss(y_pred, y_true, self._loss_function, transition_batch.W)
        metrics = {"td_error": jnp.mean(td_error), "td_error_abs": jnp.mean(jnp.abs(td_error)),
                   "value": jnp.mean(V)}
        return loss, (metrics, new_state, td_error)

    def update(self, transition_batch: TransitionBatch, return_td_error: bool = False
               ) -> Metrics | tuple[Metrics, jax.Array]:
        """One fused gradient step on the batch; updates ``v.params``.

        Returns:
            ``metrics``, or ``(metrics, td_error)`` with ``td_error = -B * dL/dv(S)`` (``G - v(S)``
            under MSE, clipped to ``[-1, 1]`` under the default Huber) of shape ``[B]``,
            computed with the parameters from *before* this update (a device array: pass it
            straight on as ``Adv``).
        """
        self._check_batch(transition_batch)
        metrics, td_error = self._run_step(transition_batch, *self._target_args())
        return (metrics, td_error) if return_td_error else metrics

    def grads_and_metrics(self, transition_batch: TransitionBatch) -> tuple[Any, Any, Metrics]:
        """The gradients without applying them: ``(grads, function_state, metrics)``."""
        self._check_batch(transition_batch)
        grads, state, metrics, _ = self._run_grads(transition_batch, *self._target_args())
        return grads, state, Metrics(self._metric_keys["grads"], metrics)

    def td_error(self, transition_batch: TransitionBatch) -> jax.Array:
        """``-B * dL/dv(S)`` for the batch, ``[B]``, with the current parameters (evaluation mode)."""
        self._check_batch(transition_batch)
        v = self.v
        self._key, td = self._td_error_jit(v.params, v.function_state, self._key, transition_batch,
                                           *self._target_args())
        return td

    def __repr__(self) -> str:
        return f"SimpleTD(v={self.v!r}, v_targ={self.v_targ!r})"
