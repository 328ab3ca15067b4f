"""Is a tree of arrays held by one object only? Decides whether an update may donate its buffers.

The updaters' jitted steps donate the parameters and optimizer state they replace, so XLA reuses
those buffers in place. Donation deletes the old arrays, which is only safe when nothing else
refers to them: not a user's ``old = v.params``, not a second approximator given the same dict
(``v_targ.params = v.params``), not a shallow copy. Those references are Python references, so
CPython's reference counts tell: when the owner's attribute is the only reference to the tree's
root and every container or array in it is referenced by its parent only, donation is safe.

The count a lone reference shows depends on the interpreter's calling conventions, so it is
measured once, on a fresh tree, by the very functions that check (``_calibrate``); should the
measurement not tell an extra reference apart, donation is switched off (always safe, slower).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import jax

_CONTAINERS = (dict, list, tuple)


def _children_exclusive(node: Any, base: int) -> bool:
    for child in (node.values() if isinstance(node, dict) else node):
        if isinstance(child, _CONTAINERS):
            if not child:  # empty (e.g. optax's EmptyState): nothing to donate
                continue
            if sys.getrefcount(child) > base or not _children_exclusive(child, base):
                return False
        elif isinstance(child, jax.Array) and sys.getrefcount(child) > base:
            return False
    return True


def _held_once(owner: Any, attr: str, root_base: int, base: int) -> bool:
    root = getattr(owner, attr)
    if isinstance(root, jax.Array):
        return sys.getrefcount(root) <= root_base
    if not isinstance(root, _CONTAINERS):
        return True
    return sys.getrefcount(root) <= root_base and _children_exclusive(root, base)


class _Holder:
    tree: dict


def _fresh_tree() -> dict:
    return {"a": {"w": {"x": {}}, "b": [{"y": {}}]}, "c": ({"z": {}},)}


def _smallest(check: Callable[[int], bool], limit: int = 12) -> int | None:
    for k in range(1, limit):
        if check(k):
            return k
    return None


def _calibrate() -> tuple[int, int] | None:
    holder = _Holder()
    holder.tree = _fresh_tree()
    base = _smallest(lambda k: _children_exclusive(holder.tree, k))
    root_base = _smallest(lambda k: _held_once(holder, "tree", k, 1_000))
    if base is None or root_base is None:
        return None
    # the measured counts must tell an extra reference apart, at the root and deep inside
    extra_root = holder.tree  # noqa: F841 (held on purpose)
    if _held_once(holder, "tree", root_base, base):
        return None
    del extra_root
    extra_inner = holder.tree["a"]["b"][0]  # noqa: F841
    if _held_once(holder, "tree", root_base, base):
        return None
    del extra_inner
    if not _held_once(holder, "tree", root_base, base):
        return None
    return root_base, base


_BASES = _calibrate()


def held_once(owner: Any, attr: str) -> bool:
    """True when ``owner.<attr>`` is the only reference to that tree and to everything in it.

    Containers (dicts, lists, tuples) and ``jax.Array`` leaves are checked; other leaves (numpy
    arrays, Python scalars) are never donated, so they do not matter. False when the interpreter's
    reference counts could not be calibrated (then nothing is donated).
    """
    if _BASES is None:
        return False
    root_base, base = _BASES
    return _held_once(owner, attr, root_base, base)
