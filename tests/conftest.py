"""Shared fixtures: a small CartPole env, tiny name-scoped Haiku functions and numpy references.

The Haiku functions follow the coax A2C recipe (a shared ``torso``, ``v`` and ``pi`` heads, each
name-scoped) but are tiny, so that every forward pass can be recomputed in numpy from the params.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import gymnasium  # noqa: E402
import haiku as hk  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

import a2c_jax  # noqa: E402
from a2c_jax.reward_tracing import TransitionBatch  # noqa: E402

HIDDEN = 8

# deterministic property tests: the same examples on every run, no example database
settings.register_profile("a2c_jax", derandomize=True, database=None, deadline=None)
settings.load_profile("a2c_jax")


# ---- Haiku functions (coax recipe layout) --------------------------------------------------------


def torso(S, is_training):
    with hk.experimental.name_scope("torso"):
        net = hk.Sequential([hk.Linear(HIDDEN), jax.nn.relu])
    return net(S)


def func_v(S, is_training):
    X = torso(S, is_training)
    with hk.experimental.name_scope("v"):
        value = hk.Sequential([hk.Linear(1), jnp.ravel])
    return value(X)


def func_pi(S, is_training):
    X = torso(S, is_training)
    with hk.experimental.name_scope("pi"):
        logits = hk.Linear(2)
    return {"logits": logits(X)}


def func_pi_box(S, is_training):
    """A Gaussian policy head for a 1-d ``Box`` action (Pendulum)."""
    X = torso(S, is_training)
    with hk.experimental.name_scope("pi"):
        mu = hk.Linear(1)(X)
        logvar = hk.Linear(1, name="logvar")(X)
    return {"mu": mu, "logvar": logvar}


# ---- numpy references of the same networks ------------------------------------------------------


def _np(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def np_torso(params, S):
    p = _np(params)["torso/linear"]
    return np.maximum(np.asarray(S, np.float64) @ p["w"] + p["b"], 0.0)


def np_value(params, S):
    """``func_v`` in float64 numpy: ``[B]``."""
    p = _np(params)["v/linear"]
    return (np_torso(params, S) @ p["w"] + p["b"])[:, 0]


def np_logits(params, S):
    """``func_pi`` in float64 numpy: ``[B, 2]``."""
    p = _np(params)["pi/linear"]
    return np_torso(params, S) @ p["w"] + p["b"]


def np_log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def jnp_logits(params, S):
    """``func_pi`` written directly in jax.numpy (independent of Haiku), for ``jax.grad``."""
    t, h = params["torso/linear"], params["pi/linear"]
    X = jax.nn.relu(jnp.asarray(S, jnp.float32) @ t["w"] + t["b"])
    return X @ h["w"] + h["b"]


def host_copy(tree):
    """A host (numpy) copy of a pytree, safe to keep after the device buffers are donated."""
    return jax.tree.map(lambda x: np.array(x, copy=True), tree)


def device_copy(tree):
    return jax.tree.map(lambda x: jnp.array(x, copy=True), tree)


def make_batch(
    rng: np.random.Generator,
    batch_size: int,
    obs_dim: int = 4,
    n_actions: int = 2,
    gamma: float = 0.9,
    reward_scale: float = 1.0,
) -> TransitionBatch:
    """A random TransitionBatch of CartPole-shaped transitions (some terminal, some not)."""
    f32 = np.float32
    return TransitionBatch(
        S=rng.normal(size=(batch_size, obs_dim)).astype(f32),
        A=rng.integers(0, n_actions, size=batch_size).astype(np.int32),
        logP=np.log(rng.uniform(0.2, 0.8, size=batch_size)).astype(f32),
        Rn=(reward_scale * rng.normal(size=batch_size)).astype(f32),
        In=np.where(rng.uniform(size=batch_size) < 0.3, 0.0, gamma**2).astype(f32),
        S_next=rng.normal(size=(batch_size, obs_dim)).astype(f32),
        A_next=rng.integers(0, n_actions, size=batch_size).astype(np.int32),
        logP_next=np.log(rng.uniform(0.2, 0.8, size=batch_size)).astype(f32),
        W=rng.uniform(0.5, 1.5, size=batch_size).astype(f32),
        idx=np.arange(batch_size, dtype=np.int32),
    )


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def env():
    e = gymnasium.make("CartPole-v1")
    yield e
    e.close()


@pytest.fixture
def box_env():
    e = gymnasium.make("Pendulum-v1")
    yield e
    e.close()


@pytest.fixture
def v(env):
    return a2c_jax.V(func_v, env, random_seed=1)


@pytest.fixture
def pi(env):
    return a2c_jax.Policy(func_pi, env, random_seed=2)


@pytest.fixture
def pi_box(box_env):
    return a2c_jax.Policy(func_pi_box, box_env, random_seed=3)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def batch(rng):
    return make_batch(rng, 16)


# ---- TensorBoard event files ------------------------------------------------------------------


def read_scalars(path):
    """(tag, step, value) of every scalar in a TensorBoard event file (tested in test_utils_coax)."""
    return a2c_jax.utils.read_event_file(path)
