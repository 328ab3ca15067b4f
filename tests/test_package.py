"""The public names of API.md exist, and TransitionBatch is a pytree with batch_size/from_single."""

import importlib
import subprocess
import sys

import jax
import numpy as np
import pytest

import a2c_jax

API_NAMES = [
    "V",
    "Policy",
    "policy_objectives.VanillaPG",
    "policy_objectives.PPOClip",
    "td_learning.SimpleTD",
    "regularizers.EntropyRegularizer",
    "reward_tracing.NStep",
    "reward_tracing.MonteCarlo",
    "reward_tracing.TransitionBatch",
    "experience_replay.SimpleReplayBuffer",
    "utils.sync_shared_params",
    "wrappers.TrainMonitor",
]


@pytest.mark.parametrize("name", API_NAMES)
def test_api_name_exists(name):
    """Every name the contract lists is reachable from `import a2c_jax`, and listed in __all__."""
    obj = a2c_jax
    parts = name.split(".")
    for i, part in enumerate(parts):
        assert hasattr(obj, part), f"a2c_jax.{'.'.join(parts[: i + 1])} is missing"
        if hasattr(obj, "__all__"):
            assert part in obj.__all__, f"{part} not in {obj.__name__}.__all__"
        obj = getattr(obj, part)
    assert callable(obj)


def test_import_has_no_side_effects():
    """Importing a2c_jax registers no gymnasium envs and imports cleanly in a fresh process."""
    code = (
        "import gymnasium; before = set(gymnasium.registry); import a2c_jax; "
        "assert set(gymnasium.registry) == before; print(a2c_jax.__version__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"JAX_PLATFORMS": "cpu", "PATH": ""},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == a2c_jax.__version__


def test_subpackages_importable():
    """Each subpackage imports on its own."""
    for sub in (
        "experience_replay",
        "policy_objectives",
        "proba_dists",
        "regularizers",
        "reward_tracing",
        "td_learning",
        "training",
        "utils",
        "value_losses",
        "wrappers",
    ):
        importlib.import_module(f"a2c_jax.{sub}")


def test_transition_batch_is_a_pytree():
    """jax.tree.map over a TransitionBatch keeps its type and fields; it round-trips through jit."""
    TB = a2c_jax.reward_tracing.TransitionBatch
    b = TB.from_single(s=np.array([1.0, 2.0]), a=1, logp=-0.5, r=2.0, done=False, gamma=0.9)
    doubled = jax.tree.map(lambda x: x * 2, b)
    assert isinstance(doubled, TB)
    np.testing.assert_allclose(doubled.Rn, [4.0])
    assert len(jax.tree.leaves(b)) == len(TB._fields) == 10
    out = jax.jit(lambda t: t)(b)
    assert isinstance(out, TB)
    assert out.batch_size == 1


def test_from_single_fields():
    """from_single: batch of one, In = gamma (or 0 when done), *_next default to s, a, logp."""
    TB = a2c_jax.reward_tracing.TransitionBatch
    s = np.array([0.1, 0.2, 0.3], np.float32)
    b = TB.from_single(s=s, a=2, logp=-1.5, r=3.0, done=False, gamma=0.8)
    assert b.batch_size == 1
    np.testing.assert_array_equal(b.S, s[None])
    np.testing.assert_array_equal(b.A, [2])
    np.testing.assert_allclose(b.logP, [-1.5])
    np.testing.assert_allclose(b.Rn, [3.0])
    np.testing.assert_allclose(b.In, [0.8])
    np.testing.assert_array_equal(b.S_next, s[None])
    np.testing.assert_array_equal(b.A_next, [2])
    np.testing.assert_allclose(b.W, [1.0])
    s_next = np.array([9.0, 9.0, 9.0], np.float32)
    d = TB.from_single(s=s, a=0, logp=0.0, r=1.0, done=True, gamma=0.8, s_next=s_next, w=0.5)
    np.testing.assert_allclose(d.In, [0.0])
    np.testing.assert_array_equal(d.S_next, s_next[None])
    np.testing.assert_allclose(d.W, [0.5])
