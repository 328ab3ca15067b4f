"""``state_dict`` / ``load_state_dict`` on V, Policy and the updaters.

A round trip through numpy (as a checkpoint file stores it) into freshly built objects of other
seeds must give bitwise the same subsequent updates and samples; malformed entries are refused
with a message naming them, and leave the object unchanged.
"""

import json

import jax
import numpy as np
import optax
import pytest
from conftest import assert_bitwise, func_pi, func_v, host_copy, make_batch

import a2c_jax
from a2c_jax.policy_objectives import PPOClip, VanillaPG
from a2c_jax.regularizers import EntropyRegularizer
from a2c_jax.td_learning import SimpleTD


def plain(d):
    """True if ``d`` is nested dicts with string keys over arrays and Python numbers only."""
    if isinstance(d, dict):
        return all(isinstance(k, str) and plain(v) for k, v in d.items())
    return isinstance(d, (np.ndarray, jax.Array, int, float))


def skeleton(d):
    """JSON-able: every array replaced by its shape and dtype."""
    if isinstance(d, dict):
        return {k: skeleton(v) for k, v in d.items()}
    return [list(np.shape(d)), str(np.asarray(d).dtype)]


# ---- layouts --------------------------------------------------------------------------------------


def test_function_layout(v, pi):
    for f in (v, pi):
        d = f.state_dict()
        assert set(d) == {"params", "function_state", "rng"} and plain(d)
        assert_bitwise(d["params"], f.params)
        assert d["function_state"] == {}
        assert np.shape(d["rng"]) == (2,) and np.asarray(d["rng"]).dtype == np.uint32
        json.dumps(skeleton(d))


@pytest.mark.parametrize("optimizer, flatten, want", [
    (optax.adam(1e-3), True, {"0": {"count": [[], "int32"], "mu": [[49], "float32"],
                                    "nu": [[49], "float32"]}}),
    (optax.adam(1e-3), False, {"0": {"count": [[], "int32"],
                                     "mu": {"torso/linear": {"b": [[8], "float32"],
                                                             "w": [[4, 8], "float32"]},
                                            "v/linear": {"b": [[1], "float32"],
                                                         "w": [[8, 1], "float32"]}},
                                     "nu": {"torso/linear": {"b": [[8], "float32"],
                                                             "w": [[4, 8], "float32"]},
                                            "v/linear": {"b": [[1], "float32"],
                                                         "w": [[8, 1], "float32"]}}}}),
    # clip_by_global_norm and the learning-rate scale have empty states: nothing written
    (optax.chain(optax.clip_by_global_norm(0.5), optax.rmsprop(1e-3)), True,
     {"1": {"0": {"nu": [[49], "float32"]}}}),
])
def test_updater_layout(v, optimizer, flatten, want):
    td = SimpleTD(v, optimizer=optimizer, flatten_optimizer=flatten)
    d = td.state_dict()
    assert set(d) == {"optimizer_state", "rng"} and plain(d)
    assert skeleton(d["optimizer_state"]) == want
    assert json.dumps(skeleton(d))


# ---- round trips ----------------------------------------------------------------------------------


def build(env, seed):
    """A policy, a value function and every updater over them (as a training script has)."""
    pi = a2c_jax.Policy(func_pi, env, random_seed=seed)
    v = a2c_jax.V(func_v, env, random_seed=seed + 1)
    pi2 = a2c_jax.Policy(func_pi, env, random_seed=seed + 2)
    v2 = a2c_jax.V(func_v, env, random_seed=seed + 3)
    objs = {
        "pi": pi, "v": v, "pi2": pi2, "v2": v2,
        "td": SimpleTD(v, optimizer=optax.adam(0.01)),                           # flat
        "pg": VanillaPG(pi, optimizer=optax.lamb(0.01),                          # leaf-wise
                        regularizer=EntropyRegularizer(pi, beta=0.01)),
        "ppo": PPOClip(pi, optimizer=optax.rmsprop(0.01)),
    }
    objs["ac"] = a2c_jax.ActorCritic(VanillaPG(pi2), SimpleTD(v2))
    return objs


def train(objs, batches, advs, S):
    """Updates with every updater, then samples: the outcome, as host arrays."""
    out = []
    for b, adv in zip(batches, advs):
        out.append(objs["td"].update(b, return_td_error=True)[1])
        out.append(objs["pg"].update(b, adv)["VanillaPG/loss"])
        out.append(objs["ppo"].update(b, adv)["PPOClip/loss"])
        out.append(objs["ac"].update(b._replace(In=np.zeros_like(b.In)), adv)["ActorCritic/loss"])
    out.append(objs["pi"].batch(S, return_logp=True))
    out.append(objs["pi"](S[0]))
    out.append({k: objs[k].state_dict() for k in objs})
    return host_copy(out)


def test_round_trip_gives_identical_updates(env, rng):
    batches = [make_batch(rng, 16) for _ in range(3)]
    advs = [rng.normal(size=16).astype(np.float32) for _ in range(3)]
    S = rng.normal(size=(6, 4)).astype(np.float32)
    a = build(env, 10)
    train(a, batches[:1], advs[:1], S)  # non-trivial optimizer states and keys
    saved = host_copy({k: obj.state_dict() for k, obj in a.items()})  # numpy, as a file holds
    want = train(a, batches[1:], advs[1:], S)

    b = build(env, 50)  # other seeds: everything must come from the state dicts
    for k, obj in b.items():
        obj.load_state_dict(saved[k])
    # loaded leaves are device arrays of the dtypes, shapes and weak types the step compiled for
    for k in ("td", "pg", "ppo", "ac"):
        for x, y in zip(jax.tree.leaves(a[k].optimizer_state), jax.tree.leaves(b[k].optimizer_state)):
            assert isinstance(y, jax.Array) and x.aval == y.aval
    assert jax.tree.structure(a["pg"].optimizer_state) == jax.tree.structure(b["pg"].optimizer_state)
    assert_bitwise(train(b, batches[1:], advs[1:], S), want)


def test_round_trip_of_the_live_dicts_in_place(v, rng):
    """Loading the live (device) state dict back, then updating, donates nothing the dict holds."""
    td = SimpleTD(v, optimizer=optax.adam(0.01))
    batch = make_batch(rng, 16)
    td.update(batch)
    dv, dtd = v.state_dict(), td.state_dict()
    snapshot = host_copy((dv, dtd))
    v.load_state_dict(dv)
    td.load_state_dict(dtd)
    td.update(batch)
    assert_bitwise((dv, dtd), snapshot)  # still readable and unchanged


def test_python_scalars_for_scalar_entries(v):
    td = SimpleTD(v, optimizer=optax.adam(0.01))
    d = host_copy(td.state_dict())
    d["optimizer_state"]["0"]["count"] = 7
    td.load_state_dict(d)
    count = td.optimizer_state[0].count
    assert isinstance(count, jax.Array) and count.dtype == np.int32 and int(count) == 7


# ---- refusals -------------------------------------------------------------------------------------


def _edit(d, path, value=None, delete=False):
    d = jax.tree.map(lambda x: x, d)  # new containers, same leaves
    node = d
    for k in path[:-1]:
        node = node[k]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


FUNCTION_CASES = [
    # (path, value or "delete", error, words the message must contain)
    (("params", "torso/linear", "w"), np.zeros((3, 8), np.float32), ValueError,
     ["['params']['torso/linear']['w']", "(3, 8)", "(4, 8)"]),
    (("params", "v/linear", "b"), np.zeros((1, 1), np.float32), ValueError,   # would broadcast
     ["['params']['v/linear']['b']", "(1, 1)"]),
    (("params", "v/linear", "b"), np.zeros((), np.float32), ValueError,       # would broadcast
     ["['params']['v/linear']['b']"]),
    (("params", "torso/linear", "b"), np.zeros(8, np.float64), TypeError,
     ["['params']['torso/linear']['b']", "float64", "float32"]),
    (("params", "torso/linear", "b"), [0.0] * 8, TypeError, ["['params']['torso/linear']['b']", "list"]),
    (("params", "torso/linear", "w"), "delete", ValueError, ["['params']['torso/linear']['w']", "missing"]),
    (("params", "head/linear"), {"w": np.zeros(2, np.float32)}, ValueError,
     ["['params']['head/linear']['w']", "unexpected"]),
    (("params", "torso/linear"), np.zeros(8, np.float32), TypeError, ["['params']['torso/linear']"]),
    (("rng",), np.zeros(2, np.int32), TypeError, ["['rng']", "int32", "uint32"]),
    (("rng",), "delete", ValueError, ["rng", "missing"]),
    (("extra",), 1, ValueError, ["extra", "unexpected"]),
]


def assert_refused(obj, path, value, error, words):
    """Loading ``obj``'s state_dict with the entry at ``path`` replaced by ``value`` (deleted for
    ``"delete"``) raises ``error`` naming every one of ``words`` and the method, and changes
    nothing."""
    good = host_copy(obj.state_dict())
    bad = _edit(good, path, delete=True) if isinstance(value, str) else _edit(good, path, value)
    with pytest.raises(error) as info:
        obj.load_state_dict(bad)
    for w in words:
        assert w in str(info.value), (w, str(info.value))
    assert f"{type(obj).__name__}.load_state_dict" in str(info.value)
    assert_bitwise(host_copy(obj.state_dict()), good)  # nothing changed


@pytest.mark.parametrize("path, value, error, words", FUNCTION_CASES)
def test_function_refuses_bad_entries(v, path, value, error, words):
    assert_refused(v, path, value, error, words)


UPDATER_CASES = [
    (("optimizer_state", "0", "mu"), np.zeros(48, np.float32), ValueError,
     ["['optimizer_state']['0']['mu']", "(48,)", "(49,)"]),
    (("optimizer_state", "0", "count"), np.zeros(1, np.int32), ValueError,
     ["['optimizer_state']['0']['count']", "(1,)"]),
    (("optimizer_state", "0", "count"), 1.5, TypeError, ["['optimizer_state']['0']['count']", "float"]),
    (("optimizer_state", "0", "nu"), "delete", ValueError, ["['optimizer_state']['0']['nu']", "missing"]),
    (("optimizer_state", "1"), {"nu": np.zeros(49, np.float32)}, ValueError,
     ["['optimizer_state']['1']['nu']", "unexpected"]),
    (("rng",), np.zeros(3, np.uint32), ValueError, ["['rng']", "(3,)"]),
]


@pytest.mark.parametrize("path, value, error, words", UPDATER_CASES)
def test_updater_refuses_bad_entries(v, path, value, error, words):
    td = SimpleTD(v, optimizer=optax.adam(0.01))
    assert td.optimizer_flattened
    assert_refused(td, path, value, error, words)


def test_not_a_dict_is_refused(v):
    with pytest.raises(TypeError, match="V.load_state_dict"):
        v.load_state_dict([v.params])
    with pytest.raises(ValueError, match="unexpected \\['optimizer'\\]"):
        SimpleTD(v).load_state_dict({"optimizer_state": {}, "rng": np.zeros(2, np.uint32),
                                     "optimizer": 1})


def test_tree_helpers_on_namedtuples_tuples_none_and_python_numbers():
    """The form of a state dict, and its inverse, on the pytree kinds optax states are made of."""
    import jax.numpy as jnp

    from a2c_jax.utils._trees import tree_from_state_dict, tree_to_state_dict

    tree = (optax.ScaleByAdamState(count=jnp.zeros((), jnp.int32), mu={"w": jnp.ones(2)},
                                   nu={"w": jnp.ones(2)}),
            optax.EmptyState(), None, [3, 0.5])
    d = tree_to_state_dict(tree)
    assert set(d) == {"0", "3"} and set(d["0"]) == {"count", "mu", "nu"}
    assert d["3"] == {"0": 3, "1": 0.5}
    back = tree_from_state_dict(tree, host_copy(d), "t")
    assert jax.tree.structure(back) == jax.tree.structure(tree)
    assert isinstance(back[0], optax.ScaleByAdamState) and back[3] == [3, 0.5]
    assert type(back[3][0]) is int and isinstance(back[0].mu["w"], jax.Array)
    with pytest.raises(TypeError, match=r"t\['3'\]\['0'\]: got a Python float"):
        tree_from_state_dict(tree, {**d, "3": {"0": 3.0, "1": 0.5}}, "t")
    assert tree_to_state_dict(jnp.ones(2)).shape == (2,)  # a single leaf is itself
    assert tree_to_state_dict(optax.EmptyState()) == {}


def test_loaded_state_reuses_the_compiled_step(v, rng):
    """A state loaded from numpy runs the step that is already compiled (no new trace)."""
    td = SimpleTD(v, optimizer=optax.chain(optax.clip_by_global_norm(0.5), optax.rmsprop(0.01)))
    batch = make_batch(rng, 16)
    td.update(batch)
    td.update(batch)
    saved_v, saved_td = host_copy(v.state_dict()), host_copy(td.state_dict())
    compiled = td._step_jit._cache_size(), td._step_jit_keep._cache_size()
    v.load_state_dict(saved_v)
    td.load_state_dict(saved_td)
    del saved_v, saved_td
    td.update(batch)
    assert (td._step_jit._cache_size(), td._step_jit_keep._cache_size()) == compiled
