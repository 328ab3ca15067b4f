"""The keys of :class:`~a2c_jax.training.TrainConfig`: what each holds, its range and meaning, and
the checks that every config runs when it is made (a ``ValueError`` naming the key)."""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from ._presets import TrainConfig

ALGOS = ("a2c", "ppo")
OPTIMIZERS = ("rmsprop", "adam")
ACTIVATIONS = ("tanh", "relu")


class KeyRule(NamedTuple):
    """What a :class:`TrainConfig` key holds: its kind (``bool``, ``int``, ``float``, ``str``,
    ``"sizes"`` for ``hidden``, ``"kwargs"`` for ``env_kwargs``), the condition on its value, the
    condition in words and the key's meaning (``docs/cli.md`` lists them)."""

    kind: Any
    ok: Callable[[Any], bool]
    rule: str
    meaning: str


def _any(x: Any) -> bool:
    return True


def _choice(*names: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda x: x in names), "one of " + ", ".join(names)


RULES: dict[str, KeyRule] = {
    "algo": KeyRule(str, *_choice(*ALGOS), "the algorithm: A2C (VanillaPG) or PPO (PPOClip)"),
    "num_envs": KeyRule(int, lambda x: x >= 1, ">= 1",
                        "parallel envs (over all devices and processes)"),
    "n_steps": KeyRule(int, lambda x: x >= 1, ">= 1", "rollout length per env"),
    "gamma": KeyRule(float, lambda x: 0 <= x <= 1, "between 0 and 1", "the discount factor"),
    "gae_lambda": KeyRule(float, lambda x: 0 <= x <= 1, "between 0 and 1",
                          "GAE's λ (1: plain n-step returns)"),
    "learning_rate": KeyRule(float, lambda x: 0 < x < math.inf, "> 0",
                             "the optimizers' step size (actor and critic)"),
    "optimizer": KeyRule(str, *_choice(*OPTIMIZERS),
                         "RMSprop (decay 0.99, eps 1e-5) or Adam, after clipping by the global norm"),
    "ent_coef": KeyRule(float, lambda x: 0 <= x < math.inf, ">= 0",
                        "the weight of the entropy bonus"),
    "vf_coef": KeyRule(float, lambda x: 0 <= x < math.inf, ">= 0", "the weight of the value loss"),
    "max_grad_norm": KeyRule(float, lambda x: x > 0, "> 0 (inf: no clipping)",
                             "gradients are clipped to this global norm"),
    "normalize_advantage": KeyRule(bool, _any, "true or false",
                                   "advantages scaled to mean 0, std 1 per batch"),
    "hidden": KeyRule("sizes", lambda x: len(x) > 0 and all(n >= 1 for n in x),
                      "one or more ints >= 1, e.g. 64,64",
                      "the hidden layer sizes of the MLPs"),
    "activation": KeyRule(str, *_choice(*ACTIVATIONS), "the MLPs' activation"),
    "shared_backbone": KeyRule(bool, _any, "true or false",
                               "one torso for policy and value, one optimizer (ActorCritic)"),
    "total_steps": KeyRule(int, lambda x: x >= 0, ">= 0",
                           "the run's total env steps (per run), what --steps sets"),
    "n_epochs": KeyRule(int, lambda x: x >= 1, ">= 1", "PPO: passes over each rollout"),
    "batch_size": KeyRule(int, lambda x: x >= 0, ">= 0",
                          "PPO: minibatch size (0: the whole rollout in one batch)"),
    "clip_epsilon": KeyRule(float, lambda x: 0 < x < math.inf, "> 0", "PPO: the clip range ε"),
    "reward_scale": KeyRule(float, lambda x: 0 < x < math.inf, "> 0",
                            "rewards are multiplied by this for training"),
    "eval_episodes": KeyRule(int, lambda x: x >= 1, ">= 1",
                             "greedy episodes of the evaluation at the end of a run"),
    "normalize_obs": KeyRule(bool, _any, "true or false",
                             "running mean/std normalisation of observations"),
    "normalize_reward": KeyRule(bool, _any, "true or false",
                                "rewards scaled by the running std of the discounted return"),
    "clip_obs": KeyRule(float, lambda x: x > 0, "> 0 (inf: no clipping)",
                        "normalised observations are clipped to [-clip_obs, clip_obs]"),
    "clip_reward": KeyRule(float, lambda x: x > 0, "> 0 (inf: no clipping)",
                           "normalised rewards are clipped to [-clip_reward, clip_reward]"),
    "env_kwargs": KeyRule("kwargs", _any, "names to JSON values (numbers, strings, bools, null, "
                          "lists of those)", "keyword arguments of gymnasium.make for every env"),
}
#: every key of :class:`TrainConfig`, in field order (a test checks them against the fields)
KEYS = tuple(RULES)


def unknown_key_message(key: str) -> str:
    """``unknown TrainConfig key 'x'; did you mean ...?`` (the closest valid keys)."""
    close = difflib.get_close_matches(key, KEYS, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else f" (the keys: {', '.join(KEYS)})"
    return f"unknown TrainConfig key {key!r}{hint}"


def _kwarg_value(x: Any, where: str) -> Any:
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real) and math.isfinite(x):
        return float(x)
    if isinstance(x, (list, tuple)):
        return tuple(_kwarg_value(v, where) for v in x)
    raise ValueError(f"{where} must be a number, string, bool, null or a list of those, "
                     f"got {x!r}")


def _canonical_kwargs(value: Any) -> tuple[tuple[str, Any], ...]:
    """``env_kwargs`` as sorted ``(name, value)`` pairs, from a mapping or from pairs (a
    checkpoint's JSON may give the pairs as lists)."""
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, (list, tuple)) and all(
            isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        items = [tuple(p) for p in value]
    else:
        raise ValueError(f"env_kwargs must be a mapping of names to values, got {value!r}")
    names = [k for k, _ in items]
    for k in names:
        if not isinstance(k, str) or not k.isidentifier():
            raise ValueError(f"env_kwargs: {k!r} is not a keyword argument name")
    if len(set(names)) != len(names):
        raise ValueError(f"env_kwargs names a keyword twice: {names}")
    return tuple(sorted((k, _kwarg_value(v, f"env_kwargs[{k!r}]")) for k, v in items))


def check_value(key: str, value: Any) -> Any:
    """``value`` as key ``key`` of a :class:`TrainConfig` holds it (Python ints and floats,
    tuples), or ``ValueError`` naming the key, the value and what it must be."""
    if key not in RULES:
        raise ValueError(unknown_key_message(key))
    rule = RULES[key]
    if rule.kind == "kwargs":
        return _canonical_kwargs(value)
    if rule.kind == "sizes":
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in value):
            raise ValueError(f"{key} must be {rule.rule}, got {value!r}")
        value = tuple(int(n) for n in value)
    elif rule.kind is bool:
        if not isinstance(value, bool) and type(value).__name__ != "bool_":
            raise ValueError(f"{key} must be true or false, got {value!r}")
        value = bool(value)
    elif rule.kind is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{key} must be an int {rule.rule}, got {value!r}")
        value = int(value)
    elif rule.kind is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
            raise ValueError(f"{key} must be a number {rule.rule}, got {value!r}")
        value = float(value)
    elif not isinstance(value, str):
        raise ValueError(f"{key} must be {rule.rule}, got {value!r}")
    if not rule.ok(value):
        raise ValueError(f"{key} must be {rule.rule}, got {value!r}")
    return value


def checked_fields(config: TrainConfig) -> dict[str, Any]:
    """Every field of ``config`` checked by :func:`check_value` (what ``TrainConfig`` runs when
    it is made or replaced)."""
    return {key: check_value(key, getattr(config, key)) for key in KEYS}
