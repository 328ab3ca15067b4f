"""Checkpoints that never run code from the file: arrays in orbax-checkpoint, the rest as JSON,
every file listed with its SHA-256 in a manifest that is checked before anything is read.

The format (version 3) is a directory::

    checkpoint/
      manifest.json            format, version, kind; every other file with its size and SHA-256
      state.json               the state, its arrays replaced by references {"$array": "a00003"}
      NAME.process-<i>.json    process-local entries (the loop engine's envs), one file per process
      arrays/                  the arrays, as an orbax-checkpoint PyTree (keys a00000, a00001, ...)

Nothing on the load path unpickles: the manifest, state and process files are parsed as strict JSON
(no ``NaN`` tokens, no duplicate keys) and the arrays are read by orbax (tensorstore) as numeric
numpy arrays. Before either, every file is checked against the manifest, and the manifest against
its canonical form: a missing, extra, changed or truncated file is refused with
:class:`CheckpointError`, so is a symbolic link or a manifest edited by hand. Loading builds only
dicts, lists, tuples, numbers, strings and numpy arrays; a caller that needs richer structures
(optax's ``NamedTuple`` states) puts the leaves into a structure it builds itself
(:func:`~a2c_jax.utils._trees.tree_from_state_dict`), never one named in the file.

Writes are atomic: the new checkpoint is written and fsynced in a temporary directory beside the
target, then swapped in by two renames (the old one to ``.NAME.previous``, the new one into place)
and the old one removed. A crash at any point leaves a loadable checkpoint: the old one, the new
one, or (between the two renames) ``.NAME.previous``, which :func:`load_checkpoint` falls back to
with a warning.

Checkpoints of the pickle formats 1 and 2 (``checkpoint.pkl``) are refused, unread: loading a pickle
can run code from the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ._files import fsync_directory

FORMAT = "a2c_jax"
FORMAT_VERSION = 3
MANIFEST = "manifest.json"
STATE = "state.json"
ARRAYS = "arrays"
KINDS = ("checkpoint", "policy")
_KIND_NAMES = {"checkpoint": "a training checkpoint", "policy": "an exported policy"}
_MAX_MANIFEST_BYTES = 64 << 20
_OLD_MAGIC = b"a2c_jax-checkpoint\n"


class CheckpointError(ValueError):
    """A checkpoint is missing, damaged (a file missing, extra, changed or truncated), foreign, of
    another format version, or does not fit the objects it is loaded into. The message names the
    problem."""


class CheckpointState(dict):
    """The state :func:`load_checkpoint` returns: a ``dict`` whose missing keys raise
    :class:`CheckpointError` naming the key and the checkpoint, instead of a bare ``KeyError``.

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


# ---- typed JSON: plain data and numpy values, exactly, as strict JSON ---------------------------

_DTYPE_NAMES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                "float16", "float32", "float64", "bfloat16")
#: numpy's bit generators whose state a checkpoint may restore (``Generator.bit_generator.state``)
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


_TEXT_DTYPE = re.compile(r"^[SU][1-9][0-9]{0,3}$")   # fixed-width bytes / unicode, inline only


def _dtype_name(dtype: np.dtype) -> str | None:
    """The name a checkpoint gives ``dtype``, or None if it cannot hold it."""
    if dtype.name in _DTYPE_NAMES:
        return dtype.name
    if dtype.kind == "S" and 0 < dtype.itemsize < 10_000:
        return f"S{dtype.itemsize}"
    if dtype.kind == "U" and 0 < dtype.itemsize < 40_000:
        return f"U{dtype.itemsize // 4}"
    return None


def _dtype(name: Any, where: str) -> np.dtype:
    """The numpy dtype called ``name``: one of the numeric dtypes, or fixed-width bytes or text
    (never ``object``)."""
    if isinstance(name, str) and _TEXT_DTYPE.match(name):
        return np.dtype(name)
    if name not in _DTYPE_NAMES:
        raise CheckpointError(f"{where}: unsupported dtype {name!r}")
    if name == "bfloat16":
        import ml_dtypes  # JAX's own dependency

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _float_to_json(x: float) -> Any:
    if math.isfinite(x):
        return x
    return {"$float": "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")}


def _array_data(a: np.ndarray) -> list:
    flat = a.reshape(-1)
    if flat.dtype.kind == "S":
        return [x.decode("latin-1") for x in flat.tolist()]
    if flat.dtype.kind == "f" or flat.dtype.name == "bfloat16":
        return [x if math.isfinite(x) else _float_to_json(x)["$float"]
                for x in flat.astype(np.float64).tolist()]
    return flat.tolist()


class _Encoder:
    """Turns a value into JSON; arrays go to ``arrays`` (orbax) or inline (``arrays is None``)."""

    def __init__(self, arrays: dict[str, np.ndarray] | None) -> None:
        self.arrays = arrays

    def __call__(self, x: Any, where: str) -> Any:
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, int):
            return int(x)
        if isinstance(x, float):
            return _float_to_json(float(x))
        if isinstance(x, (np.ndarray, jax.Array)):
            return self._array(np.asarray(x), where)
        if isinstance(x, np.generic):
            if _dtype_name(x.dtype) is None or x.dtype.kind in "SU":
                raise TypeError(f"{where}: numpy scalars of dtype {x.dtype} cannot be saved")
            value = x.item()
            return {"$scalar": {"dtype": _dtype_name(x.dtype),
                                "value": _float_to_json(value) if isinstance(value, float) else value}}
        if isinstance(x, np.random.Generator):
            name = type(x.bit_generator).__name__
            if name not in BIT_GENERATORS:
                raise TypeError(f"{where}: a Generator over {name} cannot be saved")
            return {"$generator": {"bit_generator": name,
                                   "state": self(x.bit_generator.state, f"{where}.state")}}
        if isinstance(x, list):
            return [self(v, f"{where}[{i}]") for i, v in enumerate(x)]
        if type(x) is tuple:  # a NamedTuple would come back as a plain tuple: flatten it first
            return {"$tuple": [self(v, f"{where}[{i}]") for i, v in enumerate(x)]}
        if type(x) is dict or isinstance(x, CheckpointState):
            if all(isinstance(k, str) and not k.startswith("$") for k in x):
                return {k: self(v, f"{where}[{k!r}]") for k, v in x.items()}
            # other keys (ints, tuples: FrozenLake's transition table): as a list of pairs
            pairs = []
            for k, v in x.items():
                key = self(k, f"{where} key {k!r}")
                if isinstance(key, dict) and next(iter(key)) in ("$ndarray", "$array",
                                                                  "$generator"):
                    raise TypeError(f"{where}: an array cannot be a dict key")
                pairs.append([key, self(v, f"{where}[{k!r}]")])
            return {"$dict": pairs}
        raise TypeError(f"{where}: a {type(x).__name__} cannot be saved in a checkpoint (plain "
                        "data and numpy arrays only)")

    def _array(self, a: np.ndarray, where: str) -> Any:
        name = _dtype_name(a.dtype)
        if name is None:
            raise TypeError(f"{where}: arrays of dtype {a.dtype} cannot be saved")
        if self.arrays is None or a.size == 0 or a.dtype.kind in "SU":
            # inline: process-local data, and what orbax does not store (empty and text arrays)
            return {"$ndarray": {"dtype": name, "shape": list(a.shape),
                                 "data": _array_data(a)}}
        key = f"a{len(self.arrays):05d}"
        self.arrays[key] = a
        return {"$array": key}


def to_json(x: Any, arrays: dict[str, np.ndarray] | None = None, where: str = "state") -> Any:
    """``x`` as JSON-able data that :func:`from_json` turns back into an equal value.

    ``None``, bools, ints, finite floats, strings and lists stay as they are; dicts must have
    string keys (not starting with ``$``). Tagged objects stand for the rest: ``{"$float": "nan"}``
    (non-finite floats, so the JSON stays strict), ``{"$tuple": [...]}``, ``{"$dict": [[key,
    value], ...]}`` (dicts with other keys than strings), ``{"$scalar": {dtype,
    value}}`` (numpy scalars), ``{"$generator": {bit_generator, state}}`` (a numpy ``Generator``, by
    its bit generator's state), and arrays: ``{"$array": key}`` with the array put in ``arrays``
    (written by orbax) or, when ``arrays`` is None or the array is empty,
    ``{"$ndarray": {dtype, shape, data}}`` inline (also for empty arrays and fixed-width text,
    which orbax does not store).

    Raises:
        TypeError: ``x`` holds anything else (the message names where).
    """
    return _Encoder(arrays)(x, where)


class _Decoder:
    def __init__(self, arrays: Mapping[str, np.ndarray] | None, where: str) -> None:
        self.arrays, self.where = arrays, where
        self.used: set[str] = set()

    def fail(self, at: str, problem: str) -> CheckpointError:
        return CheckpointError(f"{self.where} is damaged: {at}: {problem}")

    def __call__(self, x: Any, at: str) -> Any:
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, list):
            return [self(v, f"{at}[{i}]") for i, v in enumerate(x)]
        if not isinstance(x, dict):
            raise self.fail(at, f"unexpected {type(x).__name__}")
        tags = [k for k in x if k.startswith("$")]
        if not tags:
            return {k: self(v, f"{at}[{k!r}]") for k, v in x.items()}
        if len(x) != 1:
            raise self.fail(at, f"a tagged object with other keys: {sorted(x)}")
        tag, body = tags[0], x[tags[0]]
        if tag == "$float" and body in _NONFINITE:
            return _NONFINITE[body]
        if tag == "$tuple" and isinstance(body, list):
            return tuple(self(v, f"{at}[{i}]") for i, v in enumerate(body))
        if tag == "$dict" and isinstance(body, list):
            return self._dict(body, at)
        if tag == "$scalar":
            return self._scalar(body, at)
        if tag == "$ndarray":
            return self._ndarray(body, at)
        if tag == "$array":
            return self._array(body, at)
        if tag == "$generator":
            return self._generator(body, at)
        raise self.fail(at, f"unknown tag {tag!r}")

    def _scalar(self, body: Any, at: str) -> Any:
        if not isinstance(body, dict) or set(body) != {"dtype", "value"}:
            raise self.fail(at, "a malformed numpy scalar")
        dtype = _dtype(body["dtype"], f"{self.where}: {at}")
        return self._elements([self(body["value"], at)], dtype, at)[0]

    def _dict(self, pairs: list, at: str) -> dict:
        out = {}
        for i, pair in enumerate(pairs):
            if not isinstance(pair, list) or len(pair) != 2:
                raise self.fail(at, "a malformed dict")
            key = self(pair[0], f"{at} key {i}")
            try:
                hash(key)
            except TypeError:
                raise self.fail(at, f"an unhashable key {key!r}") from None
            if key in out:
                raise self.fail(at, f"the key {key!r} twice")
            out[key] = self(pair[1], f"{at}[{key!r}]")
        return out

    def _elements(self, data: list, dtype: np.dtype, at: str) -> np.ndarray:
        kind = "f" if dtype.name == "bfloat16" else dtype.kind
        if kind in "SU":
            if not all(isinstance(v, str) for v in data):
                raise self.fail(at, f"{dtype} values must be strings")
            try:
                values = [v.encode("latin-1") for v in data] if kind == "S" else data
                return np.array(values, dtype=dtype)
            except (UnicodeEncodeError, ValueError) as err:
                raise self.fail(at, f"values do not fit {dtype} ({err})") from None
        for v in data:
            ok = (isinstance(v, bool) if kind == "b" else
                  isinstance(v, int) and not isinstance(v, bool) if kind in "iu" else
                  (isinstance(v, (int, float)) and not isinstance(v, bool)) or v in _NONFINITE)
            if not ok:
                raise self.fail(at, f"{v!r} is not a {dtype} value")
        values = [_NONFINITE[v] if isinstance(v, str) else v for v in data]
        try:
            return np.array(values, dtype=dtype)
        except (OverflowError, ValueError) as err:
            raise self.fail(at, f"values do not fit {dtype} ({err})") from None

    def _shape(self, shape: Any, at: str) -> tuple[int, ...]:
        if not (isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool)
                                                and n >= 0 for n in shape)):
            raise self.fail(at, f"invalid shape {shape!r}")
        return tuple(shape)

    def _ndarray(self, body: Any, at: str) -> np.ndarray:
        if not isinstance(body, dict) or set(body) != {"dtype", "shape", "data"}:
            raise self.fail(at, "a malformed inline array")
        dtype = _dtype(body["dtype"], f"{self.where}: {at}")
        shape = self._shape(body["shape"], at)
        data = body["data"]
        if not isinstance(data, list) or len(data) != math.prod(shape):
            raise self.fail(at, f"an array of shape {shape} needs {math.prod(shape)} values")
        return self._elements(data, dtype, at).reshape(shape)

    def _array(self, key: Any, at: str) -> np.ndarray:
        if self.arrays is None or not isinstance(key, str) or key not in self.arrays:
            raise self.fail(at, f"refers to an array {key!r} that it does not hold")
        if key in self.used:
            raise self.fail(at, f"array {key!r} is referred to twice")
        self.used.add(key)
        return self.arrays[key]

    def _generator(self, body: Any, at: str) -> np.random.Generator:
        if not isinstance(body, dict) or set(body) != {"bit_generator", "state"}:
            raise self.fail(at, "a malformed random generator")
        name = body["bit_generator"]
        if name not in BIT_GENERATORS:
            raise self.fail(at, f"unsupported bit generator {name!r}")
        bit_generator = getattr(np.random, name)()
        try:
            bit_generator.state = self(body["state"], f"{at}.state")
        except (TypeError, ValueError, KeyError) as err:
            raise self.fail(at, f"invalid {name} state ({err})") from None
        return np.random.Generator(bit_generator)


def from_json(x: Any, arrays: Mapping[str, np.ndarray] | None = None,
              where: str = "the checkpoint") -> Any:
    """The value :func:`to_json` encoded as ``x`` (arrays by key from ``arrays``).

    Builds only dicts, lists, tuples, Python scalars, numpy scalars and arrays of numeric dtypes,
    and numpy ``Generator`` objects over one of :data:`BIT_GENERATORS`.

    Raises:
        CheckpointError: ``x`` is not such an encoding (the message names where, after ``where``).
    """
    return _Decoder(arrays, where)(x, "state")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in strict JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate keys in an object")
    return out


def parse_json(data: bytes, where: str) -> Any:
    """Strict JSON (no ``NaN``/``Infinity`` tokens, no duplicate keys), or :class:`CheckpointError`."""
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant,
                          object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as err:
        raise CheckpointError(f"{where} is not valid JSON ({err})") from None


def dump_json(x: Any, *, canonical: bool = False) -> bytes:
    """Strict JSON bytes of ``x``: sorted keys, ``canonical`` compact (the manifest's form)."""
    if canonical:
        text = json.dumps(x, sort_keys=True, separators=(",", ":"), allow_nan=False)
    else:
        text = json.dumps(x, sort_keys=True, indent=1, allow_nan=False)
    return text.encode() + b"\n"


# ---- the directory: staging, the manifest, the atomic swap --------------------------------------

def _previous(path: Path) -> Path:
    return path.parent / f".{path.name}.previous"


def _kind_of(directory: Path) -> str | None:
    """``"empty"``, the kind an a2c_jax manifest in ``directory`` names, or ``None`` (not ours)."""
    if not any(directory.iterdir()):
        return "empty"
    manifest = directory / MANIFEST
    try:
        if manifest.is_symlink() or manifest.stat().st_size > _MAX_MANIFEST_BYTES:
            return None
        data = parse_json(manifest.read_bytes(), str(manifest))
    except (OSError, CheckpointError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return data.get("kind") if data.get("kind") in _KIND_NAMES else None


def _check_replaceable(path: Path, kind: str) -> None:
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise CheckpointError(f"{path} exists and is not a checkpoint directory: not replacing it "
                              "(checkpoints are directories since format 3)")
    if not path.is_dir():
        return
    found = _kind_of(path)
    if found is None:
        raise CheckpointError(f"{path} exists and is not an a2c_jax checkpoint: not replacing it")
    if found not in ("empty", kind):  # an export never replaces a run's checkpoint, nor back
        raise CheckpointError(f"{path} is {_KIND_NAMES[found]}: not replacing it with "
                              f"{_KIND_NAMES[kind]}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_manifest(directory: Path, kind: str) -> None:
    """Lists every file under ``directory`` with its size and SHA-256, fsyncing each file and
    directory, then writes the manifest (fsynced too)."""
    files = {}
    for root, dirs, names in os.walk(directory):
        for name in names:
            full = Path(root) / name
            _fsync_file(full)
            files[full.relative_to(directory).as_posix()] = {
                "bytes": full.stat().st_size, "sha256": _sha256(full)}
        for name in dirs:
            fsync_directory(Path(root) / name)
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
                "files": dict(sorted(files.items()))}
    with (directory / MANIFEST).open("wb") as f:
        f.write(dump_json(manifest, canonical=True))
        f.flush()
        os.fsync(f.fileno())
    fsync_directory(directory)


def _swap_into_place(tmp: Path, path: Path) -> None:
    previous = _previous(path)
    if path.exists():
        if previous.exists():  # left by a crash after the last swap: the checkpoint at path is newer
            shutil.rmtree(previous)
        os.rename(path, previous)
    # else a crash between the two renames of the last swap left only `previous`: keep it until the
    # new checkpoint is in place
    os.rename(tmp, path)
    fsync_directory(path.parent)
    if previous.exists():
        shutil.rmtree(previous, ignore_errors=True)


def _stage(path: Path, kind: str, tmp: Path | None = None) -> Path:
    """Checks that ``path`` may be replaced by a checkpoint of ``kind``, removes temporary
    directories left beside it by a crash, and creates the staging directory (``tmp``, or a new
    unique one)."""
    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind {kind!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_replaceable(path, kind)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a crash during a write
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
    if tmp is None:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    tmp.mkdir()
    return tmp


def _commit(tmp: Path, path: Path, kind: str) -> None:
    """Adds the manifest to the staged ``tmp`` and swaps it into place at ``path``; on any failure
    the staging directory is removed."""
    try:
        _write_manifest(tmp, kind)
        _swap_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_directory(path: str | os.PathLike, kind: str, write: Callable[[Path], None]) -> Path:
    """Writes a checkpoint directory of ``kind`` at ``path`` atomically: ``write(tmp)`` fills a
    temporary directory beside ``path``, then the manifest is added and the directory swapped into
    place (see the module docstring). A directory already at ``path`` is replaced only if it is
    empty or an a2c_jax directory of the same kind (an export never replaces a training
    checkpoint). Returns ``path``.

    Raises:
        CheckpointError: ``path`` is a file, a link, a directory that is not a checkpoint, or one
            of the other kind.
    """
    path = Path(path)
    tmp = _stage(path, kind)
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _commit(tmp, path, kind)
    return path


_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def _check_manifest(manifest: Any, data: bytes, where: Path) -> tuple[str, dict[str, dict[str, Any]]]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not an a2c_jax checkpoint (its {MANIFEST} is of another "
                              "format)")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{where} has checkpoint format {version!r}; this a2c_jax reads "
                              f"format {FORMAT_VERSION}")
    if dump_json(manifest, canonical=True) != data:
        raise CheckpointError(f"{where} is damaged: its {MANIFEST} has been edited (it is not as "
                              "a2c_jax writes it)")
    files = manifest.get("files")
    if (set(manifest) != {"format", "format_version", "kind", "files"}
            or manifest.get("kind") not in KINDS or not isinstance(files, dict)):
        raise CheckpointError(f"{where} is damaged: its {MANIFEST} is malformed")
    for name, entry in files.items():
        parts = name.split("/")
        if (name == MANIFEST or not all(_SAFE_NAME.match(p) for p in parts)
                or not isinstance(entry, dict) or set(entry) != {"bytes", "sha256"}
                or not isinstance(entry["bytes"], int) or isinstance(entry["bytes"], bool)
                or not isinstance(entry["sha256"], str)
                or not re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])):
            raise CheckpointError(f"{where} is damaged: its {MANIFEST} has an invalid entry "
                                  f"{name!r}")
    return manifest["kind"], files


def verify_directory(directory: Path) -> tuple[str, dict[str, bytes]]:
    """Checks every file of the checkpoint at ``directory`` against its manifest, before anything
    else reads them.

    Returns:
        ``(kind, json_files)``: the manifest's kind and the bytes of every ``.json`` file at the top
        level (the bytes that were checked: parse these, not the files again).

    Raises:
        CheckpointError: no or a foreign manifest, another format version, an edited manifest, a
            missing, extra, resized or changed file, a link or a special file.
    """
    manifest_path = directory / MANIFEST
    if manifest_path.is_symlink() or not manifest_path.is_file():
        raise CheckpointError(f"{directory} is not an a2c_jax checkpoint: it has no {MANIFEST}")
    if manifest_path.stat().st_size > _MAX_MANIFEST_BYTES:
        raise CheckpointError(f"{directory} is not an a2c_jax checkpoint: its {MANIFEST} is too "
                              "large")
    data = manifest_path.read_bytes()
    kind, files = _check_manifest(parse_json(data, f"{directory}/{MANIFEST}"), data, directory)
    found = set()
    for root, dirs, names in os.walk(directory):
        for name in dirs + names:
            full = Path(root) / name
            rel = full.relative_to(directory).as_posix()
            if full.is_symlink():
                raise CheckpointError(f"{directory} is damaged: {rel} is a symbolic link")
            if name in names and rel != MANIFEST:
                if not full.is_file():
                    raise CheckpointError(f"{directory} is damaged: {rel} is not a regular file")
                if rel not in files:
                    raise CheckpointError(f"{directory} is damaged: unexpected file {rel} (not in "
                                          f"its {MANIFEST})")
                found.add(rel)
    missing = sorted(set(files) - found)
    if missing:
        raise CheckpointError(f"{directory} is damaged: {missing[0]} is missing")
    json_files = {}
    for rel, entry in sorted(files.items()):
        full = directory / rel
        size = full.stat().st_size
        if size != entry["bytes"]:
            raise CheckpointError(f"{directory} is damaged: {rel} has {size} bytes, its "
                                  f"{MANIFEST} says {entry['bytes']} (truncated or extended)")
        if "/" not in rel and rel.endswith(".json"):
            content = full.read_bytes()
            digest = hashlib.sha256(content).hexdigest()
            json_files[rel] = content
        else:
            digest = _sha256(full)
        if digest != entry["sha256"]:
            raise CheckpointError(f"{directory} is damaged: {rel} has changed (checksum mismatch)")
    return kind, json_files


def _refuse_file(path: Path) -> CheckpointError:
    try:
        with path.open("rb") as f:
            head = f.read(len(_OLD_MAGIC))
    except OSError as err:
        return CheckpointError(f"cannot read {path}: {err.strerror or err}")
    if head.startswith(_OLD_MAGIC) or head[:1] == b"\x80":
        return CheckpointError(
            f"{path} is a checkpoint of an older a2c_jax, a pickle (format 1 or 2); this version "
            "refuses pickles, unread, because loading one can run code from the file: retrain, or "
            "convert it with the a2c_jax that wrote it (see docs/checkpoints.md)")
    return CheckpointError(f"{path} is a file, not an a2c_jax checkpoint (a directory)")


def resolve_directory(path: str | os.PathLike) -> Path:
    """The checkpoint directory to read for ``path``: ``path`` itself, or, when a write was
    interrupted between its two renames, the previous checkpoint beside it (with a warning).

    Raises:
        CheckpointError: nothing there, a file (an old pickle checkpoint is named as one), a link.
    """
    path = Path(path)
    if path.is_symlink():
        raise CheckpointError(f"{path} is a symbolic link, not a checkpoint directory")
    if path.is_dir():
        return path
    if path.exists():
        raise _refuse_file(path)
    previous = _previous(path)
    if previous.is_dir() and not previous.is_symlink():
        warnings.warn(f"{path} is missing: a save was interrupted between its two renames; "
                      f"loading the previous checkpoint, {previous}", stacklevel=3)
        return previous
    old = path.with_name(path.name + ".pkl")
    if old.is_file():
        raise CheckpointError(f"no checkpoint at {path}; {_refuse_file(old)}")
    raise CheckpointError(f"no checkpoint at {path}")


# ---- the state: JSON and orbax arrays -----------------------------------------------------------

def _checkpointer() -> Any:
    """orbax's checkpointer for this process alone: the arrays are host copies, written by one
    process (and read by each for itself), so orbax must not wait for the others."""
    import orbax.checkpoint as ocp  # type: ignore[import-untyped]  # orbax ships no py.typed

    me = jax.process_index()
    alone = ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})
    return ocp.Checkpointer(ocp.PyTreeCheckpointHandler(multiprocessing_options=alone),
                            multiprocessing_options=alone)


def _write_arrays(directory: Path, arrays: Mapping[str, np.ndarray]) -> None:
    import orbax.checkpoint as ocp

    _checkpointer().save(directory.resolve(), args=ocp.args.PyTreeSave(dict(arrays)))


def _read_arrays(directory: Path, table: Any, where: Path) -> dict[str, np.ndarray]:
    """The arrays of ``table`` (``{key: {"dtype", "shape"}}``), checked against it."""
    if not isinstance(table, dict):
        raise CheckpointError(f"{where} is damaged: its array table is malformed")
    expected: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
    decoder = _Decoder(None, str(where))
    for key, entry in table.items():
        if not re.fullmatch(r"a\d{5,}", key) or not isinstance(entry, dict) \
                or set(entry) != {"dtype", "shape"}:
            raise CheckpointError(f"{where} is damaged: invalid array entry {key!r}")
        expected[key] = (_dtype(entry["dtype"], f"{where}: array {key}"),
                         decoder._shape(entry["shape"], f"array {key}"))
    if not expected:
        if (where / ARRAYS).exists():
            raise CheckpointError(f"{where} is damaged: it has arrays/ but no arrays listed")
        return {}
    import orbax.checkpoint as ocp

    restore_args = {k: ocp.RestoreArgs(restore_type=np.ndarray) for k in expected}
    try:
        arrays = _checkpointer().restore(
            (directory).resolve(), args=ocp.args.PyTreeRestore(restore_args=restore_args))
    except Exception as err:  # orbax and tensorstore raise many kinds; none is ours to pass on
        raise CheckpointError(f"{where} is damaged: its arrays cannot be read "
                              f"({type(err).__name__}: {_one_line(err)})") from None
    if not isinstance(arrays, dict) or set(arrays) != set(expected):
        raise CheckpointError(f"{where} is damaged: its arrays are not the ones state.json lists")
    out = {}
    for key, (dtype, shape) in expected.items():
        a = arrays[key]
        if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape:
            raise CheckpointError(f"{where} is damaged: array {key} is not {dtype}{list(shape)}")
        out[key] = a
    return out


def _one_line(err: BaseException) -> str:
    """The first line of ``err``'s message (orbax's and tensorstore's can span many)."""
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else ""


def process_file(name: str, process: int) -> str:
    """The file name of process ``process``'s part of the process-local entry ``name``."""
    return f"{name}.process-{process}.json"


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any], *,
                    per_process: Mapping[str, Any] | None = None, kind: str = "checkpoint") -> Path:
    """Writes ``state`` to the checkpoint directory ``path`` atomically (see the module docstring).

    Args:
        path: the checkpoint directory (created or replaced).
        state: a dict of plain data (``None``, bools, ints, floats, strings, lists, tuples, dicts
            with string keys) and arrays (numpy or JAX; copied to the host): the arrays go to
            orbax, the rest to ``state.json`` (see :func:`to_json`). Pytrees of other types
            (``NamedTuple`` optimizer states) must be flattened first
            (:func:`~a2c_jax.utils._trees.tree_to_state_dict`).
        per_process: entries that belong to this process (e.g. its envs), each already JSON-able
            (:func:`to_json` with inline arrays): written as ``NAME.process-<i>.json``, ``i`` this
            process's index, and returned under ``NAME`` by :func:`load_checkpoint` in the same
            process index.
        kind: ``"checkpoint"`` or ``"policy"`` (an exported policy).

    Raises:
        TypeError: ``state`` holds a value that cannot be saved (the message names where).
        CheckpointError: ``path`` is a file or a directory that is not a checkpoint; in a run over
            several processes, also when another process failed its part of the write.

    In a run over several processes every process calls it with the same ``state`` (host copies
    of the replicated arrays) and its own ``per_process`` entries, on a file system they all share
    (the run's ``--out``): process 0 stages the directory, every process writes and fsyncs its own
    ``NAME.process-<i>.json`` files into it, then process 0 writes the state and the arrays, lists
    every process's files in the manifest and swaps the directory into place. Each step ends with
    one all-gather of success flags, so a failure anywhere makes every process raise, and none
    returns before the checkpoint is in place.
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"a checkpoint's state must be a dict, got {type(state).__name__}")
    arrays: dict[str, np.ndarray] = {}
    body = {"state": to_json(dict(state), arrays),
            "arrays": {k: {"dtype": a.dtype.name, "shape": list(a.shape)} for k, a in arrays.items()},
            "per_process": sorted(per_process or {}), "processes": jax.process_count()}
    local: dict[str, bytes] = {}

    def encode_mine() -> None:
        for name, value in (per_process or {}).items():
            if not _SAFE_NAME.match(name) or "." in name or name in state:
                raise ValueError(f"invalid per-process entry name {name!r} (a name of the state, "
                                 "or not a plain file name)")
            local[process_file(name, jax.process_index())] = dump_json(value)

    if jax.process_count() == 1:
        encode_mine()
    else:  # this process's entries may fail to encode: every process must hear of it
        _all_done(Path(path), "encode its part of", _attempt(encode_mine), None)
    state_bytes = dump_json(body)

    def write_shared(tmp: Path) -> None:
        (tmp / STATE).write_bytes(state_bytes)
        if arrays:
            _write_arrays(tmp / ARRAYS, arrays)

    if jax.process_count() == 1:
        def write(tmp: Path) -> None:
            write_shared(tmp)
            for name, data in local.items():
                (tmp / name).write_bytes(data)  # fsynced with the manifest

        return write_directory(path, kind, write)
    return _save_together(Path(path), kind, local, write_shared)


def _save_together(path: Path, kind: str, local: Mapping[str, bytes],
                   write_shared: Callable[[Path], None]) -> Path:
    """:func:`save_checkpoint` over several processes: each writes its own files, process 0 the
    rest and the manifest (see there)."""
    from jax.experimental import multihost_utils

    main = jax.process_index() == 0
    # one staging directory for all: its name from process 0's random token
    token = np.frombuffer(os.urandom(8), np.uint8) if main else np.zeros(8, np.uint8)
    token = np.asarray(multihost_utils.broadcast_one_to_all(token), np.uint8)
    tmp = path.parent / f".{path.name}.tmp-{token.tobytes().hex()}"
    _all_done(path, "stage", _attempt(lambda: _stage(path, kind, tmp)) if main else None, tmp)

    def write_mine() -> None:
        for name, data in local.items():
            with (tmp / name).open("wb") as f:   # synced here: process 0 may be on another host
                f.write(data)
                f.flush()
                os.fsync(f.fileno())

    _all_done(path, "write its files into", _attempt(write_mine), tmp)
    failure = None
    if main:
        def finish() -> None:
            write_shared(tmp)
            _commit(tmp, path, kind)

        failure = _attempt(finish)
    _all_done(path, "write", failure, tmp)
    return path


def _attempt(step: Callable[[], Any]) -> BaseException | None:
    """``step()``'s exception, or ``None`` (raised again by :func:`_all_done`, after every process
    knows)."""
    try:
        step()
    except BaseException as err:
        return err
    return None


def _all_done(path: Path, what: str, failure: BaseException | None, tmp: Path | None) -> None:
    """One all-gather of every process's success at a step of a shared save: a process that failed
    raises its own error; the others raise :class:`CheckpointError` naming the processes that
    failed (and process 0 removes the staging directory)."""
    from jax.experimental import multihost_utils

    ok = np.asarray(multihost_utils.process_allgather(np.asarray([failure is None], np.int32)))
    failed = [i for i, flag in enumerate(ok.reshape(-1)) if not flag]
    if not failed:
        return
    if jax.process_index() == 0 and tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    if failure is not None:
        raise failure
    names = ", ".join(str(i) for i in failed)
    raise CheckpointError(f"process{'es' if len(failed) > 1 else ''} {names} could not {what} "
                          f"the checkpoint {path}")


def load_checkpoint(path: str | os.PathLike, *, kind: str = "checkpoint") -> CheckpointState:
    """Reads a checkpoint written by :func:`save_checkpoint`; never runs code from it.

    Every file is checked against the manifest first; then ``state.json`` is parsed as strict JSON
    and the arrays read by orbax as numpy arrays. The result is built of dicts, lists, tuples,
    scalars and numpy arrays only. Process-local entries come from this process's file.

    Returns:
        The saved dict as a :class:`CheckpointState` (reading a key it lacks raises
        :class:`CheckpointError` naming the key).

    Raises:
        CheckpointError: nothing at ``path``, an old pickle checkpoint, a foreign directory, a
            damaged one (a file missing, extra, changed or truncated), another format version, or
            a checkpoint of another kind (a policy where a training checkpoint is expected).
    """
    try:
        return _load_checkpoint(path, kind)
    except RecursionError:  # a crafted state nested deeper than Python's stack
        raise CheckpointError(f"{os.fspath(path)} is damaged: its state is nested too deeply") \
            from None


def _load_checkpoint(path: str | os.PathLike, kind: str) -> CheckpointState:
    """:func:`load_checkpoint` (which also turns a too-deep nesting into its error)."""
    directory = resolve_directory(path)
    found, json_files = verify_directory(directory)
    if found != kind:
        hint = ("; load it with a2c_jax.load_policy" if found == "policy" else
                "; export a policy from it with `a2c-jax export` or Trainer.export")
        raise CheckpointError(f"{directory} is {_KIND_NAMES[found]}, not {_KIND_NAMES[kind]}{hint}")
    if STATE not in json_files:
        raise CheckpointError(f"{directory} is damaged: it has no {STATE}")
    body = parse_json(json_files[STATE], f"{directory}/{STATE}")
    if not isinstance(body, dict) or set(body) != {"state", "arrays", "per_process", "processes"}:
        raise CheckpointError(f"{directory} is damaged: its {STATE} is malformed")
    arrays = _read_arrays(directory / ARRAYS, body["arrays"], directory)
    decoder = _Decoder(arrays, str(directory))
    state = decoder(body["state"], "state")
    if not isinstance(state, dict):
        raise CheckpointError(f"{directory} is damaged: its state is not a dict")
    if decoder.used != set(arrays):
        raise CheckpointError(f"{directory} is damaged: it holds arrays its state does not use")
    names = body["per_process"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CheckpointError(f"{directory} is damaged: its {STATE} is malformed")
    for name in names:
        file = process_file(name, jax.process_index())
        if file not in json_files:
            raise CheckpointError(f"{directory} has no {file} for process {jax.process_index()} "
                                  f"(written by {body['processes']} process(es))")
        state[name] = parse_json(json_files[file], f"{directory}/{file}")
    return CheckpointState(state, Path(path))
