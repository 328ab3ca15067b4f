"""A user-written policy objective and value loss: one pure method each, compiled by the base."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import device_copy, host_copy, jnp_logits, make_batch, np_value

from a2c_jax.policy_objectives import PolicyObjective
from a2c_jax.td_learning import SimpleTD


class AdvantageWeightedKL(PolicyObjective):
    """exp(clip(Adv / T)) weighted log-likelihood with a KL penalty to the behaviour policy."""

    requires_logp = True

    def __init__(self, pi, optimizer=None, regularizer=None, temperature=1.0, kl_coef=0.1):
        super().__init__(pi, optimizer, regularizer)
        self.objective_hyperparams = {"temperature": temperature, "kl_coef": kl_coef}

    def objective(self, log_pi, dist_params, transition_batch, Adv, hparams):
        weights = jnp.exp(jnp.clip(Adv / hparams["temperature"], -5.0, 5.0))
        kl = jnp.mean(transition_batch.logP - log_pi)
        return jnp.mean(transition_batch.W * weights * log_pi) - hparams["kl_coef"] * kl, {"kl": kl}


def ref_loss(params, batch, Adv, temperature, kl_coef):
    """The same loss written directly from the logits, without the library's machinery."""
    logp_all = jax.nn.log_softmax(jnp_logits(params, batch.S))
    log_pi = jnp.take_along_axis(logp_all, jnp.asarray(batch.A)[:, None], axis=1)[:, 0]
    weights = jnp.exp(jnp.clip(Adv / temperature, -5.0, 5.0))
    kl = jnp.mean(batch.logP - log_pi)
    return -(jnp.mean(batch.W * weights * log_pi) - kl_coef * kl)


@pytest.fixture
def adv(rng):
    return rng.normal(size=16).astype(np.float32)


def test_custom_objective_gradient_matches_reference(pi, batch, adv):
    """The base class differentiates the user's objective: equal to jax.grad of the reference."""
    awr = AdvantageWeightedKL(pi, temperature=0.7, kl_coef=0.2)
    grads, _, metrics = awr.grads_and_metrics(batch, adv)
    want = jax.grad(ref_loss)(device_copy(pi.params), batch, adv, 0.7, 0.2)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 host_copy(grads), host_copy(want))
    assert "AdvantageWeightedKL/kl" in metrics


def test_custom_objective_hyperparameters_are_traced(pi, batch, adv):
    """Changing temperature/kl_coef reuses the compiled step, and the new values take effect."""
    awr = AdvantageWeightedKL(pi, optimizer=optax.sgd(0.1))
    awr.update(batch, adv)
    compiled = awr._step_jit._cache_size()
    losses = []
    for t in (0.5, 2.0):
        awr.objective_hyperparams["temperature"] = t
        losses.append(awr.update(batch, adv)["AdvantageWeightedKL/loss"])
    assert awr._step_jit._cache_size() == compiled == 1
    assert losses[0] != pytest.approx(losses[1])


def test_custom_objective_needs_logp(pi, batch, adv):
    """requires_logp=True: a batch without logP is refused with a clear error."""
    with pytest.raises(ValueError, match="logP"):
        AdvantageWeightedKL(pi).update(batch._replace(logP=None), adv)


class ClippedValueTD(SimpleTD):
    """A value loss written by subclassing: the squared TD error, clipped at `clip`."""

    @property
    def hyperparams(self):
        return {"clip": self.clip}

    def loss_fn(self, params, function_state, hparams, rng, transition_batch, target_params,
                target_state):
        V, new_state = self.v.function(params, function_state, rng, transition_batch.S, True)
        V_next = self.v.values(params, function_state, rng, transition_batch.S_next)
        G = jax.lax.stop_gradient(transition_batch.Rn + transition_batch.In * V_next)
        err = jnp.clip(G - V, -hparams["clip"], hparams["clip"])
        td_error = jax.lax.stop_gradient(G - V)
        return jnp.mean(0.5 * err**2), ({}, new_state, td_error)


def test_custom_value_loss_subclass(v, rng):
    """A subclass defining loss_fn gets update/td_error semantics and a traced hyperparameter."""
    batch = make_batch(rng, 16)
    td = ClippedValueTD(v, optimizer=optax.sgd(0.05))
    td.clip = 0.5
    p = host_copy(v.params)
    G = batch.Rn + batch.In * np_value(p, batch.S_next)
    want_err = G - np_value(p, batch.S)
    metrics, td_error = td.update(batch, return_td_error=True)
    np.testing.assert_allclose(np.asarray(td_error), want_err, rtol=1e-5, atol=1e-5)
    want_loss = np.mean(0.5 * np.clip(want_err, -0.5, 0.5) ** 2)
    assert metrics["ClippedValueTD/loss"] == pytest.approx(want_loss, rel=1e-5)
    td.clip = 10.0
    td.update(batch)
    assert td._step_jit._cache_size() == 1
