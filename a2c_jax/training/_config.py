"""Hyperparameters from text and files (``a2c-jax train --set``, ``--config``, ``--env-kwargs``) and
the envs of a run made with its ``env_kwargs``.

Values given as text are parsed by the key's kind (:data:`~a2c_jax.training._keys.RULES`), then
checked as :class:`~a2c_jax.training.TrainConfig` checks every value; every problem is a
``ValueError`` whose message names the key and the value.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import gymnasium

from ._keys import RULES, check_value, unknown_key_message
from ._presets import TrainConfig

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def value_from_text(key: str, text: str) -> Any:
    """The value of ``key`` that ``text`` spells, checked: ``true``/``false`` (also yes/no, on/off,
    1/0) for bools, ``1e6`` or ``1_000_000`` for ints (a whole number), ``3e-4`` or ``inf`` for
    numbers, ``128,128`` (or ``[128, 128]``) for ``hidden``, a JSON object for ``env_kwargs``.

    Raises:
        ValueError: an unknown key (naming the closest ones) or a value it cannot hold.
    """
    if key not in RULES:
        raise ValueError(unknown_key_message(key))
    rule, t = RULES[key], text.strip()
    value: Any = t
    if rule.kind is bool:
        if t.lower() not in _TRUE + _FALSE:
            raise ValueError(f"{key} must be true or false, got {text!r}")
        value = t.lower() in _TRUE
    elif rule.kind is int:
        value = _int(t)
        if value is None:
            raise ValueError(f"{key} must be an int {rule.rule}, got {text!r}")
    elif rule.kind is float:
        try:
            value = float(t)
        except ValueError:
            raise ValueError(f"{key} must be a number {rule.rule}, got {text!r}") from None
    elif rule.kind == "sizes":
        parts = [p.strip() for p in t.strip("[]() ").split(",")] if t.strip("[]() ") else []
        sizes = [_int(p) for p in parts]
        if any(n is None for n in sizes):
            raise ValueError(f"{key} must be {rule.rule}, got {text!r}")
        value = tuple(sizes)
    elif rule.kind == "kwargs":
        value = _json_object(t, key)
    return check_value(key, value)


def _int(t: str) -> int | None:
    """``t`` as an int: ``12``, ``1_000``, or a whole number written as a float (``1e6``)."""
    try:
        return int(t)
    except ValueError:
        pass
    try:
        x = float(t)
    except ValueError:
        return None
    return int(x) if math.isfinite(x) and x.is_integer() else None


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where} must be a JSON object, e.g. '{{\"size\": 5}}': {err.msg} at "
                         f"character {err.pos}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a JSON object, e.g. '{{\"size\": 5}}', got {text!r}")
    return value


def value_from_file(key: str, value: Any) -> Any:
    """The value of ``key`` from a parsed YAML file, checked: strings are read as
    :func:`value_from_text` reads them (YAML reads ``1e-3`` as a string), an int is a one-layer
    ``hidden``, ints are numbers too."""
    if key not in RULES:
        raise ValueError(unknown_key_message(key))
    kind = RULES[key].kind
    if isinstance(value, str) and kind is not str:
        return value_from_text(key, value)
    if kind == "sizes" and isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    return check_value(key, value)


def parse_assignments(items: Iterable[str], option: str = "--set") -> dict[str, Any]:
    """``KEY=VALUE`` strings as checked values (:func:`value_from_text`); a key given twice with
    two values is an error."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{option} takes KEY=VALUE, got {item!r}")
        value = value_from_text(key, text)
        if key in out and out[key] != value:
            raise ValueError(f"{option} gives {key} twice: {out[key]!r} and {value!r}")
        out[key] = value
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The keys of a YAML file (``yaml.safe_load``: plain data only), each checked.

    Raises:
        ValueError: the file is missing or unreadable, not YAML, not a mapping of keys to values,
            or holds an unknown key or a bad value (the message names the file and the key).
    """
    import yaml  # type: ignore[import-untyped]  # (no stubs installed)

    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ValueError(f"{path} is not valid YAML: {problem}{where}") from None
    if data is None:  # an empty file
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of TrainConfig keys to values (e.g. "
                         f"'gamma: 0.98'), not a {type(data).__name__}")
    out = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ValueError(f"{path}: the key {key!r} is not a name")
        try:
            out[key] = value_from_file(key, value)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    return out


def parse_env_kwargs(items: Iterable[str]) -> dict[str, Any]:
    """``--env-kwargs`` values: each a JSON object (``'{"size": 5}'``) or ``NAME=VALUE``, VALUE
    read as JSON where it parses (``5``, ``true``, ``[1, 2]``) and as a string otherwise."""
    out: dict[str, Any] = {}
    for item in items:
        if item.lstrip().startswith("{"):
            pairs = list(_json_object(item, "--env-kwargs").items())
        else:
            name, sep, text = item.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"--env-kwargs takes NAME=VALUE or a JSON object, got {item!r}")
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = text
            pairs = [(name.strip(), value)]
        for name, value in pairs:
            if name in out and out[name] != value:
                raise ValueError(f"--env-kwargs gives {name} twice: {out[name]!r} and {value!r}")
            out[name] = value
    return dict(check_value("env_kwargs", out))


def check_env_id(env_id: str, *, may_import: bool = True) -> None:
    """Raises ``ValueError`` unless gymnasium can make ``env_id``: a registered id, or gymnasium's
    ``module:id`` (``module`` is imported, as ``gymnasium.make`` imports it, and must register
    ``id``). The message names the closest registered ids.

    With ``may_import=False`` (an env id read from a checkpoint) ``module`` must already be
    imported: a2c_jax never imports a module a file names, since importing runs its code.
    """
    import difflib
    import sys

    module, sep, name = env_id.rpartition(":")
    if sep:
        if not module or not all(p.isidentifier() for p in module.split(".")):
            raise ValueError(f"{env_id!r}: MODULE:ID needs an importable module name before the ':'")
        if not may_import and module not in sys.modules:
            raise ValueError(f"its env's module {module!r} is not imported, and a2c_jax does not "
                             "import a module a checkpoint names (importing runs its code): "
                             f"import {module} first (on the command line: --env {env_id})")
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ValueError(f"cannot import {module!r} for --env {env_id}: {err} (is it on "
                             "PYTHONPATH?)") from None
    if name not in gymnasium.registry:
        close = difflib.get_close_matches(name, list(gymnasium.registry), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        where = f" (importing {module} did not register it)" if sep else ""
        raise ValueError(f"unknown env {name!r}{where}{hint}")


def make_env(env_id: str, config: TrainConfig | None = None, **kwargs: Any) -> gymnasium.Env:
    """``gymnasium.make(env_id, **config.env_kwargs, **kwargs)``: one env of a run, e.g. for
    evaluation or for ``render_mode="rgb_array"``."""
    given: Mapping[str, Any] = dict(config.env_kwargs) if config is not None else {}
    return gymnasium.make(env_id, **{**given, **kwargs})
