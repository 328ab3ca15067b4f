"""Small pytree helpers used across the package."""

from __future__ import annotations

from typing import Any

import jax
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


def copy_tree(tree: Any) -> Any:
    """A deep copy of the arrays of ``tree`` (so that donating one copy leaves the other intact)."""
    return jax.tree.map(lambda x: x.copy() if hasattr(x, "copy") else x, tree)
