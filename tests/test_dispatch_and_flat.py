"""Synchronous CPU dispatch at start-up, and the flat-vector optimizer choice."""

import os
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest
from conftest import host_copy, make_batch

from a2c_jax.td_learning import SimpleTD

PROBE = """
import os, sys
os.environ["JAX_PLATFORMS"] = "cpu"
import gymnasium, haiku as hk, jax, jax.numpy as jnp
if sys.argv[1] == "init-first":
    jnp.ones(1).block_until_ready()
import a2c_jax
a2c_jax.V(lambda S, t: hk.Linear(1)(S)[:, 0], gymnasium.make("CartPole-v1"), random_seed=0)
print(jax.config.values["jax_cpu_enable_async_dispatch"])
"""


@pytest.mark.parametrize("mode, opt_out, expected", [
    ("fresh", False, "False"),      # a2c_jax starts JAX: synchronous
    ("fresh", True, "True"),        # A2C_JAX_ASYNC_DISPATCH=1: JAX's default kept
    ("init-first", False, "True"),  # JAX already running: nothing changed
])
def test_cpu_dispatch_choice(mode, opt_out, expected):
    """The first approximator makes CPU dispatch synchronous, unless opted out or too late."""
    env = {k: v for k, v in os.environ.items() if k != "A2C_JAX_ASYNC_DISPATCH"}
    if opt_out:
        env["A2C_JAX_ASYNC_DISPATCH"] = "1"
    out = subprocess.run([sys.executable, "-c", PROBE, mode], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == expected


@pytest.mark.parametrize("optimizer, flat", [
    (optax.adam(0.01), True), (optax.rmsprop(0.01), True), (optax.sgd(0.1), True),
    (optax.lamb(0.01), False), (optax.lars(0.01), False),
])
def test_flat_only_for_element_wise_optimizers(v, optimizer, flat):
    """Element-wise optimizers are flattened; per-array ones (LAMB, LARS) are not."""
    assert SimpleTD(v.copy(), optimizer=optimizer).optimizer_flattened is flat


def test_flat_and_leafwise_updates_agree(v, rng):
    """Three updates with the flattened adam equal three leaf-wise ones (float tolerance)."""
    batches = [make_batch(rng, 16) for _ in range(3)]
    results = []
    for flatten in (True, False):
        f = v.copy()
        td = SimpleTD(f, optimizer=optax.adam(0.01), flatten_optimizer=flatten)
        assert td.optimizer_flattened is flatten
        for b in batches:
            td.update(b)
        results.append(host_copy(f.params))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), *results)
