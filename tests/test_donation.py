"""Updates donate the old parameter buffers only when nothing else holds them.

Each case holds the arrays in a way users do (the getter's dict, one leaf, a second approximator
given the same dict, a shallow copy, a target network aliasing the live one, the optimizer
state). The held arrays must stay readable with their old values, and the update must compute
exactly what the same update computes on an independent deep copy.
"""

import jax
import numpy as np
import optax
import pytest
from conftest import func_pi, func_v, host_copy

import a2c_jax
from a2c_jax.policy_objectives import VanillaPG
from a2c_jax.td_learning import SimpleTD


def _fresh(env):
    v = a2c_jax.V(func_v, env, random_seed=3)
    pi = a2c_jax.Policy(func_pi, env, random_seed=3)
    return v, pi, SimpleTD(v, optimizer=optax.adam(0.01)), VanillaPG(pi, optimizer=optax.adam(0.01))


def _reference_after_one_update(env, batch):
    """The params after one td and one pg update, on objects nobody else references."""
    v, pi, td, pg = _fresh(env)
    _, td_error = td.update(batch, return_td_error=True)
    pg.update(batch, td_error)
    return host_copy(v.params), host_copy(pi.params)


def _assert_equal(a, b):
    jax.tree.map(np.testing.assert_array_equal, host_copy(a), host_copy(b))


HOLDERS = {
    "the getter's dict": lambda v, pi, td, pg: (v.params, pi.params),
    "one leaf": lambda v, pi, td, pg: (jax.tree.leaves(v.params)[0],
                                       jax.tree.leaves(pi.params)[-1]),
    "an inner module dict": lambda v, pi, td, pg: (next(iter(v.params.values())),),
    "the optimizer states": lambda v, pi, td, pg: (td.optimizer_state, pg.optimizer_state),
}


@pytest.mark.parametrize("how", list(HOLDERS))
def test_held_arrays_survive_an_update(env, batch, how):
    v, pi, td, pg = _fresh(env)
    held = HOLDERS[how](v, pi, td, pg)
    snapshot = host_copy(held)
    _, td_error = td.update(batch, return_td_error=True)
    pg.update(batch, td_error)
    _assert_equal(held, snapshot)  # readable (not deleted) and unchanged
    want_v, want_pi = _reference_after_one_update(env, batch)
    _assert_equal(v.params, want_v)
    _assert_equal(pi.params, want_pi)


def test_two_approximators_given_the_same_params(env, batch):
    """pi_eval.params = pi.params, then pi is updated: pi_eval keeps the old params and works."""
    v, pi, td, pg = _fresh(env)
    pi_eval = a2c_jax.Policy(func_pi, env, random_seed=7)
    pi_eval.params = pi.params
    before = host_copy(pi.params)
    pg.update(batch, np.ones(batch.batch_size, np.float32))
    _assert_equal(pi_eval.params, before)
    pi_eval.mode(batch.S[0])
    shallow = pi.copy(deep=False)
    pg.update(batch, np.ones(batch.batch_size, np.float32))
    shallow.mode(batch.S[0])


def test_a_target_network_aliasing_the_live_params(env, batch):
    """v_targ.params = v.params (same arrays) in SimpleTD(v, v_targ): the update computes the same
    as with an independent copy of the target, and v_targ keeps the old values."""
    v, _, _, _ = _fresh(env)
    v_targ = a2c_jax.V(func_v, env, random_seed=11)
    v_targ.params = v.params
    td = SimpleTD(v, v_targ, optimizer=optax.adam(0.01))
    before = host_copy(v.params)
    _, err = td.update(batch, return_td_error=True)

    v2, _, _, _ = _fresh(env)
    v2_targ = v2.copy()
    _, err2 = SimpleTD(v2, v2_targ, optimizer=optax.adam(0.01)).update(batch, return_td_error=True)
    np.testing.assert_array_equal(np.asarray(err), np.asarray(err2))
    _assert_equal(v.params, v2.params)
    _assert_equal(v_targ.params, before)


def test_the_recipe_loop_keeps_donating(env, batch):
    """In the recipe's hot loop (update, update, sync_shared_params, repeat) nothing else holds the
    arrays, so every step takes the donating path (the other one is made to fail here)."""
    v, pi, td, pg = _fresh(env)

    def refuse(*args, **kwargs):
        raise AssertionError("took the non-donating path")

    td._step_jit_keep = pg._step_jit_keep = refuse
    for _ in range(3):
        _, td_error = td.update(batch, return_td_error=True)
        pg.update(batch, td_error)
        pi.params, v.params = a2c_jax.utils.sync_shared_params(pi.params, v.params)
    grads, _, _ = td.grads_and_metrics(batch)
    td._apply_jit_keep = refuse
    td.apply_grads(grads)
