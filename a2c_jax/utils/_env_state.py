"""A gymnasium ``SyncVectorEnv`` saved as plain data, and set back onto fresh envs.

A checkpoint cannot pickle live envs (a pickle runs code when loaded). Instead, for the vector env
and for every layer of each sub-env's wrapper chain (``TimeLimit`` → ``OrderEnforcing`` → the
unwrapped env) :func:`snapshot_vector_env` records the attributes that hold plain data: numbers,
bools, ``None``, strings, numpy arrays and scalars, tuples, lists and string-keyed dicts of those,
and numpy ``Generator`` objects as their bit generator's state (a JSON-able dict); and the RNG
state of every seeded space (``action_space`` ...). Attributes that fresh envs built from the same
id have anyway are skipped: the links of the chain (``env``, ``envs``), the factories
(``env_fns``), ``spec``, ``metadata``, wrapper arguments, spaces (but for their RNG) and enum
constants. Anything else (a Box2D world, a pygame screen) means the envs cannot be captured: the
snapshot is ``None`` with the reason, and a resumed run resets its envs instead.

:func:`restore_vector_env` sets the values back onto envs built by
:func:`~a2c_jax.training.make_vector_env`: every layer must be of the same class as the saved one.
An attribute is set where the fresh object holds plain data or ``None`` under that name (an array
only over an array of the same shape, a generator's state only into a generator over the same bit
generator; types may otherwise differ, as envs change them between reset and step), or where the
env creates it later itself (Pendulum's ``last_u`` appears on the first step) and the class does
not define the name as a method, property or other descriptor. A space, an env or any other object
is never replaced. Anything else is refused with
:class:`~a2c_jax.utils.CheckpointError` naming the attribute.
"""

from __future__ import annotations

import enum
from typing import Any

import gymnasium
import numpy as np

from ._checkpoint import CheckpointError, from_json, to_json

#: attributes that fresh envs made from the same id hold anyway (not state): never recorded
CONFIG_ATTRIBUTES = frozenset({"env", "envs", "env_fns", "spec", "_cached_spec", "metadata",
                               "_metadata", "_saved_kwargs"})


def _layers(env: gymnasium.Env) -> list[Any]:
    """``env`` and the envs it wraps, outermost first, down to the unwrapped env."""
    out, layer = [env], env
    while isinstance(vars(layer).get("env"), gymnasium.Env):
        layer = vars(layer)["env"]
        out.append(layer)
    return out


def _capture(obj: Any, where: str, problems: list[str]) -> dict[str, Any]:
    """The plain-data attributes of ``obj`` and the RNG states of its spaces, as JSON."""
    attributes, spaces = {}, {}
    for name, value in vars(obj).items():
        if name in CONFIG_ATTRIBUTES or isinstance(value, enum.Enum):
            continue
        if isinstance(value, gymnasium.Space):
            rng = vars(value).get("_np_random")  # the np_random property would seed it
            if rng is not None:
                try:
                    spaces[name] = to_json(rng, None, f"{where}.{name}")
                except TypeError as err:
                    problems.append(str(err))
            continue
        try:
            attributes[name] = to_json(value, None, f"{where}.{name}")
        except TypeError:
            problems.append(f"{where}.{name} (a {type(value).__name__})")
    return {"type": type(obj).__name__, "attributes": attributes, "spaces": spaces}


def snapshot_vector_env(envs: gymnasium.vector.VectorEnv) -> tuple[dict[str, Any] | None, str | None]:
    """The state of a ``SyncVectorEnv`` as JSON-able data (see the module docstring).

    Returns:
        ``(snapshot, None)``, or ``(None, reason)`` when the envs hold something that is not plain
        data (the reason names the attributes) or are not a ``SyncVectorEnv``.
    """
    if not isinstance(envs, gymnasium.vector.SyncVectorEnv):
        return None, f"{type(envs).__name__} cannot be saved (only SyncVectorEnv's envs can)"
    problems: list[str] = []
    vector = _capture(envs, type(envs).__name__, problems)
    subs = [[_capture(layer, f"envs[{i}].{type(layer).__name__}", problems)
             for layer in _layers(env)] for i, env in enumerate(envs.envs)]
    if problems:
        shown = ", ".join(problems[:3]) + (f" and {len(problems) - 3} more" if len(problems) > 3
                                           else "")
        return None, f"the envs hold state that is not plain data: {shown}"
    return {"vector": vector, "envs": subs}, None


def _is_descriptor(obj: Any, name: str) -> bool:
    """Whether ``obj``'s class defines ``name`` as a method, property or other descriptor."""
    for klass in type(obj).__mro__:
        if name in vars(klass):
            attr = vars(klass)[name]
            return callable(attr) or hasattr(attr, "__get__") or hasattr(attr, "__set__")
    return False


def _is_plain(x: Any) -> bool:
    try:
        to_json(x, None)
    except TypeError:
        return False
    return True


def _fits(saved: Any, fresh: Any) -> bool:
    """Whether ``saved`` may replace ``fresh``: a generator only a generator (of the same bit
    generator) or ``None``; plain data only plain data. Types may differ otherwise, as envs change
    them (MountainCar's state is an array after a reset and a tuple after a step, Acrobot's is
    float32, then float64); two arrays must have the same shape."""
    if isinstance(fresh, np.random.Generator):
        return (isinstance(saved, np.random.Generator)
                and type(saved.bit_generator) is type(fresh.bit_generator))
    if isinstance(saved, np.ndarray) and isinstance(fresh, np.ndarray):
        return saved.shape == fresh.shape
    return fresh is None or _is_plain(fresh)


def _plan(obj: Any, saved: Any, where: str) -> list[tuple[Any, str, Any]]:
    """The ``(object, attribute, value)`` assignments that restore ``saved`` onto ``obj``."""
    if (not isinstance(saved, dict) or set(saved) != {"type", "attributes", "spaces"}
            or not isinstance(saved["attributes"], dict) or not isinstance(saved["spaces"], dict)):
        raise CheckpointError(f"{where}: a malformed env snapshot")
    if saved["type"] != type(obj).__name__:
        raise CheckpointError(f"{where}: the saved env layer is a {saved['type']}, "
                              f"make_vector_env builds a {type(obj).__name__}")
    plan = []
    current = vars(obj)
    for name, encoded in saved["attributes"].items():
        at = f"{where}.{name}"
        if not name.isidentifier() or name.startswith("__") or name in CONFIG_ATTRIBUTES:
            raise CheckpointError(f"{at}: not an attribute a snapshot may set")
        value = from_json(encoded, None, at)
        if name in current:
            if not _fits(value, current[name]):
                raise CheckpointError(f"{at}: the saved {type(value).__name__} cannot replace the "
                                      f"fresh env's {type(current[name]).__name__} (another kind "
                                      "of object, or another shape)")
        elif _is_descriptor(obj, name):
            raise CheckpointError(f"{at}: {type(obj).__name__} defines {name} as a method or "
                                  "property; a snapshot never replaces one")
        plan.append((obj, name, value))
    for name, encoded in saved["spaces"].items():
        at = f"{where}.{name}"
        space = current.get(name)
        rng = from_json(encoded, None, at)
        if not isinstance(space, gymnasium.Space) or not isinstance(rng, np.random.Generator):
            raise CheckpointError(f"{at}: no space to give the saved random state to")
        plan.append((space, "_np_random", rng))
    return plan


def restore_vector_env(envs: gymnasium.vector.VectorEnv, snapshot: Any, where: str) -> None:
    """Sets a :func:`snapshot_vector_env` snapshot onto fresh ``envs`` (all or nothing).

    Raises:
        CheckpointError: the snapshot does not fit ``envs`` (another number of envs, another
            wrapper chain, an attribute of another type or shape, a malformed snapshot); nothing
            is changed then.
    """
    if not isinstance(envs, gymnasium.vector.SyncVectorEnv):
        raise CheckpointError(f"{where}: saved envs can only be restored into a SyncVectorEnv")
    if (not isinstance(snapshot, dict) or set(snapshot) != {"vector", "envs"}
            or not isinstance(snapshot["envs"], list)):
        raise CheckpointError(f"{where}: a malformed env snapshot")
    if len(snapshot["envs"]) != len(envs.envs):
        raise CheckpointError(f"{where}: {len(snapshot['envs'])} saved envs, "
                              f"{len(envs.envs)} built")
    plan = _plan(envs, snapshot["vector"], f"{where}: {type(envs).__name__}")
    for i, (env, saved) in enumerate(zip(envs.envs, snapshot["envs"])):
        layers = _layers(env)
        if not isinstance(saved, list) or len(saved) != len(layers):
            chain = " -> ".join(type(x).__name__ for x in layers)
            raise CheckpointError(f"{where}: env {i} was saved with another wrapper chain than "
                                  f"make_vector_env builds ({chain})")
        for layer, layer_saved in zip(layers, saved):
            plan += _plan(layer, layer_saved, f"{where}: envs[{i}].{type(layer).__name__}")
    for obj, name, value in plan:
        current = vars(obj).get(name)
        if isinstance(value, np.random.Generator) and isinstance(current, np.random.Generator) \
                and type(value.bit_generator) is type(current.bit_generator):
            current.bit_generator.state = value.bit_generator.state  # the same object, its state
        else:
            setattr(obj, name, value)
