"""Checks on recorded metrics that read only a value's type, shape and dtype (never its data).

A device array's shape and dtype are known before it is computed, so these checks cost no host
sync; :meth:`TrainMonitor.record_metrics` runs them on every call.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

REAL_KINDS = "biuf"  # bool, int, unsigned, float: what a TensorBoard scalar can be


def kind_of(x: Any) -> str | None:
    """The numpy dtype kind of an array, an array-like or a host list (``None``: no dtype)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return np.asarray(x).dtype.kind if isinstance(x, (list, tuple)) else None
    kind = getattr(dtype, "kind", None)  # numpy and JAX dtypes have it: no conversion needed
    if isinstance(kind, str):
        return kind
    try:
        return np.dtype(dtype).kind
    except TypeError:  # not a dtype numpy knows
        return None


def check_keys(keys: Any) -> None:
    """Raises ``TypeError`` unless every metric name is a string."""
    for k in keys:
        if not isinstance(k, str):
            raise TypeError(f"metric names must be strings, got {k!r}")


def check_scalar(key: str, v: Any) -> None:
    """Raises unless ``v`` is a real scalar; reads only its type, shape and dtype (no sync)."""
    if isinstance(v, (float, int)):  # Python numbers, bools and numpy float64 scalars
        return
    try:  # numpy and JAX arrays and scalars: static attributes only
        if v.dtype.kind in REAL_KINDS and v.size == 1:
            return
    except (AttributeError, TypeError):
        pass
    # what is wrong with it
    shape = getattr(v, "shape", None)
    if shape is None or isinstance(v, (list, tuple)):
        raise TypeError(f"metric {key!r} must be a real number or a size-1 array, got "
                        f"{type(v).__name__} {v!r}")
    kind = kind_of(v)
    if kind is None or kind not in REAL_KINDS:
        raise TypeError(f"metric {key!r} must be real, got dtype {getattr(v, 'dtype', None)}")
    if math.prod(shape) != 1:
        raise ValueError(f"metric {key!r} must be a scalar (size 1), got shape {tuple(shape)}: "
                         f"reduce it (e.g. mean) before recording")
