"""Nothing hidden: what the compiled step reads when it is traced cannot be changed silently.

``SimpleTD.loss_function`` and ``.v_targ``, ``PolicyObjective.regularizer`` and
``Regularizer.f`` are read-only (a new value would be ignored by the step already compiled);
the traced hyperparameters (``epsilon``, ``beta``, ``priors``) change the next update without a
recompilation.
"""

import pathlib
import re

import numpy as np
import optax
import pytest
from conftest import make_batch

from a2c_jax.policy_objectives import PPOClip, VanillaPG
from a2c_jax.regularizers import EntropyRegularizer, KLDivRegularizer
from a2c_jax.td_learning import SimpleTD
from a2c_jax.value_losses import huber, mse

EXAMPLES = pathlib.Path(__file__).parent / "fixtures" / "coax_examples"


def _compiled(updater):
    return updater._step_jit._cache_size() + updater._step_jit_keep._cache_size()


def test_simple_td_loss_function_and_v_targ_are_read_only(v, rng):
    td = SimpleTD(v, loss_function=mse)
    batch = make_batch(rng, 8, reward_scale=5.0)
    td.update(batch)
    with pytest.raises(AttributeError, match="read when the step is compiled.*new SimpleTD"):
        td.loss_function = huber
    with pytest.raises(AttributeError, match="read when the step is compiled.*new SimpleTD"):
        td.v_targ = v.copy()
    assert td.loss_function is mse and td.v_targ is None
    # the next update is still MSE's: its TD error is G - v(S), not clipped
    _, td_error = td.update(batch, return_td_error=True)
    assert np.max(np.abs(td_error)) > 1.0


def test_policy_objective_regularizer_and_regularizer_f_are_read_only(pi, v, rng):
    reg = EntropyRegularizer(pi, beta=0.1)
    for cls in (VanillaPG, PPOClip):
        po = cls(pi, regularizer=reg)
        with pytest.raises(AttributeError, match=f"{cls.__name__}.regularizer is read when"):
            po.regularizer = None
        assert po.regularizer is reg
    with pytest.raises(AttributeError, match="EntropyRegularizer.f is read when"):
        reg.f = pi
    assert reg.f is pi


def test_the_read_only_check_comes_before_any_update(pi):
    """Read-only from construction, not only after the first compilation."""
    with pytest.raises(AttributeError):
        VanillaPG(pi).regularizer = EntropyRegularizer(pi)


@pytest.mark.parametrize("kind", ["entropy", "kl"])
def test_traced_hyperparameters_change_the_step_without_recompiling(pi, rng, kind):
    """beta, epsilon (and priors) are traced: a new value changes the next loss, one compilation."""
    reg = EntropyRegularizer(pi, beta=0.0) if kind == "entropy" else KLDivRegularizer(pi, beta=0.0)
    po = PPOClip(pi, optimizer=optax.sgd(0.0), regularizer=reg, epsilon=0.2)
    batch = make_batch(rng, 8)
    batch = batch._replace(logP=batch.logP - 0.5)  # ratios away from 1: epsilon matters
    adv = rng.normal(size=8).astype(np.float32)
    loss0 = float(po.update(batch, adv)["PPOClip/loss"])
    reg.beta = 0.5
    loss1 = float(po.update(batch, adv)["PPOClip/loss"])
    assert loss1 != loss0
    po.epsilon = 0.01
    loss2 = float(po.update(batch, adv)["PPOClip/loss"])
    assert loss2 != loss1
    if kind == "kl":
        reg.priors = {"logits": np.array([[2.0, -1.0]], np.float32)}  # not uniform
        assert float(po.update(batch, adv)["PPOClip/loss"]) != loss2
    assert _compiled(po) == 1


def test_coax_examples_do_not_assign_trace_time_attributes():
    """coax's example scripts never reassign these after construction (so read-only costs them
    nothing); if one did, the attribute would have to retrace instead."""
    pattern = re.compile(r"\.\s*(loss_function|v_targ|regularizer|f)\s*=[^=]")
    scripts = sorted(EXAMPLES.glob("*.py"))
    assert scripts
    for path in scripts:
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            assert not pattern.search(line), f"{path.name}:{lineno}: {line.strip()}"
