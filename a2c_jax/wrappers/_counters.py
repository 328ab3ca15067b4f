"""TrainMonitor's counters: checked as a plain dict, stored as JSON (never pickle).

The file is one JSON object::

    {"format": "a2c_jax.TrainMonitor.counters", "format_version": 1, "counters": {...}}

coax stores the same counters as an lz4-compressed pickle; unpickling a file can run arbitrary
code, so this format is plain data and :func:`read_counters` refuses anything else (a pickle, an
lz4 frame, a JSON file of another kind) with a :class:`~a2c_jax.utils.CheckpointError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..utils._checkpoint import CheckpointError
from ..utils._files import atomic_write

FORMAT = "a2c_jax.TrainMonitor.counters"
FORMAT_VERSION = 1
COUNTER_KEYS = ("T", "ep", "t", "G", "avg_G", "n_avg_G", "period")
_MAX_BYTES = 64 * 2**20  # a counters file is a few hundred bytes; refuse to read a huge file


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def check_counters(counters: Any) -> dict[str, Any]:
    """Validates a counters dict (as :meth:`TrainMonitor.get_counters` returns) and copies it.

    Args:
        counters: ``{'T', 'ep', 't', 'n_avg_G'}`` non-negative ints, ``{'G', 'avg_G'}`` real
            numbers, and ``'period'``: ``{'T': {name: k}, 'ep': {name: k}}`` with string names and
            positive int ``k``.

    Returns:
        A deep copy with ``G`` and ``avg_G`` as floats.

    Raises:
        TypeError: ``counters`` is not a mapping, or a value has the wrong type.
        ValueError: missing or unknown keys, or a negative count.
    """
    if not isinstance(counters, Mapping):
        raise TypeError(f"counters must be a dict, got {type(counters).__name__}")
    missing = [k for k in COUNTER_KEYS if k not in counters]
    unknown = sorted(map(repr, set(counters) - set(COUNTER_KEYS)))
    if missing or unknown:
        raise ValueError(f"counters need exactly the keys {list(COUNTER_KEYS)}; missing {missing}, "
                         f"unknown [{', '.join(unknown)}]")
    out: dict[str, Any] = {}
    for k in ("T", "ep", "t", "n_avg_G"):
        v = counters[k]
        if not _is_int(v):
            raise TypeError(f"counter {k!r} must be an int, got {type(v).__name__} {v!r}")
        if v < 0:
            raise ValueError(f"counter {k!r} must be >= 0, got {v}")
        out[k] = v
    for k in ("G", "avg_G"):
        v = counters[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"counter {k!r} must be a real number, got {type(v).__name__} {v!r}")
        out[k] = float(v)
    period = counters["period"]
    if not (isinstance(period, Mapping) and set(period) == {"T", "ep"}):
        raise ValueError(f"counter 'period' must be a dict with the keys 'T' and 'ep', got {period!r}")
    out["period"] = {}
    for kind in ("T", "ep"):
        table = period[kind]
        if not isinstance(table, Mapping):
            raise TypeError(f"counter period[{kind!r}] must be a dict, got {type(table).__name__}")
        for name, k in table.items():
            if not isinstance(name, str) or not _is_int(k) or k < 1:
                raise ValueError(f"counter period[{kind!r}] maps names (str) to ints >= 1, got "
                                 f"{name!r}: {k!r}")
        out["period"][kind] = dict(table)
    return out


def write_counters(path: str | os.PathLike, counters: dict[str, Any]) -> Path:
    """Writes ``counters`` as JSON to ``path`` atomically (a temporary file renamed over it).

    Parent directories are created. Returns the path written.
    """
    body = {"format": FORMAT, "format_version": FORMAT_VERSION, "counters": counters}
    # allow_nan: a return can be +-inf or nan (a broken env); Python's json reads them back
    text = json.dumps(body, indent=1, sort_keys=True, allow_nan=True) + "\n"
    return atomic_write(path, (text.encode("utf-8"),))


def read_counters(path: str | os.PathLike) -> dict[str, Any]:
    """Reads and validates a file written by :func:`write_counters`; runs nothing from it.

    Raises:
        CheckpointError: the file is missing, too large, not this JSON format (a pickle, e.g.
            coax's lz4-compressed pickle, is named as such), of another format version, or its
            counters do not validate.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_BYTES + 1)
    except OSError as err:
        raise CheckpointError(f"cannot read counters file {path}: {err}") from None
    if len(data) > _MAX_BYTES:
        raise CheckpointError(f"{path} is over {_MAX_BYTES} bytes: not a TrainMonitor counters file")
    what = _sniff(data)
    if what is not None:
        raise CheckpointError(f"{path} is {what}, not a TrainMonitor counters file (JSON); it was "
                              "not loaded, since unpickling can run code from the file. Re-save the "
                              "counters with a2c_jax's TrainMonitor.save_counters")
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(f"{path} is not a TrainMonitor counters file: not JSON "
                              f"({type(err).__name__}: {err})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a TrainMonitor counters file: its JSON has no "
                              f"'format': {FORMAT!r}")
    if body.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has counters format version {body.get('format_version')!r}; "
                              f"this a2c_jax reads version {FORMAT_VERSION}")
    try:
        counters = check_counters(body.get("counters"))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path} holds invalid counters: {err}") from None
    return counters


def _sniff(data: bytes) -> str | None:
    """Names a binary format that is certainly not ours (``None``: maybe JSON)."""
    if data[:4] == b"\x04\x22\x4d\x18":
        return "an lz4 frame (coax's lz4-compressed pickle of the counters)"
    if data[:1] == b"\x80" and len(data) > 1 and 2 <= data[1] <= 5:
        return "a pickle"
    return None
