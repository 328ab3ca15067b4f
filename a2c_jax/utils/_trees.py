"""Small pytree helpers used across the package."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def check_same_tree(new: Any, old: Any, what: str) -> None:
    """Raises if ``new`` differs from ``old`` in tree structure or in any leaf's shape.

    Raises:
        TypeError: the tree structures differ.
        ValueError: a leaf's shape differs; the message names the leaf's path.
    """
    new_leaves, new_def = jax.tree_util.tree_flatten(new)
    old_leaves, old_def = jax.tree_util.tree_flatten(old)
    if new_def != old_def:  # type: ignore[operator]  # PyTreeDef has no stub for !=
        raise TypeError(f"{what}: tree structure differs from the current one:\n"
                        f"  expected {old_def}\n  got      {new_def}")
    for n, o in zip(new_leaves, old_leaves):
        if np.shape(n) != np.shape(o):
            break
    else:
        return
    for (path, n), o in zip(jax.tree_util.tree_flatten_with_path(new)[0], old_leaves):
        if np.shape(n) != np.shape(o):
            raise ValueError(f"{what}: leaf {jax.tree_util.keystr(path)} has shape {np.shape(n)}, "
                             f"expected {np.shape(o)}")


def conform_tree(new: Any, old: Any, what: str) -> Any:
    """``new`` checked against ``old`` (:func:`check_same_tree`) and its dtypes made ``old``'s.

    A floating leaf of another float dtype (float16, float64) is converted to the current dtype,
    so a model is never silently trained at another precision; a leaf of another *kind* (an
    integer or bool where a float is held, a float where an integer step count is held) raises.

    Raises:
        TypeError: the tree structures differ, or a leaf's dtype is of another kind.
        ValueError: a leaf's shape differs.
    """
    check_same_tree(new, old, what)
    new_leaves, treedef = jax.tree_util.tree_flatten(new)
    old_leaves = jax.tree_util.tree_leaves(old)
    out, changed = [], False
    for i, (n, o) in enumerate(zip(new_leaves, old_leaves)):
        n_dtype, o_dtype = _dtype(n), _dtype(o)
        if n_dtype == o_dtype or o_dtype is None or n_dtype is None:
            out.append(n)
            continue
        if n_dtype.kind != o_dtype.kind:
            path = jax.tree_util.keystr(jax.tree_util.tree_flatten_with_path(new)[0][i][0])
            raise TypeError(f"{what}: leaf {path} has dtype {n_dtype}, expected {o_dtype}")
        out.append(jnp.asarray(n, o_dtype))
        changed = True
    return jax.tree_util.tree_unflatten(treedef, out) if changed else new


def tree_signature(tree: Any) -> tuple | None:
    """``(treedef, ((shape, dtype), ...))`` of a tree of arrays (``None`` if a leaf is not an
    array): two trees with equal signatures pass :func:`conform_tree` unchanged, so a setter can
    compare signatures (cheap) before falling back to the full check."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    sig = []
    for x in leaves:
        shape = getattr(x, "shape", None)
        if shape is None:
            return None
        sig.append((tuple(shape), x.dtype))
    return treedef, tuple(sig)


def _dtype(x: Any) -> np.dtype | None:
    if x is None:
        return None
    dtype = getattr(x, "dtype", None)
    return np.dtype(dtype) if dtype is not None else np.asarray(x).dtype


def copy_tree(tree: Any) -> Any:
    """A deep copy of the arrays of ``tree`` (so that donating one copy leaves the other intact)."""
    return jax.tree.map(lambda x: x.copy() if hasattr(x, "copy") else x, tree)


# ---- state dicts: a pytree as plain nested dicts, and back into a template's structure ----------


def _entry_name(key: Any) -> str:
    """The state-dict name of one step of a pytree path: a dict key, a NamedTuple field, an index."""
    for attr in ("key", "name", "idx"):  # DictKey / FlattenedIndexKey, GetAttrKey, SequenceKey
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _entry_path(names: tuple[str, ...]) -> str:
    return "".join(f"[{n!r}]" for n in names)


def tree_to_state_dict(tree: Any) -> Any:
    """``tree`` as plain nested dicts, keyed by strings, with ``tree``'s leaves (not copied).

    Every leaf is placed at its pytree path: a dict's entry under its key, a ``NamedTuple``'s
    (e.g. an optax state's) under its field name, a tuple's or list's under its index as a
    string (``"0"``, ``"1"``, ...). Subtrees without leaves (optax's ``EmptyState``, ``None``,
    a masked-out entry) leave nothing. A tree that is a single leaf is returned as it is.
    :func:`tree_from_state_dict` puts the leaves back into a template of the original structure.

    Raises:
        ValueError: two paths of ``tree`` map to the same names (e.g. keys ``0`` and ``"0"``).
    """
    with_paths = jax.tree_util.tree_flatten_with_path(tree)[0]
    if len(with_paths) == 1 and not with_paths[0][0]:
        return with_paths[0][1]
    out: dict[str, Any] = {}
    for path, leaf in with_paths:
        names = tuple(_entry_name(k) for k in path)
        node = out
        for i, name in enumerate(names[:-1]):
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                raise ValueError(f"state dict: entry {_entry_path(names[:i + 1])} is both a leaf and "
                                 "a subtree")
        if names[-1] in node:
            raise ValueError(f"state dict: two entries are named {_entry_path(names)}")
        node[names[-1]] = leaf
    return out


def _state_dict_leaves(d: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # the paths of the non-dict values of nested dicts (empty dicts hold nothing)
    if not isinstance(d, dict):
        return [prefix]
    return [p for k, v in d.items() for p in _state_dict_leaves(v, (*prefix, str(k)))]


_SCALAR_KINDS = {bool: "b", int: "iu", float: "f"}


def _load_leaf(new: Any, old: Any, where: str) -> Any:
    """``new`` checked against the current leaf ``old`` (shape and dtype exactly), as ``old``'s kind
    of array. A Python ``bool``/``int``/``float`` stands for a 0-d array of a matching dtype kind."""
    o_shape, o_dtype = np.shape(old), _dtype(old)
    if type(new) in _SCALAR_KINDS:
        if o_shape != () or o_dtype is None or o_dtype.kind not in _SCALAR_KINDS[type(new)]:
            raise TypeError(f"{where}: got a Python {type(new).__name__}, expected an array of "
                            f"shape {o_shape} and dtype {o_dtype}")
        try:
            new = np.asarray(new, o_dtype)
        except OverflowError:
            raise ValueError(f"{where}: {new} does not fit dtype {o_dtype}") from None
    elif not (hasattr(new, "shape") and hasattr(new, "dtype")):
        raise TypeError(f"{where}: expected an array of shape {o_shape} and dtype {o_dtype}, got "
                        f"{type(new).__name__}")
    if tuple(new.shape) != tuple(o_shape):
        raise ValueError(f"{where}: shape {tuple(new.shape)}, expected {tuple(o_shape)} (no "
                         "broadcasting)")
    if o_dtype is not None and np.dtype(new.dtype) != o_dtype:
        raise TypeError(f"{where}: dtype {np.dtype(new.dtype)}, expected {o_dtype}")
    if type(old) in _SCALAR_KINDS:  # a Python number in the state stays one
        return type(old)(new.item())
    if not isinstance(old, jax.Array):
        return np.asarray(new)
    if getattr(old, "weak_type", False) and o_shape == ():
        # keep a weakly typed scalar weak: the compiled step's input types then match exactly
        return jax.lax.full_like(old, new)
    if isinstance(new, jax.Array) and not getattr(new, "weak_type", False):
        return new
    return jnp.asarray(new)


def tree_from_state_dict(template: Any, state: Any, what: str) -> Any:
    """The inverse of :func:`tree_to_state_dict`: ``state``'s leaves in ``template``'s structure.

    Every leaf of ``template`` must be present in ``state`` at its path, with the same shape and
    dtype (exactly: nothing is broadcast or cast); ``state`` must hold nothing else. NumPy arrays
    and Python scalars are put on the device as ``jax.Array`` where ``template`` holds one.

    Raises:
        ValueError: an entry is missing or unexpected, or a leaf's shape differs; the message
            names the entry.
        TypeError: an entry is not a dict where ``template`` has a subtree, not an array where it
            has a leaf, or of another dtype.
    """
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    expected, leaves = set(), []
    for path, old in with_paths:
        names = tuple(_entry_name(k) for k in path)
        expected.add(names)
        node = state
        for i, name in enumerate(names):
            if not isinstance(node, dict):
                raise TypeError(f"{what}{_entry_path(names[:i])}: expected a dict, got "
                                f"{type(node).__name__}")
            if name not in node:
                raise ValueError(f"{what}{_entry_path(names[:i + 1])}: missing")
            node = node[name]
        leaves.append(_load_leaf(node, old, f"{what}{_entry_path(names)}"))
    for names in _state_dict_leaves(state):
        if names not in expected:
            raise ValueError(f"{what}{_entry_path(names)}: unexpected entry (the current state has "
                             "none there)")
    return jax.tree_util.tree_unflatten(treedef, leaves)


def check_state_dict_keys(state: Any, keys: tuple[str, ...], what: str) -> None:
    """Raises unless ``state`` is a dict with exactly the top-level ``keys``."""
    if not isinstance(state, dict):
        raise TypeError(f"{what}: expected a dict with keys {list(keys)}, got {type(state).__name__}")
    missing = [k for k in keys if k not in state]
    extra = [k for k in state if k not in keys]
    if missing or extra:
        raise ValueError(f"{what}: expected the keys {list(keys)}; "
                         + (f"missing {missing}" if missing else "")
                         + ("; " if missing and extra else "")
                         + (f"unexpected {extra}" if extra else ""))
