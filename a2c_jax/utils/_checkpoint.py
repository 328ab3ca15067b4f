"""Checkpoints: everything needed to resume training, written atomically."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

FORMAT_VERSION = 1
_MAGIC = "a2c_jax-checkpoint"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or of another format version."""


def _to_host(tree: Any) -> Any:
    return jax.tree.map(lambda x: np.asarray(x) if isinstance(x, jax.Array) else x, tree)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Writes ``state`` (a dict of pytrees and Python values) to ``path`` atomically.

    Device arrays are copied to numpy first. The file is written to a temporary file in the same
    directory, flushed and fsync'ed, then renamed over ``path``: a crash leaves either the old
    checkpoint or the new one, never a torn file.
    """
    path = Path(path)
    payload = {"magic": _MAGIC, "format_version": FORMAT_VERSION, "state": _to_host(state)}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a checkpoint written by :func:`save_checkpoint` (a pickle: load only files you trust).

    Raises:
        CheckpointError: the file is missing, not a checkpoint, corrupt, or of another version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with open(path, "rb") as f:
            payload = pickle.load(f)
    except Exception as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(payload, dict) or payload.get("magic") != _MAGIC:
        raise CheckpointError(f"{path} is not an a2c_jax checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {payload.get('format_version')}, "
                              f"this a2c_jax reads format {FORMAT_VERSION}")
    return payload["state"]
