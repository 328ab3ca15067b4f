"""Default observation preprocessors and the example inputs used to initialise a function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

Preprocessor = Callable[[Any], Any]


def default_preprocessor(space: gymnasium.Space) -> Preprocessor:
    """A pure, jittable map from a batch of raw observations to the input of ``func``.

    ``Box``: cast to float32. ``Discrete``: one-hot, ``[B] -> [B, n]``. ``MultiBinary``: float32.
    ``Dict``/``Tuple``: applied per entry. Anything else raises ``TypeError`` naming the space.
    """
    if isinstance(space, (gymnasium.spaces.Box, gymnasium.spaces.MultiBinary)):
        return lambda S: jnp.asarray(S, jnp.float32)
    if isinstance(space, gymnasium.spaces.Discrete):
        n, start = int(space.n), int(space.start)
        return lambda S: jax.nn.one_hot(jnp.asarray(S) - start, n)
    if isinstance(space, gymnasium.spaces.Dict):
        fn_of = {k: default_preprocessor(sp) for k, sp in space.spaces.items()}
        return lambda S: {k: f(S[k]) for k, f in fn_of.items()}
    if isinstance(space, gymnasium.spaces.Tuple):
        fns = [default_preprocessor(sp) for sp in space.spaces]
        return lambda S: tuple(f(x) for f, x in zip(fns, S))
    raise TypeError(
        f"unsupported observation space {space!r} ({type(space).__name__}): pass an "
        "observation_preprocessor that maps a batch of observations to arrays"
    )


def example_batch(space: gymnasium.Space, batch_size: int) -> Any:
    """A deterministic batch of valid observations (no draw from the space's RNG)."""
    if isinstance(space, gymnasium.spaces.Dict):
        return {k: example_batch(sp, batch_size) for k, sp in space.spaces.items()}
    if isinstance(space, gymnasium.spaces.Tuple):
        return tuple(example_batch(sp, batch_size) for sp in space.spaces)
    if isinstance(space, gymnasium.spaces.Discrete):
        return np.full((batch_size,), int(space.start), np.int64)
    shape = tuple(space.shape or ())
    low = np.broadcast_to(np.asarray(getattr(space, "low", 0), np.float64), shape)
    high = np.broadcast_to(np.asarray(getattr(space, "high", 1), np.float64), shape)
    x = np.where(np.isfinite(low), low, np.where(np.isfinite(high), high, 0.0))
    return np.broadcast_to(x.astype(space.dtype or np.float32), (batch_size, *shape)).copy()


def batch_one(space: gymnasium.Space, s: Any) -> Any:
    """Adds a leading batch axis to one observation, checking its shape against the space."""
    if isinstance(space, gymnasium.spaces.Dict):
        if not isinstance(s, dict) or set(s) != set(space.spaces):
            got = sorted(s) if isinstance(s, dict) else type(s).__name__
            raise ValueError(f"observation for {space} must be a dict with keys "
                             f"{sorted(space.spaces)}, got {got}")
        return {k: batch_one(sp, s[k]) for k, sp in space.spaces.items()}
    if isinstance(space, gymnasium.spaces.Tuple):
        if not isinstance(s, (tuple, list)) or len(s) != len(space.spaces):
            raise ValueError(f"observation for {space} must be a tuple of {len(space.spaces)} "
                             f"entries, got {type(s).__name__}")
        return tuple(batch_one(sp, x) for sp, x in zip(space.spaces, s))
    x = np.asarray(s)
    if space.shape is not None and x.shape != space.shape:
        raise ValueError(f"observation has shape {x.shape}; the observation space "
                         f"{space} expects {space.shape}")
    return x[None]


def check_batch(space: gymnasium.Space, S: Any) -> Any:
    """Checks a batch of observations against the space; returns it as arrays.

    ``Dict`` and ``Tuple`` spaces take a dict / tuple of batches (a pytree of batched arrays, as
    ``func`` receives them), each checked against its own space, with one batch size for all.
    """
    S = _check_batch(space, S, "observations")
    sizes = {np.shape(x)[0] for x in jax.tree.leaves(S)}
    if len(sizes) > 1:
        raise ValueError(f"the entries of a batch of composite observations have different batch "
                         f"sizes {sorted(sizes)}")
    return S


def _check_batch(space: gymnasium.Space, S: Any, where: str) -> Any:
    if isinstance(space, gymnasium.spaces.Dict):
        if not isinstance(S, dict) or set(S) != set(space.spaces):
            got = sorted(S) if isinstance(S, dict) else type(S).__name__
            raise ValueError(f"batch of {where}: expected a dict with keys {sorted(space.spaces)} "
                             f"for {space}, got {got}")
        return {k: _check_batch(sp, S[k], f"{where}[{k!r}]") for k, sp in space.spaces.items()}
    if isinstance(space, gymnasium.spaces.Tuple):
        if not isinstance(S, (tuple, list)) or len(S) != len(space.spaces):
            got = f"{len(S)} entries" if isinstance(S, (tuple, list)) else type(S).__name__
            raise ValueError(f"batch of {where}: expected a tuple of {len(space.spaces)} batches "
                             f"for {space}, got {got}")
        return tuple(_check_batch(sp, x, f"{where}[{i}]") for i, (sp, x) in
                     enumerate(zip(space.spaces, S)))
    X = np.asarray(S) if not isinstance(S, jax.Array) else S
    if space.shape is not None and (X.ndim < 1 or tuple(X.shape[1:]) != tuple(space.shape)):
        raise ValueError(f"batch of {where} has shape {tuple(X.shape)}; expected "
                         f"[B, *{tuple(space.shape)}] for {space}")
    return X
