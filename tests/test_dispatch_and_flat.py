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


# ---- the probe falls back to the leaf-wise optimizer on whatever it cannot handle ------------


def _mask(params):
    return jax.tree.map(lambda x: x.ndim == 2, params)  # weights only, no biases


def _labels(params):
    return {k: {kk: "torso" if k.startswith("torso") else "head" for kk in d}
            for k, d in params.items()}


FALLBACK_OPTIMIZERS = {
    "masked-dict": lambda p: optax.masked(optax.adam(0.01), _mask(p)),
    "masked-callable": lambda p: optax.masked(optax.adam(0.01), _mask),
    "multi_transform-dict": lambda p: optax.multi_transform(
        {"torso": optax.adam(0.01), "head": optax.sgd(0.1)}, _labels(p)),
    "multi_transform-callable": lambda p: optax.multi_transform(
        {"torso": optax.adam(0.01), "head": optax.sgd(0.1)}, _labels),
}


@pytest.mark.parametrize("name", sorted(FALLBACK_OPTIMIZERS))
def test_tree_aware_optimizers_fall_back_and_train(v, rng, name):
    """masked/multi_transform over a tree of labels: constructed leaf-wise, and each update is the
    optax optimizer applied by hand."""
    optimizer = FALLBACK_OPTIMIZERS[name](v.params)
    td = SimpleTD(v, optimizer=optimizer)
    assert td.optimizer_flattened is False
    params, opt_state = host_copy(v.params), optimizer.init(v.params)
    initial = host_copy(v.params)
    for _ in range(2):
        batch = make_batch(rng, 16)
        grads, _, _ = td.grads_and_metrics(batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        td.update(batch)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                     v.params, params)
    if name.startswith("masked"):  # optax.masked passes the masked-out gradients through
        assert not np.allclose(v.params["v/linear"]["w"], initial["v/linear"]["w"])


def test_an_optimizer_that_raises_in_the_probe_falls_back(v, rng):
    """Any exception of the flat form means leaf-wise; the optimizer's own errors still surface."""
    def init(params):
        return optax.EmptyState()

    def update(updates, state, params=None):
        if not isinstance(updates, dict):
            raise RuntimeError("this optimizer only takes Haiku dicts")
        return jax.tree.map(lambda g: -0.1 * g, updates), state

    td = SimpleTD(v, optimizer=optax.GradientTransformation(init, update))
    assert td.optimizer_flattened is False
    before = host_copy(v.params)
    batch = make_batch(rng, 16)
    grads, _, _ = td.grads_and_metrics(batch)
    td.update(batch)
    jax.tree.map(lambda p, g, new: np.testing.assert_allclose(new, p - 0.1 * g, rtol=1e-6, atol=1e-7),
                 before, grads, v.params)

    def broken_init(params):
        raise RuntimeError("broken optimizer")

    with pytest.raises(RuntimeError, match="broken optimizer"):
        SimpleTD(v, optimizer=optax.GradientTransformation(broken_init, update))


def test_flatten_optimizer_false_skips_the_probe(v, monkeypatch):
    """flatten_optimizer=False never builds the flat form (the visible switch)."""
    import a2c_jax._core._flat_optimizer as flat_module

    calls = []
    real_flatten = optax.flatten
    monkeypatch.setattr(flat_module.optax, "flatten",
                        lambda *a, **k: calls.append(1) or real_flatten(*a, **k))
    td = SimpleTD(v, optimizer=optax.adam(0.01), flatten_optimizer=False)
    assert td.optimizer_flattened is False and not calls
    assert SimpleTD(v, optimizer=optax.adam(0.01)).optimizer_flattened is True and calls


STARTED_PROBE = """
import os
os.environ["JAX_PLATFORMS"] = "cpu"
import jax
from a2c_jax.utils._dispatch import _PROBE_OPTION, _backends_started
before = getattr(jax.config, _PROBE_OPTION)
print(_backends_started(), getattr(jax.config, _PROBE_OPTION) == before)
jax.numpy.ones(1).block_until_ready()
print(_backends_started(), getattr(jax.config, _PROBE_OPTION) == before)
"""


def test_backends_started_probe_uses_public_config_and_changes_nothing():
    """Not started before the first computation, started after; the probed option is restored."""
    out = subprocess.run([sys.executable, "-c", STARTED_PROBE], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "True", "True"]
