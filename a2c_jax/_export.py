"""A trained policy on its own: written by ``Trainer.export`` / ``JitTrainer.export`` /
``a2c-jax export``, read back by :func:`load_policy` without the training run's objects.

An exported policy is a checkpoint directory of kind ``"policy"`` (the format of
:mod:`a2c_jax.utils._checkpoint`: ``manifest.json``, ``state.json``, ``arrays/``; no pickle
anywhere), whose state holds:

- ``policy``: the :class:`~a2c_jax.Policy`'s ``state_dict()``: Haiku parameters, function state and
  its sampling key (arrays, written by orbax);
- ``network``: for the trainer's preset MLPs ``{"kind": "preset", "algo", "hidden", "activation",
  "shared_backbone"}``, enough to build the same network again; ``{"kind": "custom", "algo"}``
  when the run used its own ``func_pi`` (then :func:`load_policy` needs it again);
- ``observation_space``, ``action_space``: the gymnasium spaces as JSON (``Box``: ``low``,
  ``high``, ``shape``, ``dtype``; ``Discrete``: ``n``, ``start``; ``MultiBinary``: ``n``);
- ``env_id``, ``engine``, ``seed``, ``env_steps`` (what it was trained on and for how long);
- ``obs_normalization``: ``null``, or, for a run trained with ``normalize_obs``, its observation
  statistics as they were when exported: ``{"mean": [*obs_shape], "var": [*obs_shape], "count",
  "clip", "epsilon"}``. :func:`load_policy` builds the policy with an ``observation_preprocessor``
  that applies them, frozen: ``clip((s - mean) / sqrt(var + epsilon), -clip, clip)``, so the
  loaded policy takes raw observations as the env gives them.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import gymnasium
import jax
import numpy as np

from ._core import Policy
from .utils._checkpoint import CheckpointError, load_checkpoint, save_checkpoint

if TYPE_CHECKING:
    from .training._presets import TrainConfig

POLICY_FORMAT = 1
_SPACE_DTYPES = ("float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8",
                 "uint16", "uint32", "uint64", "bool")


# ---- spaces as JSON -------------------------------------------------------------------------------

def space_to_json(space: gymnasium.Space) -> dict[str, Any]:
    """A ``Box``, ``Discrete`` or ``MultiBinary`` space as plain data (:func:`space_from_json`
    builds it again, equal).

    Raises:
        TypeError: another kind of space (the message names it).
    """
    if isinstance(space, gymnasium.spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": np.dtype(space.dtype).name,
                "low": space.low.reshape(-1).tolist(), "high": space.high.reshape(-1).tolist()}
    if isinstance(space, gymnasium.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gymnasium.spaces.MultiBinary):
        n = np.asarray(space.n)
        return {"type": "MultiBinary", "n": int(n) if n.ndim == 0 else [int(k) for k in n]}
    raise TypeError(f"the space {space!r} cannot be exported (Box, Discrete and MultiBinary can)")


def _int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def space_from_json(d: Any, where: str) -> gymnasium.Space:
    """The space :func:`space_to_json` described.

    Raises:
        CheckpointError: not such a description (the message names ``where``).
    """
    bad = CheckpointError(f"{where} is not a valid space description")
    if not isinstance(d, dict):
        raise bad
    kind = d.get("type")
    try:
        if kind == "Box" and set(d) == {"type", "shape", "dtype", "low", "high"}:
            shape = d["shape"]
            if (not isinstance(shape, list) or not all(_int(n) and n >= 0 for n in shape)
                    or d["dtype"] not in _SPACE_DTYPES):
                raise bad
            bounds = []
            for name in ("low", "high"):
                values = d[name]
                if (not isinstance(values, list) or len(values) != int(np.prod(shape))
                        or not all(isinstance(v, (int, float)) for v in values)):
                    raise bad
                bounds.append(np.array(values, dtype=np.dtype(d["dtype"])).reshape(shape))
            return gymnasium.spaces.Box(bounds[0], bounds[1], tuple(shape),
                                        bounds[0].dtype.type)
        if kind == "Discrete" and set(d) == {"type", "n", "start"}:
            if not (_int(d["n"]) and d["n"] > 0 and _int(d["start"])):
                raise bad
            return gymnasium.spaces.Discrete(d["n"], start=d["start"])
        if kind == "MultiBinary" and set(d) == {"type", "n"}:
            n = d["n"]
            if not ((_int(n) and n > 0)
                    or (isinstance(n, list) and n and all(_int(k) and k > 0 for k in n))):
                raise bad
            return gymnasium.spaces.MultiBinary(n)
    except (TypeError, ValueError, OverflowError):
        raise bad from None
    raise bad


# ---- the network's description --------------------------------------------------------------------

def _spaces_only(observation_space: gymnasium.Space, action_space: gymnasium.Space) -> Any:
    """What :class:`~a2c_jax.Policy` reads of an env: its two spaces."""
    return SimpleNamespace(observation_space=observation_space, action_space=action_space,
                           spec=None)


def _preset_policy(observation_space: gymnasium.Space, action_space: gymnasium.Space,
                   config: TrainConfig, seed: int,
                   observation_preprocessor: Callable | None = None) -> Policy:
    from .training._trainer import build_functions

    pi, _ = build_functions(_spaces_only(observation_space, action_space), config, seed,
                            observation_preprocessor=observation_preprocessor)
    return pi


def _same_network(pi: Policy, preset: Policy) -> bool:
    """Whether ``pi`` computes what ``preset`` does with ``pi``'s parameters: the same parameter
    and state structure, shapes and dtypes, and bitwise the same outputs on 16 observations
    sampled from the observation space."""
    def signature(tree: Any) -> Any:
        return jax.tree.structure(tree), [(np.shape(x), np.dtype(x.dtype))
                                          for x in jax.tree.leaves(tree)]

    if (signature(pi.params) != signature(preset.params)
            or signature(pi.function_state) != signature(preset.function_state)):
        return False
    space = copy.deepcopy(pi.observation_space)
    space.seed(0)
    S = np.stack([np.asarray(space.sample()) for _ in range(16)])
    rng = jax.random.PRNGKey(0)
    mine = jax.jit(pi.dist_params_fn)(pi.params, pi.function_state, rng, S)
    theirs = jax.jit(preset.dist_params_fn)(pi.params, pi.function_state, rng, S)
    if str(jax.tree.structure(mine)) != str(jax.tree.structure(theirs)):
        return False
    return all(np.array_equal(np.asarray(a), np.asarray(b))
               for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs)))


def describe_network(pi: Policy, config: TrainConfig, seed: int) -> dict[str, Any]:
    """The ``network`` entry of an exported policy: the preset's settings when ``pi`` is the
    trainer's preset MLP (checked by building the preset again and comparing, see
    :func:`_same_network`), else ``{"kind": "custom"}``."""
    try:
        preset = _preset_policy(pi.observation_space, pi.action_space, config, seed)
    except (KeyError, TypeError, ValueError):  # a config the presets cannot build (your own run)
        return {"kind": "custom", "algo": config.algo}
    if _same_network(pi, preset):
        return {"kind": "preset", "algo": config.algo, "hidden": list(config.hidden),
                "activation": config.activation, "shared_backbone": config.shared_backbone}
    return {"kind": "custom", "algo": config.algo}


# ---- writing and reading ---------------------------------------------------------------------------

def export_policy(path: str | os.PathLike, pi: Policy, *, env_id: str, engine: str,
                  config: TrainConfig, seed: int, env_steps: int,
                  obs_normalization: dict[str, Any] | None = None) -> Path:
    """Writes ``pi`` (parameters, function state, sampling key), its network's description, its
    spaces and where it comes from to the directory ``path``, atomically (see the module
    docstring). Returns ``path``.

    ``pi`` is the network as trained (on normalised observations when the run normalised them);
    ``obs_normalization`` the statistics to apply before it (see the module docstring; from
    :func:`a2c_jax.training._normalization.stats_to_json`), or ``None``.

    Raises:
        TypeError: a space that cannot be described (not ``Box``, ``Discrete``, ``MultiBinary``).
        CheckpointError: ``path`` is a file or a directory that is not an a2c_jax checkpoint.
    """
    state = {
        "policy_format": POLICY_FORMAT, "env_id": env_id, "engine": engine, "seed": int(seed),
        "env_steps": int(env_steps), "network": describe_network(pi, config, seed),
        "observation_space": space_to_json(pi.observation_space),
        "action_space": space_to_json(pi.action_space),
        "policy": jax.device_get(pi.state_dict()),
        "obs_normalization": obs_normalization,
    }
    return save_checkpoint(path, state, kind="policy")


_ENTRIES = ("policy_format", "env_id", "engine", "seed", "env_steps", "network",
            "observation_space", "action_space", "policy", "obs_normalization")
_ACTIVATIONS = ("tanh", "relu")


def _preset_config(network: Any, where: str) -> TrainConfig:
    from .training._presets import TrainConfig

    keys = {"kind", "algo", "hidden", "activation", "shared_backbone"}
    if (not isinstance(network, dict) or set(network) != keys
            or network["algo"] not in ("a2c", "ppo")
            or not isinstance(network["hidden"], list)
            or not all(_int(n) and 0 < n <= 1 << 16 for n in network["hidden"])
            or network["activation"] not in _ACTIVATIONS
            or not isinstance(network["shared_backbone"], bool)):
        raise CheckpointError(f"{where}: an invalid network description")
    return TrainConfig(algo=network["algo"], hidden=tuple(network["hidden"]),
                       activation=network["activation"],
                       shared_backbone=network["shared_backbone"])


def load_policy(path: str | os.PathLike, func_pi: Callable | None = None) -> Policy:
    """The policy exported to ``path`` (by ``a2c-jax export``, ``Trainer.export`` or
    ``JitTrainer.export``), as a :class:`~a2c_jax.Policy`: ``pi(s)`` samples, ``pi.mode(s)`` is
    the greedy action, ``pi.dist_params(s)`` and ``pi.batch(S)`` work as on the trainer's policy.
    A policy of a run trained with ``normalize_obs`` takes raw observations: its
    ``observation_preprocessor`` applies the exported statistics (frozen) first.

    Nothing of the training run is needed, and nothing is unpickled: the files are checked
    against their manifest, the spaces are rebuilt from their JSON description, the preset MLP
    from the network's (its ``hidden`` sizes and ``activation``), and the parameters, function
    state and sampling key are put in place. A policy trained with your own Haiku function needs
    it again as ``func_pi``.

    Args:
        path: the exported policy's directory.
        func_pi: your Haiku function ``func_pi(S, is_training)``, for a policy trained with it
            (default: the preset network the file describes).

    Raises:
        CheckpointError: the directory is missing, damaged, foreign, a training checkpoint rather
            than a policy; the network is custom and ``func_pi`` is not given; or the saved
            parameters do not fit the network (e.g. another ``func_pi``); the message says which.
    """
    st = load_checkpoint(path, kind="policy")
    for key in _ENTRIES:
        st[key]  # noqa: B018  (a missing entry raises CheckpointError naming it)
    if st["policy_format"] != POLICY_FORMAT:
        raise CheckpointError(f"{path} is an exported policy of format {st['policy_format']!r}; "
                              f"this a2c_jax reads format {POLICY_FORMAT}")
    seed = st["seed"]
    if not _int(seed) or not 0 <= seed < 2**32:
        raise CheckpointError(f"{path} has an invalid seed {seed!r}")
    observation_space = space_from_json(st["observation_space"], f"{path}: observation_space")
    action_space = space_from_json(st["action_space"], f"{path}: action_space")
    pre = _obs_preprocessor(st["obs_normalization"], observation_space, f"{path}")
    network = st["network"]
    if func_pi is None:
        if isinstance(network, dict) and network.get("kind") == "custom":
            raise CheckpointError(f"{path} holds a policy of your own network (trained with "
                                  "func_pi): pass that function again, load_policy(path, "
                                  "func_pi=...)")
        config = _preset_config(network, f"{path}")
        pi = _preset_policy(observation_space, action_space, config, seed, pre)
        what = "the preset network the file describes"
    else:
        pi = Policy(func_pi, _spaces_only(observation_space, action_space),
                    observation_preprocessor=pre, random_seed=seed)
        what = "func_pi (pass the function the policy was trained with)"
    try:
        pi.load_state_dict(st["policy"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: the saved parameters do not fit {what}: {err}") from None
    return pi


def _obs_preprocessor(d: Any, observation_space: gymnasium.Space,
                      where: str) -> Callable[[Any], Any] | None:
    """The ``observation_preprocessor`` of an exported ``obs_normalization`` entry (``None`` for
    ``null``), each part checked.

    Raises:
        CheckpointError: not such an entry, or statistics of another shape than the space's.
    """
    if d is None:
        return None
    from .functional import _normalize as nz

    bad = CheckpointError(f"{where}: an invalid obs_normalization entry")
    shape = tuple(observation_space.shape or ())
    if not isinstance(d, dict) or set(d) != {"mean", "var", "count", "clip", "epsilon"}:
        raise bad
    arrays = [d["mean"], d["var"]]
    if not all(isinstance(a, np.ndarray) and a.shape == shape and a.dtype == np.float32
               for a in arrays):
        raise CheckpointError(f"{where}: obs_normalization's mean and var must be float32{list(shape)}")
    numbers = [d["count"], d["clip"], d["epsilon"]]
    if (not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in numbers)
            or not (d["clip"] > 0 and d["count"] > 0) or d["epsilon"] != nz.EPSILON
            or not np.all(arrays[1] >= 0)):
        raise bad
    from .training._normalization import frozen_obs_preprocessor

    return frozen_obs_preprocessor((*arrays, d["count"]), float(d["clip"]))
