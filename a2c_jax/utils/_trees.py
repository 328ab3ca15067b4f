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
    if new_def != old_def:
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
        if n_dtype == o_dtype or o_dtype is None:
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
    compare signatures (a few µs) before falling back to the full check."""
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
