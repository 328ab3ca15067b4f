"""Input checks for the tracers' ``add``: each returns a clean value or raises, naming the field.

They only read their arguments, so a tracer can check a whole step (or a whole batch of envs)
before it changes any of its own state.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_REAL_KINDS = "biuf"  # bool, signed and unsigned int, float: what converts to a float losslessly
_I32_MIN, _I32_MAX = int(np.iinfo(np.int32).min), int(np.iinfo(np.int32).max)


def real(name: str, x: Any) -> float:
    """One env's reward, logp or weight: a finite real scalar, as a Python float."""
    if not isinstance(x, (float, int)):  # Python and numpy float64 scalars skip the array detour
        arr = np.asarray(x)
        if arr.ndim != 0 or arr.dtype.kind not in _REAL_KINDS:
            raise ValueError(f"{name} must be a real scalar for a single env, got "
                             f"{_describe(x)}")
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def flag(name: str, x: Any) -> bool:
    """One env's ``done``/``truncated``: a bool (or 0/1) scalar."""
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if np.ndim(x) != 0 or isinstance(x, str) or x not in (0, 1):
        raise ValueError(f"{name} must be a bool for a single env, got {_describe(x)}")
    return bool(x)


def reals(name: str, x: Any, K: int, *, broadcast: bool) -> np.ndarray:
    """A batch's rewards, logps or weights: ``[K]`` reals (a scalar only where ``broadcast``)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in _REAL_KINDS:
        raise ValueError(f"{name} must hold real numbers, got {_describe(x)}")
    if arr.ndim == 0 and broadcast:
        return np.full(K, float(arr))
    if arr.shape != (K,):
        scalar = " (or a scalar)" if broadcast else ""
        raise ValueError(f"{name} must have shape ({K},){scalar} for a batch of {K} envs, got "
                         f"shape {arr.shape}")
    return arr.astype(np.float64)


def flags(name: str, x: Any, K: int) -> np.ndarray:
    """A batch's ``done``/``truncated``/``mask``: ``[K]`` bools (or 0/1)."""
    arr = np.asarray(x)
    if arr.shape != (K,):
        raise ValueError(f"{name} must have shape ({K},) for a batch of {K} envs, got shape "
                         f"{arr.shape}")
    if arr.dtype != bool:
        if arr.dtype.kind not in _REAL_KINDS or not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must hold bools (or 0/1), got {arr!r}")
        arr = arr.astype(bool)
    return arr


def require_finite(name: str, values: np.ndarray, envs: np.ndarray) -> None:
    """Raises naming the first env whose value is NaN or infinite."""
    bad = ~np.isfinite(values[envs])
    if bad.any():
        k = int(envs[np.argmax(bad)])
        raise ValueError(f"{name} must be finite, got {values[k]} for env {k}")


def rows(name: str, x: Any, K: int, hint: str) -> Any:
    """``x`` (an array, or a dict/tuple of them) as numpy arrays, each with leading axis ``K``."""
    if isinstance(x, dict):
        return {k: rows(f"{name}[{k!r}]", v, K, hint) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(rows(f"{name}[{i}]", v, K, hint) for i, v in enumerate(x))
    arr = np.asarray(x)
    if arr.ndim == 0 or arr.shape[0] != K:
        raise ValueError(f"{name} has shape {arr.shape}, but r has shape ({K},): a batch of {K} "
                         f"env(s), so {name} needs the leading axis {K}{hint}")
    return arr


def action(a: Any) -> np.ndarray:
    """A copy of the action; Python and numpy ints become ``int32`` (the policies' dtype)."""
    if isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)):
        if not _I32_MIN <= a <= _I32_MAX:
            raise ValueError(f"integer action {a} does not fit the int32 actions are stored as")
        return np.int32(a)
    return np.array(a)


def signature(x: Any) -> Any:
    """The structure and shapes of a copied observation or action (what batching needs to agree)."""
    if type(x) is np.ndarray:  # the common case first: this runs on every add
        return x.shape
    if isinstance(x, dict):
        return {k: signature(v) for k, v in x.items()}
    if isinstance(x, tuple):
        return [signature(v) for v in x]
    return x.shape  # copies are numpy arrays or scalars


def _describe(x: Any) -> str:
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"{type(x).__name__} of shape {tuple(x.shape)} and dtype {x.dtype}"
    return repr(x)
