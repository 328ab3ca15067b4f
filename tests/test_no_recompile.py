"""Hot jitted functions compile once: a second and third call reuse the cached executable.

Each object keeps its jitted callables as attributes; ``_cache_size()`` counts compiled variants.
"""

import numpy as np
import optax
from conftest import make_batch

from a2c_jax.policy_objectives import VanillaPG
from a2c_jax.td_learning import SimpleTD
from a2c_jax.utils import _sync, sync_shared_params


def states(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)


def test_pi_call_compiles_once(pi):
    """pi(s) (with and without logp) three times: one compiled sampler."""
    for i, s in enumerate(states(3)):
        pi(s, return_logp=bool(i % 2))
        assert pi._sample_jit._cache_size() == 1


def test_v_call_compiles_once(v):
    """v(s) three times: one compiled value function."""
    for s in states(3):
        v(s)
        assert v._value_jit._cache_size() == 1


def test_simple_td_update_compiles_once(v, rng):
    """SimpleTD.update on three different batches of the same size: one compiled step."""
    td = SimpleTD(v, optimizer=optax.adam(0.01))
    for _ in range(3):
        td.update(make_batch(rng, 8), return_td_error=True)
        assert td._step_jit._cache_size() == 1


def test_vanilla_pg_update_compiles_once(pi, v, rng):
    """VanillaPG.update fed SimpleTD's device td_error three times: one compiled step."""
    td = SimpleTD(v)
    vpg = VanillaPG(pi, optimizer=optax.adam(0.01))
    for _ in range(3):
        batch = make_batch(rng, 8)
        _, td_error = td.update(batch, return_td_error=True)
        vpg.update(batch, td_error)
        assert vpg._step_jit._cache_size() == 1


def test_sync_compiles_once_and_calls_stay_cached(pi, v, rng):
    """sync_shared_params in the recipe loop: no new compilation after the first round."""
    td, vpg = SimpleTD(v), VanillaPG(pi)
    sizes = []
    for _ in range(3):
        batch = make_batch(rng, 8)
        _, td_error = td.update(batch, return_td_error=True)
        vpg.update(batch, td_error)
        pi.params, v.params = sync_shared_params(pi.params, v.params)
        pi(batch.S[0])
        v(batch.S[0])
        sizes.append(
            (
                _sync._average._cache_size(),
                pi._sample_jit._cache_size(),
                v._value_jit._cache_size(),
                td._step_jit._cache_size(),
                vpg._step_jit._cache_size(),
            )
        )
    assert sizes[0] == sizes[1] == sizes[2]
    assert sizes[0][1:] == (1, 1, 1, 1)
