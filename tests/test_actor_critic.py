"""ActorCritic: one optimizer step on policy + vf_coef * value loss over a shared torso.

The reference is seed 000's own agent: ``fixtures/seed000_a2c_agent.json`` is written by
``fixtures/make_seed000_fixture.py``, which runs the seed's torch ``A2CAgent`` (one network with a
shared backbone, one RMSprop, gradient clipping) for three updates and records the rollouts and
the weights after each update. The replay here needs no torch.
"""

import json
import types
from pathlib import Path

import chex
import gymnasium
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import func_pi, func_v, make_batch

import a2c_jax
from a2c_jax.policy_objectives import VanillaPG
from a2c_jax.regularizers import EntropyRegularizer
from a2c_jax.reward_tracing import TransitionBatch, compute_gae
from a2c_jax.td_learning import SimpleTD
from a2c_jax.value_losses import huber, mse

FIXTURE = Path(__file__).parent / "fixtures" / "seed000_a2c_agent.json"
HIDDEN = 128  # the seed's A2CAgent network


# ---- seed 000's network in Haiku: a `backbone` module that pi and v share ------------------------


def backbone(S):
    with hk.experimental.name_scope("backbone"):
        net = hk.Sequential([hk.Linear(HIDDEN), jnp.tanh, hk.Linear(HIDDEN), jnp.tanh])
    return net(S)


def seed_pi(S, is_training):
    return {"logits": hk.Linear(2, name="actor")(backbone(S))}


def seed_v(S, is_training):
    return hk.Linear(1, name="critic")(backbone(S))[:, 0]


SPACES = types.SimpleNamespace(observation_space=gymnasium.spaces.Box(-np.inf, np.inf, (4,)),
                               action_space=gymnasium.spaces.Discrete(2))


def to_haiku(w: dict) -> dict:
    """torch's state dict (``Linear.weight`` is ``[out, in]``) as Haiku params (``w`` is ``[in, out]``)."""
    def linear(name):
        return {"w": jnp.asarray(np.asarray(w[f"{name}.weight"], np.float32).T),
                "b": jnp.asarray(np.asarray(w[f"{name}.bias"], np.float32))}
    return {"backbone/linear": linear("backbone.0"), "backbone/linear_1": linear("backbone.2"),
            "actor": linear("actor"), "critic": linear("critic")}


def seed_agent(params, optimizer=None):
    pi = a2c_jax.Policy(seed_pi, SPACES, random_seed=0)
    v = a2c_jax.V(seed_v, SPACES, random_seed=0)
    pi.params = {k: params[k] for k in pi.params}
    v.params = {k: params[k] for k in v.params}
    if optimizer is None:  # the seed's: torch's RMSprop adds eps outside the square root
        optimizer = optax.chain(optax.clip_by_global_norm(0.5),
                                optax.rmsprop(7e-4, decay=0.99, eps=1e-5, eps_in_sqrt=False))
    pg = VanillaPG(pi, regularizer=EntropyRegularizer(pi, beta=0.01))
    td = SimpleTD(v, loss_function=huber)
    return pi, v, a2c_jax.ActorCritic(pg, td, optimizer=optimizer, vf_coef=0.5)


def gae_batch(v, S, A, rewards, dones, next_state, gamma, lam):
    """The seed's update inputs: GAE on the current values, returns as ``Rn`` with ``In = 0``,
    advantages normalised with the unbiased std (torch's ``Tensor.std``)."""
    values = v.values(v.params, v.function_state, None, jnp.asarray(S))
    next_value = v.values(v.params, v.function_state, None, jnp.asarray(next_state)[None])[0]
    adv, ret = compute_gae(jnp.asarray(rewards, jnp.float32), values, next_value,
                           jnp.asarray(dones, jnp.float32), gamma=gamma, lam=lam)
    adv = (adv - adv.mean()) / (jnp.std(adv, ddof=1) + 1e-8)
    n = len(A)
    batch = TransitionBatch(S=S, A=A, logP=np.zeros(n, np.float32), Rn=np.asarray(ret),
                            In=np.zeros(n, np.float32), S_next=S, A_next=A,
                            logP_next=np.zeros(n, np.float32), W=np.ones(n, np.float32),
                            idx=np.arange(n, dtype=np.int32))
    return batch, np.asarray(adv)


# ---- the reference: seed 000's torch agent -----------------------------------------------------


def test_matches_seed000_torch_agent():
    """Three updates of the seed's A2CAgent (n_steps=64, SimpleEnv, seed 42), replayed: every
    parameter after every update within 1e-5 of torch's."""
    ref = json.loads(FIXTURE.read_text())
    pi, v, ac = seed_agent(to_haiku(ref["initial"]))
    diffs = []
    for u in ref["updates"]:
        S = np.asarray(u["states"], np.float32)
        A = np.asarray(u["actions"], np.int32)
        batch, adv = gae_batch(v, S, A, u["rewards"], u["dones"], u["next_state"], ref["gamma"],
                               ref["lam"])
        metrics = ac.update(batch, adv)
        assert metrics["ActorCritic/skipped"] == 0
        # the seed's returned `total` is the same loss, before the step
        np.testing.assert_allclose(metrics["ActorCritic/loss"], u["loss"], atol=1e-6)
        np.testing.assert_allclose(metrics["VanillaPG/entropy"], u["entropy"], atol=1e-6)
        want = to_haiku(u["after"])
        got = {**v.params, **pi.params}
        diffs.append(max(jax.tree.leaves(jax.tree.map(
            lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))), got, want))))
        chex.assert_trees_all_close(got, want, atol=1e-5, rtol=0)
        # one torso: both approximators hold the same values
        for k in ("backbone/linear", "backbone/linear_1"):
            chex.assert_trees_all_equal(pi.params[k], v.params[k])
    print("max |a2c_jax - torch| per update:", diffs)
    assert any(any(u["dones"]) for u in ref["updates"])  # an episode end is replayed too


# ---- the gradient of the shared torso ------------------------------------------------------------


@pytest.fixture
def shared(env):
    """The conftest layout (shared `torso`, heads `v` and `pi`), the torso initialised equal."""
    pi = a2c_jax.Policy(func_pi, env, random_seed=2)
    v = a2c_jax.V(func_v, env, random_seed=1)
    v.params = {**v.params, "torso/linear": pi.params["torso/linear"]}
    return pi, v


def hand_loss(params, batch, Adv, beta, vf_coef):
    """policy loss - beta * entropy + vf_coef * huber, written out in jax.numpy."""
    t = params["torso/linear"]
    X = jax.nn.relu(jnp.asarray(batch.S) @ t["w"] + t["b"])
    logits = X @ params["pi/linear"]["w"] + params["pi/linear"]["b"]
    values = (X @ params["v/linear"]["w"] + params["v/linear"]["b"])[:, 0]
    logp = jax.nn.log_softmax(logits)
    log_pi = jnp.take_along_axis(logp, jnp.asarray(batch.A)[:, None], axis=1)[:, 0]
    entropy = -jnp.sum(jnp.exp(logp) * logp, axis=1)
    W = jnp.asarray(batch.W)
    G = jnp.asarray(batch.Rn)  # In = 0
    err = jnp.abs(values - G)
    quad = jnp.minimum(err, 1.0)
    value_loss = jnp.mean(W * (0.5 * quad**2 + (err - quad)))
    return (-jnp.mean(W * Adv * log_pi) - beta * jnp.mean(W * entropy) + vf_coef * value_loss)


def returns_batch(rng, n=16):
    """A random batch whose targets are its returns: ``In = 0``."""
    return make_batch(rng, n)._replace(In=np.zeros(n, np.float32))


def test_shared_module_gets_the_sum_of_both_gradients(shared, rng):
    pi, v = shared
    pg = VanillaPG(pi, regularizer=EntropyRegularizer(pi, beta=0.03))
    ac = a2c_jax.ActorCritic(pg, SimpleTD(v), optimizer=optax.sgd(0.1), vf_coef=0.7)
    batch = returns_batch(rng)
    Adv = rng.normal(size=16).astype(np.float32)
    params = ac.params
    assert set(params) == {"torso/linear", "pi/linear", "v/linear"}
    want = jax.grad(hand_loss)(params, batch, Adv, 0.03, 0.7)
    grads, _, metrics = ac.grads_and_metrics(batch, Adv)
    chex.assert_trees_all_close(grads, want, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(metrics["ActorCritic/loss"], hand_loss(params, batch, Adv, 0.03, 0.7),
                               rtol=1e-6)
    # the torso's gradient is the sum of the two losses' gradients
    g_pi, _, _ = pg.grads_and_metrics(batch, Adv)
    g_v, _, _ = SimpleTD(v).grads_and_metrics(batch)
    chex.assert_trees_all_close(grads["torso/linear"],
                                jax.tree.map(lambda a, b: a + 0.7 * b, g_pi["torso/linear"],
                                             g_v["torso/linear"]), atol=1e-6, rtol=1e-5)
    # apply_grads: plain SGD, both approximators hold the same new torso
    before = jax.tree.map(np.array, params)
    ac.apply_grads(grads)
    want_params = jax.tree.map(lambda p, g: p - 0.1 * g, before, want)
    chex.assert_trees_all_close({**v.params, **pi.params}, want_params, atol=1e-6)
    chex.assert_trees_all_equal(pi.params["torso/linear"], v.params["torso/linear"])


def test_update_metrics_and_both_hold_the_torso(shared, rng):
    pi, v = shared
    pg = VanillaPG(pi, regularizer=EntropyRegularizer(pi, beta=0.01))
    ac = a2c_jax.ActorCritic(pg, SimpleTD(v))
    v_head = np.array(v.params["v/linear"]["w"])
    for _ in range(3):
        metrics = ac.update(returns_batch(rng), rng.normal(size=16).astype(np.float32))
    for key in ("ActorCritic/loss", "ActorCritic/grads_norm", "ActorCritic/skipped",
                "VanillaPG/loss", "VanillaPG/entropy", "SimpleTD/loss", "SimpleTD/td_error",
                "SimpleTD/value"):
        assert key in metrics, key
    total = metrics["VanillaPG/loss"] + 0.5 * metrics["SimpleTD/loss"]
    np.testing.assert_allclose(metrics["ActorCritic/loss"], total, rtol=1e-5)
    chex.assert_trees_all_equal(pi.params["torso/linear"], v.params["torso/linear"])
    assert not np.allclose(v.params["v/linear"]["w"], v_head)  # the critic's head moved too
    # the pure step from the held state reproduces update()
    batch, Adv = returns_batch(rng), rng.normal(size=16).astype(np.float32)
    params, opt_state = jax.tree.map(jnp.array, ac.params), jax.tree.map(jnp.array,
                                                                          ac.optimizer_state)
    new_params, _, _ = jax.jit(ac.step)(params, opt_state, batch, Adv)
    ac.update(batch, Adv)
    chex.assert_trees_all_close(new_params, ac.params, atol=1e-6)


def test_v_takes_the_policys_torso_at_construction(env):
    """pi and v built from different seeds (as coax's scripts build them) hold one torso as soon
    as the ActorCritic exists: v(s) before the first step already uses the trained torso, in
    its own buffers; v's head is untouched."""
    pi = a2c_jax.Policy(func_pi, env, random_seed=2)
    v = a2c_jax.V(func_v, env, random_seed=1)
    before = jax.tree.map(np.array, v.params)
    assert not np.allclose(before["torso/linear"]["w"], pi.params["torso/linear"]["w"])
    a2c_jax.ActorCritic(VanillaPG(pi), SimpleTD(v))
    chex.assert_trees_all_equal(v.params["torso/linear"], pi.params["torso/linear"])
    assert v.params["torso/linear"]["w"] is not pi.params["torso/linear"]["w"]
    chex.assert_trees_all_equal(v.params["v/linear"], before["v/linear"])


def test_donates_and_keeps_what_others_hold(shared, rng):
    """After a step pi and v hold separate buffers for the torso, so the next step donates; a
    user's reference to the old params keeps them intact (the step then does not donate)."""
    pi, v = shared
    ac = a2c_jax.ActorCritic(VanillaPG(pi), SimpleTD(v))
    batch, Adv = returns_batch(rng), rng.normal(size=16).astype(np.float32)
    ac.update(batch, Adv)
    assert pi.params["torso/linear"]["w"] is not v.params["torso/linear"]["w"]
    assert ac._donatable()
    held = pi.params
    snapshot = jax.tree.map(np.array, held)
    assert not ac._donatable()
    ac.update(batch, Adv)
    chex.assert_trees_all_equal(jax.tree.map(np.asarray, held), snapshot)
    del held
    ac.update(batch, Adv)
    assert ac._step_jit._cache_size() == 1


def test_pure_step_in_a_scan(shared, rng):
    pi, v = shared
    ac = a2c_jax.ActorCritic(VanillaPG(pi), SimpleTD(v, loss_function=mse))
    batches = [returns_batch(rng) for _ in range(4)]
    stacked = jax.tree.map(lambda *x: np.stack(x), *batches)
    advs = rng.normal(size=(4, 16)).astype(np.float32)

    @jax.jit
    def train(params, opt_state):
        def body(carry, xs):
            params, opt_state, metrics = ac.step(*carry, *xs)
            return (params, opt_state), metrics["ActorCritic/loss"]
        return jax.lax.scan(body, (params, opt_state), (stacked, advs))

    (params, _), losses = train(ac.params, ac.optimizer_state)
    assert losses.shape == (4,) and np.all(np.isfinite(losses))
    for b, a in zip(batches, advs):
        ac.update(b, a)
    chex.assert_trees_all_close(params, ac.params, atol=1e-5)


def test_hyperparameters_are_traced(shared, rng):
    """Changing vf_coef, the regularizer's beta: no new compilation, and the new values count."""
    pi, v = shared
    reg = EntropyRegularizer(pi, beta=0.01)
    ac = a2c_jax.ActorCritic(VanillaPG(pi, regularizer=reg), SimpleTD(v), optimizer=optax.sgd(0.0))
    batch, Adv = returns_batch(rng), rng.normal(size=16).astype(np.float32)
    m1 = ac.update(batch, Adv)
    ac.vf_coef, reg.beta = 2.0, 0.5
    m2 = ac.update(batch, Adv)
    ac.vf_coef = 1.0
    ac.update(batch, Adv)
    # (the first call ran the non-donating form: the fixture's pi and v held the same torso arrays)
    assert ac._step_jit._cache_size() <= 1 and ac._step_jit_keep._cache_size() <= 1
    # sgd(0): nothing moved, so only the coefficients differ
    want = m2["VanillaPG/loss"] + 2.0 * m2["SimpleTD/loss"]
    np.testing.assert_allclose(m2["ActorCritic/loss"], want, rtol=1e-5)
    assert m2["VanillaPG/loss"] < m1["VanillaPG/loss"]  # the larger entropy bonus

    traced = []

    def loss_of(hparams):
        traced.append(1)
        return ac.loss_fn(ac.params, ac.function_state, hparams, None, batch, Adv)[0]

    f = jax.jit(loss_of)
    f(ac.hyperparams)
    ac.vf_coef = 0.25
    f(ac.hyperparams)
    assert len(traced) == 1


def test_non_finite_step_is_skipped(shared, rng):
    pi, v = shared
    ac = a2c_jax.ActorCritic(VanillaPG(pi), SimpleTD(v))
    ac.update(returns_batch(rng), rng.normal(size=16).astype(np.float32))  # a state to keep
    before = jax.tree.map(np.array, (ac.params, ac.optimizer_state, v.params))
    batch = returns_batch(rng)
    Rn = batch.Rn.copy()
    Rn[3] = np.nan
    metrics = ac.update(batch._replace(Rn=Rn), rng.normal(size=16).astype(np.float32))
    assert metrics["ActorCritic/skipped"] == 1
    chex.assert_trees_all_equal((ac.params, ac.optimizer_state, v.params), before)
    metrics = ac.update(batch, np.full(16, np.inf, np.float32))
    assert metrics["ActorCritic/skipped"] == 1
    chex.assert_trees_all_equal((ac.params, ac.optimizer_state, v.params), before)


def test_default_optimizer_is_seed000s(shared):
    pi, v = shared
    ac = a2c_jax.ActorCritic(VanillaPG(pi), SimpleTD(v))
    g = jax.tree.map(lambda x: jnp.full_like(x, 3.0), ac.params)  # global norm > 0.5: clipped
    want = optax.chain(optax.clip_by_global_norm(0.5),
                       optax.rmsprop(7e-4, decay=0.99, eps=1e-5, eps_in_sqrt=False))
    u_want, _ = want.update(g, want.init(ac.params))
    u_got, _ = ac.optimizer.update(g, ac.optimizer.init(ac.params))
    chex.assert_trees_all_close(u_got, u_want)


def test_separate_networks_work_too(env, rng):
    """No module in common: two independent parameter sets, still one optimizer step."""
    def pi_only(S, is_training):
        return {"logits": hk.Linear(2, name="pi_head")(S)}

    def v_only(S, is_training):
        return hk.Linear(1, name="v_head")(S)[:, 0]

    pi, v = a2c_jax.Policy(pi_only, env, random_seed=0), a2c_jax.V(v_only, env, random_seed=0)
    ac = a2c_jax.ActorCritic(VanillaPG(pi), SimpleTD(v), optimizer=optax.sgd(0.1))
    before = jax.tree.map(np.array, (pi.params, v.params))
    ac.update(returns_batch(rng), rng.normal(size=16).astype(np.float32))
    for new, old in zip((pi.params, v.params), before):
        assert not np.allclose(jax.tree.leaves(new)[0], jax.tree.leaves(old)[0])


# ---- bad input ---------------------------------------------------------------------------------


def test_swapped_or_wrong_kinds_raise(shared):
    pi, v = shared
    pg, td = VanillaPG(pi), SimpleTD(v)
    with pytest.raises(TypeError, match="policy_objective must be a PolicyObjective.*SimpleTD"):
        a2c_jax.ActorCritic(td, pg)
    with pytest.raises(TypeError, match="td_learning must be a SimpleTD.*VanillaPG"):
        a2c_jax.ActorCritic(pg, pg)
    with pytest.raises(TypeError, match="policy_objective must be a PolicyObjective.*Policy"):
        a2c_jax.ActorCritic(pi, td)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_bad_vf_coef_raises(shared, bad):
    pi, v = shared
    with pytest.raises(ValueError, match="vf_coef must be finite and >= 0"):
        a2c_jax.ActorCritic(VanillaPG(pi), SimpleTD(v), vf_coef=bad)
    ac = a2c_jax.ActorCritic(VanillaPG(pi), SimpleTD(v))
    with pytest.raises(ValueError, match="vf_coef"):
        ac.vf_coef = bad
    with pytest.raises(TypeError, match="vf_coef must be a number"):
        ac.vf_coef = "half"


def test_shared_module_with_other_shapes_raises(env):
    def pi_wide(S, is_training):
        X = hk.Linear(8, name="torso")(S)
        return {"logits": hk.Linear(2, name="pi")(X)}

    def v_narrow(S, is_training):
        X = hk.Linear(4, name="torso")(S)
        return hk.Linear(1, name="v")(X)[:, 0]

    pi, v = a2c_jax.Policy(pi_wide, env, random_seed=0), a2c_jax.V(v_narrow, env, random_seed=0)
    with pytest.raises(ValueError, match="module 'torso'"):
        a2c_jax.ActorCritic(VanillaPG(pi), SimpleTD(v))


def test_shared_module_with_other_structure_raises(env):
    def pi_one(S, is_training):
        with hk.experimental.name_scope("body"):
            X = jnp.tanh(hk.Linear(8)(S))
        return {"logits": hk.Linear(2, name="pi")(X)}

    def v_two(S, is_training):
        with hk.experimental.name_scope("body"):
            X = hk.Linear(8)(jnp.tanh(hk.Linear(8)(S)))
        return hk.Linear(1, name="v")(X)[:, 0]

    pi, v = a2c_jax.Policy(pi_one, env, random_seed=0), a2c_jax.V(v_two, env, random_seed=0)
    with pytest.raises(ValueError, match="module 'body'"):
        a2c_jax.ActorCritic(VanillaPG(pi), SimpleTD(v))


def test_check_inputs_is_public_and_the_union_is_a_view(shared, rng):
    """ActorCritic.check_inputs refuses what update refuses; the union is no BaseFunc."""
    pi, v = shared
    ac = a2c_jax.ActorCritic(VanillaPG(pi), SimpleTD(v))
    batch = returns_batch(rng)
    ac.check_inputs(batch, np.zeros(16, np.float32))
    with pytest.raises(ValueError, match="Adv has shape"):
        ac.check_inputs(batch, np.zeros((16, 1), np.float32))
    with pytest.raises(ValueError, match="Adv has shape"):
        ac.update(batch, np.zeros(15, np.float32))
    assert not isinstance(ac._union, a2c_jax._core.BaseFunc)


def test_shared_module_with_other_dtype_raises(env):
    pi = a2c_jax.Policy(func_pi, env, random_seed=2)
    v = a2c_jax.V(func_v, env, random_seed=1)
    v._params = {**v._params, "torso/linear": jax.tree.map(lambda x: x.astype(jnp.float16),
                                                           v._params["torso/linear"])}
    with pytest.raises(ValueError, match="module 'torso'"):
        a2c_jax.ActorCritic(VanillaPG(pi), SimpleTD(v))
