"""Checkpoints: everything needed to resume training, written atomically and checksummed.

The file format (version 2)::

    a2c_jax-checkpoint\\n
    {"format_version":2,"payload":"pickle","payload_bytes":N,"sha256":"<hex>"}\\n
    <N bytes: the pickled state>

The one-line JSON header carries the SHA-256 of the payload, verified before anything is
unpickled: a flipped bit or a truncated file is refused with :class:`CheckpointError`, never loaded
with different numbers. Version 1 files (a bare pickle of ``{"magic", "format_version": 1,
"state"}``, written before the checksum existed) still load, unchecked: they have no checksum to
verify.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ._files import atomic_write

FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_MAGIC = "a2c_jax-checkpoint"
_MAGIC_LINE = _MAGIC.encode() + b"\n"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, incomplete, or of another format version."""


class CheckpointState(dict):
    """The state :func:`load_checkpoint` returns: a ``dict`` whose missing keys raise
    :class:`CheckpointError` naming the key and the file, instead of a bare ``KeyError``.

    It flattens as a ``dict`` in JAX pytrees.
    """

    def __init__(self, state: dict, path: Path | None = None) -> None:
        super().__init__(state)
        self.path = path

    def __missing__(self, key: Any) -> Any:
        where = self.path if self.path is not None else "the checkpoint"
        raise CheckpointError(f"{where} is incomplete: it has no {key!r} entry")


# flattened like a dict (sorted keys), so that two loaded checkpoints compare and map as pytrees
jax.tree_util.register_pytree_node(
    CheckpointState,
    lambda d: ([d[k] for k in sorted(d)], tuple(sorted(d))),
    lambda keys, values: CheckpointState(dict(zip(keys, values))),
)


def _to_host(tree: Any) -> Any:
    return jax.tree.map(lambda x: np.asarray(x) if isinstance(x, jax.Array) else x, tree)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Writes ``state`` (a dict of pytrees and Python values) to ``path`` atomically.

    Device arrays are copied to numpy first. The pickled state is stored with its SHA-256 (see the
    module docstring). The file is written to a temporary file in the same directory, flushed and
    fsync'ed, renamed over ``path``, and the directory is fsync'ed: a crash leaves either the old
    checkpoint or the new one, never a torn file.
    """
    path = Path(path)
    if not isinstance(state, dict):
        raise TypeError(f"a checkpoint's state must be a dict, got {type(state).__name__}")
    payload = pickle.dumps(_to_host(dict(state)), protocol=pickle.HIGHEST_PROTOCOL)
    header = {"format_version": FORMAT_VERSION, "payload": "pickle",
              "payload_bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    return atomic_write(path, (_MAGIC_LINE, json.dumps(header, sort_keys=True,
                                                       separators=(",", ":")).encode() + b"\n",
                               payload))


def _version_error(path: Path, version: Any) -> CheckpointError:
    readable = " and ".join(map(str, _READABLE_VERSIONS))
    return CheckpointError(f"{path} has checkpoint format {version}, this a2c_jax reads formats "
                           f"{readable}")


def _unpickle(path: Path, data: bytes) -> Any:
    try:
        return pickle.loads(data)
    except Exception as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {err})") from None


def _read_v2(path: Path, data: bytes) -> Any:
    end = data.find(b"\n", len(_MAGIC_LINE))
    try:
        header = json.loads(data[len(_MAGIC_LINE):end]) if end >= 0 else None
    except ValueError:
        header = None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is damaged: unreadable header")
    if header.get("format_version") != FORMAT_VERSION:
        raise _version_error(path, header.get("format_version"))
    size, digest = header.get("payload_bytes"), header.get("sha256")
    if (header.get("payload") != "pickle" or not isinstance(size, int)
            or not isinstance(digest, str)):
        raise CheckpointError(f"{path} is damaged: unreadable header")
    payload = data[end + 1:]
    if len(payload) != size:
        raise CheckpointError(f"{path} is damaged: {len(payload)} payload bytes, the header says "
                              f"{size} (truncated or extended)")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(f"{path} is damaged: checksum mismatch")
    return _unpickle(path, payload)


def _read_v1(path: Path, data: bytes) -> Any:
    # format 1: a bare pickle with no checksum; it loads unchecked, as it was written
    payload = _unpickle(path, data)
    if not isinstance(payload, dict) or payload.get("magic") != _MAGIC:
        raise CheckpointError(f"{path} is not an a2c_jax checkpoint")
    if payload.get("format_version") != 1:
        raise _version_error(path, payload.get("format_version"))
    if "state" not in payload:
        raise CheckpointError(f"{path} is incomplete: it has no 'state' entry")
    return payload["state"]


def load_checkpoint(path: str | os.PathLike) -> CheckpointState:
    """Reads a checkpoint written by :func:`save_checkpoint` (a pickle: load only files you trust).

    Returns the saved dict as a :class:`CheckpointState`: reading a key it lacks raises
    :class:`CheckpointError` naming the key.

    Raises:
        CheckpointError: the file is missing, not a checkpoint, damaged (checksum mismatch,
            truncated), or of another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"cannot read {path}: {err.strerror or err}") from None
    state = _read_v2(path, data) if data.startswith(_MAGIC_LINE) else _read_v1(path, data)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not an a2c_jax checkpoint (its state is a "
                              f"{type(state).__name__}, not a dict)")
    return CheckpointState(state, path)
