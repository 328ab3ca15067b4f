"""Averaging the parameters of modules that several function approximators share."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
import numpy as np


def _top_level(module_name: str) -> str:
    return module_name.split("/", 1)[0]


def module_signature(tree: Mapping[str, Any], name: str, *, scope: bool,
                     dtypes: bool) -> dict[str, Any]:
    """``{module: {parameter: shape or (shape, dtype)}}`` of the Haiku modules of ``tree`` named
    ``name`` (``scope=False``: that module only) or under the top-level scope ``name``
    (``scope=True``: every module whose name starts with ``name/``, and ``name`` itself); ``{}``
    when ``tree`` has none."""
    def leaf(x: Any) -> Any:
        return (np.shape(x), np.dtype(x.dtype)) if dtypes else np.shape(x)

    keys = [k for k in tree if _top_level(k) == name] if scope else [k for k in (name,) if k in tree]
    return {k: jax.tree.map(leaf, tree[k]) for k in keys}


def first_differing_module(trees: Sequence[Mapping[str, Any]], names: Iterable[str], *,
                           scope: bool, dtypes: bool) -> tuple[str, int] | None:
    """The first of ``names`` whose :func:`module_signature` differs between ``trees[0]`` and
    another tree, with that tree's index; ``None`` when they all agree.

    The one comparison of Haiku modules used by ``soft_update`` (module by module, shapes),
    ``ActorCritic`` (the shared top-level scopes, shapes and dtypes) and
    :func:`sync_shared_params` (a shared scope, shapes). A module present in one tree and not in
    another differs.
    """
    for name in names:
        ref = module_signature(trees[0], name, scope=scope, dtypes=dtypes)
        for i, tree in enumerate(trees[1:], 1):
            if module_signature(tree, name, scope=scope, dtypes=dtypes) != ref:
                return name, i
    return None


@functools.lru_cache(maxsize=256)
def _groups_for_keys(keys: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    owners: dict[str, list[int]] = defaultdict(list)
    for i, ks in enumerate(keys):
        for top in dict.fromkeys(_top_level(k) for k in ks):
            owners[top].append(i)
    return tuple((top, tuple(idx)) for top, idx in owners.items() if len(idx) > 1)


def _shared_groups(params: Sequence[dict]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """``(module, owner indices)`` for every top-level module held by two or more dicts."""
    return _groups_for_keys(tuple(tuple(p) for p in params))


def _module(p: dict, top: str) -> dict:
    return {k: v for k, v in p.items() if _top_level(k) == top}


def _check_group(modules: Sequence[dict], top: str, owners: Sequence[int]) -> None:
    found = first_differing_module(modules, (top,), scope=True, dtypes=False)
    if found is not None:
        i = found[1]
        ref, got = (module_signature(modules[j], top, scope=True, dtypes=False) for j in (0, i))
        raise ValueError(
            f"sync_shared_params: module {top!r} is in params {owners[0]} and {owners[i]} with "
            f"different parameters/shapes:\n  {ref}\n  {got}\nname-scope each head (e.g. "
            "hk.experimental.name_scope('pi')) so that only truly shared modules share a name")


@functools.partial(jax.jit, static_argnums=(1,))
def _average(shared: tuple[tuple[dict, ...], ...], groups: tuple) -> tuple[tuple[dict, ...], ...]:
    # one output per group; shapes and weights are static, so the checks run once, while tracing
    out = []
    for modules, (top, owners, w) in zip(shared, groups):
        _check_group(modules, top, owners)
        avg = jax.tree.map(lambda *xs: sum(wi * x for wi, x in zip(w, xs)).astype(xs[0].dtype),
                           *modules)
        # one output per owner: XLA gives every output its own buffer, and the updaters donate
        # their params, so no two dicts may share one
        out.append(tuple(avg for _ in owners))
    return tuple(out)


def sync_shared_params(*params: dict, weights: Sequence[float] | None = None) -> tuple[dict, ...]:
    """Averages the modules that two or more parameter dicts share.

    A *module* is a top-level Haiku scope: the part of a parameter key before the first ``/``
    (``'torso'`` in ``'torso/linear'``). Every module present in two or more of ``params`` is
    replaced, in each of them, by the weighted average over those that have it (weights
    renormalised over those). Other modules pass through unchanged. One jitted call.

    Args:
        *params: Haiku parameter dicts, e.g. ``pi.params, v.params``.
        weights: one non-negative weight per dict (default: equal).

    Returns:
        A tuple of parameter dicts, in the order given.

    Raises:
        ValueError: a shared module's parameter names or shapes differ between dicts (unlike
            coax, which broadcasts silently), or ``weights`` is malformed.

    Example::

        pi.params, v.params = sync_shared_params(pi.params, v.params)
    """
    if not params:
        raise ValueError("sync_shared_params needs at least one params dict")
    for i, p in enumerate(params):
        if not isinstance(p, dict):
            raise TypeError(f"params[{i}] must be a Haiku params dict, got {type(p).__name__}")
    if weights is None:
        w = np.ones(len(params))
    else:
        w = np.asarray(weights, np.float64)
        if w.shape != (len(params),) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"weights must be {len(params)} non-negative finite numbers; "
                             f"got {weights!r}")
    groups = []
    for top, owners in _shared_groups(params):
        total = w[list(owners)].sum()
        if not total > 0:
            raise ValueError(f"sync_shared_params: module {top!r} is shared by params "
                             f"{list(owners)}, whose weights are all zero")
        groups.append((top, owners, tuple(float(w[i] / total) for i in owners)))
    out = [dict(p) for p in params]
    if not groups:
        return tuple(out)
    shared = tuple(tuple(_module(params[i], top) for i in owners) for top, owners, _ in groups)
    averaged = _average(shared, tuple(groups))
    for (_, owners, _), copies in zip(groups, averaged):
        for i, avg in zip(owners, copies):
            out[i].update(avg)
    return tuple(out)
