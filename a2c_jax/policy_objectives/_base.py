"""The base class of policy objectives."""

from __future__ import annotations

import abc
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._core import Policy
from .._core._updater import BaseUpdater
from ..proba_dists import DistParams
from ..regularizers import Regularizer
from ..reward_tracing import TransitionBatch
from ..utils._metrics import Metrics


class PolicyObjective(BaseUpdater):
    """A policy-gradient updater. Subclasses define one pure method, :meth:`objective`.

    The loss that is minimised is ``-objective + regularizer penalty``. This class runs the policy
    in training mode, evaluates ``log π(A|S)`` of the batch's actions, calls :meth:`objective`,
    adds the regularizer, and compiles all of it with the gradient, the finite check and the
    optimizer step into one jitted call (see :class:`~a2c_jax._core._updater.BaseUpdater`).

    A new objective, e.g. advantage-weighted with a KL penalty::

        class AWR(PolicyObjective):
            def __init__(self, pi, optimizer=None, regularizer=None, temperature=1.0):
                super().__init__(pi, optimizer, regularizer)
                self.objective_hyperparams = {'temperature': temperature}

            def objective(self, log_pi, dist_params, transition_batch, Adv, hparams):
                w = jnp.exp(jnp.clip(Adv / hparams['temperature'], -5, 5))
                return jnp.mean(transition_batch.W * w * log_pi), {}

    Args:
        pi: the :class:`~a2c_jax.Policy` to update.
        optimizer: an optax optimizer (default ``optax.adam(1e-3)``).
        regularizer: e.g. :class:`~a2c_jax.regularizers.EntropyRegularizer`. Read when the step is
            compiled, so :attr:`regularizer` is read-only; its ``beta`` is traced and may change.
    """

    #: whether :meth:`objective` reads ``transition_batch.logP``
    requires_logp: bool = False

    def __init__(self, pi: Policy, optimizer: optax.GradientTransformation | None = None,
                 regularizer: Regularizer | None = None, *, flatten_optimizer: bool | None = None):
        if not isinstance(pi, Policy):
            raise TypeError(f"{type(self).__name__} expects a Policy, got {type(pi).__name__}")
        if regularizer is not None and not isinstance(regularizer, Regularizer):
            raise TypeError(f"regularizer must be an a2c_jax Regularizer, got {regularizer!r}")
        super().__init__(pi, optimizer, flatten_optimizer=flatten_optimizer)
        self._regularizer = regularizer
        #: the objective's own traced hyperparameters (floats), e.g. ``{'epsilon': 0.2}``
        self.objective_hyperparams: dict[str, Any] = {}

    @property
    def pi(self) -> Policy:
        """The policy being updated."""
        return self._f

    @property
    def regularizer(self) -> Regularizer | None:
        """The regularizer, or ``None``. Read-only: the compiled step calls its ``penalty`` when it
        is traced, so a new one would be ignored; its ``beta`` (traced) may change at any time."""
        return self._regularizer

    @regularizer.setter
    def regularizer(self, value: Regularizer | None) -> None:
        raise AttributeError(f"{type(self).__name__}.regularizer is read when the step is "
                             f"compiled; build a new {type(self).__name__} to change it (its "
                             "beta may change: reg.beta = ...)")

    @property
    def hyperparams(self) -> dict[str, Any]:
        reg = self.regularizer.hyperparams if self.regularizer is not None else {}
        return {"objective": self.objective_hyperparams, "regularizer": reg}

    @abc.abstractmethod
    def objective(self, log_pi: chex.Array, dist_params: DistParams,
                  transition_batch: TransitionBatch, Adv: chex.Array,
                  hparams: dict[str, Any]) -> tuple[chex.Array, dict[str, chex.Array]]:
        """Pure: the scalar objective to *maximise*, and a dict of extra metrics.

        Args:
            log_pi: ``log π(A|S)`` under the parameters being differentiated, ``[B]``.
            dist_params: the distribution parameters for ``S`` (same parameters), batched.
            transition_batch: the batch (``W``, ``logP``, ... as :class:`TransitionBatch`).
            Adv: the advantages ``[B]``, gradient already stopped.
            hparams: :attr:`objective_hyperparams`, as traced scalars.
        """

    def loss_fn(self, params: Any, function_state: Any, hparams: dict[str, Any],
                rng: chex.PRNGKey | None, transition_batch: TransitionBatch, Adv: chex.Array
                ) -> tuple[chex.Array, tuple[dict[str, chex.Array], Any, None]]:
        """Pure: ``loss, (metrics, new_function_state, None)``, the loss ``-objective + penalty``."""
        pi = self.pi
        dist_params, new_state = pi.function(params, function_state, rng, transition_batch.S, True)
        log_pi = pi.proba_dist.log_proba(dist_params, transition_batch.A)
        Adv = jax.lax.stop_gradient(jnp.asarray(Adv, log_pi.dtype))
        chex.assert_equal_shape([log_pi, Adv])
        objective, metrics = self.objective(log_pi, dist_params, transition_batch, Adv,
                                            hparams["objective"])
        loss = -objective
        if self.regularizer is not None:
            penalty, reg_metrics = self.regularizer.penalty(dist_params, transition_batch,
                                                            hparams["regularizer"])
            loss = loss + penalty
            metrics = {**metrics, **reg_metrics}
        if "entropy" not in metrics:
            metrics = {**metrics, "entropy": jnp.mean(pi.proba_dist.entropy(dist_params))}
        return loss, (metrics, new_state, None)

    def _check_inputs(self, transition_batch: TransitionBatch, Adv: Any) -> None:
        self._check_batch(transition_batch)
        n = transition_batch.batch_size
        if np.shape(Adv) != (n,):
            raise ValueError(f"Adv has shape {np.shape(Adv)}; expected ({n},), one advantage per "
                             "transition in the batch")
        A = transition_batch.A
        if self.pi._discrete and isinstance(A, np.ndarray):
            # host actions (the buffer's): checked here, as an out-of-range index would only show
            # as a non-finite loss and a skipped step; device arrays are not fetched to check
            space = self.pi.action_space
            if A.dtype.kind not in "iu":
                raise ValueError(f"TransitionBatch.A must hold integer actions for {space}, got "
                                 f"dtype {A.dtype}")
            start = int(space.start)
            # one reduction: shifted to 0 and seen as unsigned, a negative index becomes huge
            idx = A - A.dtype.type(start) if start else A
            if idx.dtype.kind == "i":
                idx = idx.view(idx.dtype.str.replace("i", "u"))
            if A.size and idx.max() >= int(space.n):
                raise ValueError(f"TransitionBatch.A has actions outside {space}: min {A.min()}, "
                                 f"max {A.max()}")
        if self.requires_logp and transition_batch.logP is None:
            raise ValueError(f"{type(self).__name__} needs the batch's logP (log π(A|S) at "
                             "collection time); record it with tracer.add(..., logp)")

    def update(self, transition_batch: TransitionBatch, Adv: Any) -> Metrics:
        """One fused gradient step on the batch; updates ``pi.params``. Returns the metrics.

        Args:
            transition_batch: a :class:`~a2c_jax.reward_tracing.TransitionBatch` of size ``B``.
            Adv: advantages ``[B]`` (e.g. the TD error from ``SimpleTD.update``).
        """
        self._check_inputs(transition_batch, Adv)
        metrics, _ = self._run_step(transition_batch, Adv)
        return metrics

    def grads_and_metrics(self, transition_batch: TransitionBatch, Adv: Any
                          ) -> tuple[Any, Any, Metrics]:
        """The gradients without applying them: ``(grads, function_state, metrics)``."""
        self._check_inputs(transition_batch, Adv)
        grads, state, metrics, _ = self._run_grads(transition_batch, Adv)
        return grads, state, Metrics(self._metric_keys["grads"], metrics)

    def __repr__(self) -> str:
        hp = {**self.objective_hyperparams}
        return f"{type(self).__name__}(pi={self.pi!r}, hyperparams={hp}, regularizer={self.regularizer!r})"
