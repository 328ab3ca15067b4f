"""TD(n) learning of a state-value function."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from .._core import V
from .._core._updater import BaseUpdater
from ..utils._metrics import Metrics
from ..value_losses import mse


class SimpleTD(BaseUpdater):
    """Regresses ``v(S)`` onto the n-step bootstrapped target ``G = Rn + In * v_targ(S_next)``.

    The TD error ``G - v(S)`` is the advantage estimate of A2C. In rlax's names,
    ``Rn`` is the discounted n-step reward sum ``r_t``, ``In`` the discount ``discount_t`` and
    ``S_next`` the bootstrap state ``s_t``.

    Args:
        v: the :class:`~a2c_jax.V` to update.
        v_targ: the value function used in the target (e.g. a slowly updated ``v.copy()``);
            ``None`` uses ``v`` itself, with the gradient stopped through the target.
        optimizer: an optax optimizer (default ``optax.adam(1e-3)``).
        loss_function: ``loss(y_true, y_pred, w) -> scalar``; default
            :func:`a2c_jax.value_losses.mse`. With a ``value_transform`` the regression is in the
            transformed space.

    The TD error returned by :meth:`update` and :meth:`td_error` is always ``G - v(S)``. (coax
    defaults to Huber with ``delta=1`` and returns ``-B dL/dv(S)`` instead, i.e. ``G - v(S)``
    clipped to ``[-1, 1]`` under Huber; under MSE the two agree. Huber with the unclipped TD
    error as the advantage made the coax A2C recipe collapse: the README has the measurements.)
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
        self.v_targ = v_targ
        self.loss_function = mse if loss_function is None else loss_function
        self._td_error_jit = jax.jit(self._td_error_with_key)

    @property
    def v(self) -> V:
        """The value function being updated."""
        return self._f

    def _target_args(self):
        vt = self.v_targ
        return (None, None) if vt is None else (vt.params, vt.function_state)

    def td_error_fn(self, params, function_state, rng, transition_batch, target_params=None,
                    target_state=None):
        """Pure: ``(G, V, td_error)`` in value space, each ``[B]``, under the given params."""
        G = self._target(params, function_state, rng, transition_batch, target_params,
                         target_state)
        V = self.v.values(params, function_state, rng, transition_batch.S)
        return G, V, G - V

    def _td_error_with_key(self, params, function_state, key, transition_batch, *target):
        # the key split runs inside the compiled call (an eager split costs ~40 µs on CPU)
        key, subkey = self._split_key(key)
        return key, self.td_error_fn(params, function_state, subkey, transition_batch, *target)[2]

    def _target(self, params, function_state, rng, transition_batch, target_params, target_state):
        if self.v_targ is None:
            v_next = self.v.values(params, function_state, rng, transition_batch.S_next)
        else:
            v_next = self.v_targ.values(target_params, target_state, rng, transition_batch.S_next)
        G = transition_batch.Rn + transition_batch.In * v_next
        return jax.lax.stop_gradient(G)

    def loss_fn(self, params, function_state, hparams, rng, transition_batch, target_params,
                target_state):
        rng_targ, rng = (None, None) if rng is None else jax.random.split(rng)
        G = self._target(params, function_state, rng_targ, transition_batch, target_params,
                         target_state)
        out, new_state = self.v.function(params, function_state, rng, transition_batch.S, True)
        transform = self.v.value_transform
        if transform is None:
            V, y_true, y_pred = out, G, out
        else:
            V, y_true, y_pred = transform[1](out), transform[0](G), out
        td_error = jax.lax.stop_gradient(G - V)
        loss = self.loss_function(y_true, y_pred, transition_batch.W)
        metrics = {"td_error": jnp.mean(td_error), "td_error_abs": jnp.mean(jnp.abs(td_error)),
                   "value": jnp.mean(V)}
        return loss, (metrics, new_state, td_error)

    def update(self, transition_batch, return_td_error: bool = False):
        """One fused gradient step on the batch; updates ``v.params``.

        Returns:
            ``metrics``, or ``(metrics, td_error)`` with ``td_error = G - v(S)`` of shape ``[B]``,
            computed with the parameters from *before* this update (a device array: pass it
            straight on as ``Adv``).
        """
        self._check_batch(transition_batch)
        metrics, td_error = self._run_step(transition_batch, *self._target_args())
        return (metrics, td_error) if return_td_error else metrics

    def grads_and_metrics(self, transition_batch):
        """The gradients without applying them: ``(grads, function_state, metrics)``."""
        self._check_batch(transition_batch)
        grads, state, metrics, _ = self._run_grads(transition_batch, *self._target_args())
        return grads, state, Metrics(self._metric_keys["grads"], metrics)

    def td_error(self, transition_batch):
        """``G - v(S)`` for the batch, ``[B]``, with the current parameters (evaluation mode)."""
        self._check_batch(transition_batch)
        v = self.v
        self._key, td = self._td_error_jit(v.params, v.function_state, self._key, transition_batch,
                                           *self._target_args())
        return td

    def __repr__(self) -> str:
        return f"SimpleTD(v={self.v!r}, v_targ={self.v_targ!r})"
