"""The public doors on the core objects: ``init``, ``apply`` and ``init_optimizer_state``.

``f.init(raw_key(f.random_seed, 0))`` must reproduce the constructor's parameters bit for bit
(eager, jitted, vmapped over keys), ``apply`` must be ``function``, and
``init_optimizer_state(params)`` must be the state the fused step runs on.
"""

import gymnasium
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import assert_bitwise, func_pi, func_v, host_copy, make_batch

import a2c_jax
from a2c_jax._core._base import raw_key
from a2c_jax.policy_objectives import PPOClip, VanillaPG
from a2c_jax.td_learning import SimpleTD


def func_bn(S, is_training):
    """A function with Haiku state (batch norm), to check ``function_state`` too."""
    x = hk.Linear(4)(S)
    x = hk.BatchNorm(True, True, 0.9)(x, is_training)
    return jnp.ravel(hk.Linear(1)(x))


def _dict_env(env):
    space = gymnasium.spaces.Dict({"x": env.observation_space, "k": gymnasium.spaces.Discrete(3)})

    class DictEnv(gymnasium.Env):
        observation_space, action_space = space, env.action_space

    return DictEnv()


def func_dict_pi(S, is_training):
    X = jnp.concatenate([S["x"], S["k"]], axis=1)
    return {"logits": hk.Linear(2)(X)}


@pytest.fixture(params=["V", "Policy", "V-batchnorm", "Policy-dict-obs"])
def make(request, env):
    """``make(seed)`` builds the approximator under test with that seed."""
    cls, func, e = {"V": (a2c_jax.V, func_v, env), "Policy": (a2c_jax.Policy, func_pi, env),
                    "V-batchnorm": (a2c_jax.V, func_bn, env),
                    "Policy-dict-obs": (a2c_jax.Policy, func_dict_pi, _dict_env(env))}[request.param]
    return lambda seed: cls(func, e, random_seed=seed)


def test_init_reproduces_the_constructor_bitwise(make, request):
    f = make(11)
    key = raw_key(f.random_seed, 0)
    want = (f.params, f.function_state)
    assert_bitwise(jax.jit(f.init)(key), want)
    if "batchnorm" not in request.node.callspec.id:
        # eagerly too when init only draws random numbers; batch norm's initial statistics come
        # from a forward pass, which XLA fuses under jit and rounds differently op by op
        assert_bitwise(f.init(key), want)


def test_init_under_vmap_over_keys(make):
    """A batch of keys gives a batch of inits, each the constructor's of an approximator seeded
    for that key."""
    seeds = [11, 3, 4]
    f = make(seeds[0])
    keys = jnp.stack([raw_key(s, 0) for s in seeds])
    batches = [jax.jit(jax.vmap(f.init))(keys)]
    if not jax.tree.leaves(f.function_state):  # see the test above
        batches.append(jax.vmap(f.init)(keys))
    for batched in batches:
        for i, seed in enumerate(seeds):
            g = f if i == 0 else make(seed)
            assert_bitwise(jax.tree.map(lambda x, i=i: x[i], batched), (g.params, g.function_state))


def test_init_is_pure_and_reads_only_the_key(v):
    """Setting new params does not change what init returns."""
    before = host_copy(v.init(jax.random.PRNGKey(5)))
    v.params = jax.tree.map(lambda x: x + 1.0, v.params)
    assert_bitwise(v.init(jax.random.PRNGKey(5)), before)
    other = v.init(jax.random.PRNGKey(6))[0]
    assert not np.array_equal(other["torso/linear"]["w"], before[0]["torso/linear"]["w"])


def test_apply_is_function(v, pi):
    S = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    for f in (v, pi):
        a = f.apply(f.params, f.function_state, None, S, False)
        b = f.function(f.params, f.function_state, None, S, False)
        assert_bitwise(a, b)
        c = jax.jit(f.apply, static_argnums=4)(f.params, f.function_state, None, S, True)
        np.testing.assert_allclose(jax.tree.leaves(c[0])[0], jax.tree.leaves(a[0])[0], rtol=1e-6)


def test_apply_batches_under_vmap(v):
    """init and apply vmapped over keys: one value batch per parameter set."""
    keys = jnp.stack([raw_key(s, 0) for s in (1, 2, 3)])
    S = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)

    def values(key):
        params, state = v.init(key)
        return v.apply(params, state, None, S, False)[0]

    out = jax.jit(jax.vmap(values))(keys)
    assert out.shape == (3, 5)
    for i, k in enumerate(keys):
        p, st = v.init(k)
        np.testing.assert_allclose(out[i], v.apply(p, st, None, S, False)[0], rtol=1e-5, atol=1e-6)


# ---- init_optimizer_state -------------------------------------------------------------------


@pytest.mark.parametrize("flatten", [None, False, True])
@pytest.mark.parametrize("optimizer", [optax.adam(1e-3), optax.lamb(1e-3),
                                       optax.chain(optax.clip_by_global_norm(0.5),
                                                   optax.rmsprop(7e-4, decay=0.99, eps=1e-5))])
def test_init_optimizer_state_is_the_constructors(env, optimizer, flatten):
    v = a2c_jax.V(func_v, env, random_seed=1)
    td = SimpleTD(v, optimizer=optimizer, flatten_optimizer=flatten)
    assert_bitwise(td.init_optimizer_state(v.params), td.optimizer_state)
    assert_bitwise(jax.jit(td.init_optimizer_state)(v.params), td.optimizer_state)
    if td.optimizer_flattened:  # one flat vector per moment
        sizes = {np.size(x) for x in jax.tree.leaves(td.optimizer_state) if np.ndim(x) == 1}
        assert sizes == {sum(np.size(x) for x in jax.tree.leaves(v.params))}


def test_fresh_state_in_the_pure_step_equals_update(env, rng):
    """init + init_optimizer_state + step (the jit engine's path) equals construct + update."""
    batch = make_batch(rng, 16)
    Adv = rng.normal(size=16).astype(np.float32)
    pi = a2c_jax.Policy(func_pi, env, random_seed=5)
    for cls in (VanillaPG, PPOClip):
        pg = cls(pi.copy(), optimizer=optax.adam(0.01))
        params, _ = pi.init(raw_key(pi.random_seed, 0))

        @jax.jit
        def fresh_step(params, pg=pg):
            return pg.step(params, pg.init_optimizer_state(params), batch, Adv)

        new_params, new_opt, _ = fresh_step(params)
        pg.update(batch, Adv)
        # two compiled programs (the fresh state inlined in one): equal up to rounding
        assert jax.tree.structure(new_opt) == jax.tree.structure(pg.optimizer_state)
        for got, want in ((new_params, pg.pi.params), (new_opt, pg.optimizer_state)):
            jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                         got, want)


def test_actor_critic_init_optimizer_state(env):
    pi = a2c_jax.Policy(func_pi, env, random_seed=2)
    v = a2c_jax.V(func_v, env, random_seed=1)
    ac = a2c_jax.ActorCritic(VanillaPG(pi), SimpleTD(v))
    p_pi, _ = pi.init(raw_key(pi.random_seed, 0))
    p_v, _ = v.init(raw_key(v.random_seed, 0))
    joined = ac.join(p_pi, p_v)
    # v took the policy's torso at construction, so the join of the inits is ac.params
    assert_bitwise(joined, ac.params)
    assert_bitwise(ac.init_optimizer_state(joined), ac.optimizer_state)
    batched = jax.vmap(ac.init_optimizer_state)(jax.tree.map(lambda x: jnp.stack([x, x]), joined))
    assert_bitwise(jax.tree.map(lambda x: x[0], batched), ac.optimizer_state)
