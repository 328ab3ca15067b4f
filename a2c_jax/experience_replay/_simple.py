"""A fixed-capacity ring buffer of transitions over preallocated arrays."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from ..reward_tracing import TransitionBatch


class SimpleReplayBuffer:
    """Stores up to ``capacity`` transitions; when full, each new one overwrites the oldest.

    Storage is one preallocated numpy array per :class:`TransitionBatch` field (allocated on the
    first :meth:`add`, from that batch's shapes and dtypes), written as a ring. Sampling draws a
    batch of *distinct* stored transitions, uniformly, from the buffer's own
    ``numpy.random.Generator``: the same ``random_seed`` and the same adds give the same samples,
    and no global random state is touched (coax's buffer reseeds Python's ``random``).

    Args:
        capacity: the maximum number of transitions, ``>= 1``.
        random_seed: seeds sampling (``None``: fresh entropy).
    """

    def __init__(self, capacity: int, random_seed: int | None = None) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)):
            raise TypeError(f"capacity must be an int >= 1, got {capacity!r}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._capacity = int(capacity)
        self._rng = np.random.default_rng(random_seed)
        # allocated on the first add: one array per leaf, the leaves' names and shapes
        self._treedef: Any = None
        self._storage: list[np.ndarray] = []
        self._names: list[str] = []
        self._shapes: list[tuple[int, ...]] = []
        self._layouts: dict[int, list[tuple[tuple[int, ...], np.dtype]]] = {}
        self._next = 0  # the slot the next transition goes to
        self._size = 0

    @property
    def capacity(self) -> int:
        """The maximum number of stored transitions."""
        return self._capacity

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def clear(self) -> None:
        """Forgets every stored transition (the preallocated arrays are kept)."""
        self._next = self._size = 0

    def _allocate(self, leaves: list[np.ndarray], transition_batch: TransitionBatch) -> None:
        paths, self._treedef = jax.tree_util.tree_flatten_with_path(transition_batch)
        self._names = [jax.tree_util.keystr(path)[1:] for path, _ in paths]  # 'S', "S['pos']"
        self._storage = [np.zeros((self._capacity, *x.shape[1:]), x.dtype) for x in leaves]
        self._shapes = [x.shape[1:] for x in leaves]
        self._layouts = {}

    def _layout(self, n: int) -> list[tuple[tuple[int, ...], np.dtype]]:
        """``[(shape, dtype)]`` of every leaf of a conforming batch of ``n``, cached per ``n``."""
        layout = self._layouts.get(n)
        if layout is None:
            layout = [((n, *shape), store.dtype) for shape, store in zip(self._shapes, self._storage)]
            if len(self._layouts) < 16:
                self._layouts[n] = layout
        return layout

    def _check_leaves(self, leaves: list[np.ndarray], transition_batch: TransitionBatch) -> None:
        n = leaves[0].shape[0] if leaves and leaves[0].ndim else 0
        if any(x.ndim == 0 or x.shape[0] != n for x in leaves):
            raise ValueError("every field of the TransitionBatch needs the same leading batch size; "
                             f"got {transition_batch!r}")
        if self._treedef is not None:
            for x, shape, name in zip(leaves, self._shapes, self._names):
                if x.shape[1:] != shape:
                    raise ValueError(f"field {name} has per-transition shape {x.shape[1:]}, the "
                                     f"buffer stores {shape}: {transition_batch!r}")

    def _conform(self, leaves: list[np.ndarray], transition_batch: TransitionBatch) -> list[np.ndarray]:
        """The leaves in the stored dtypes; raises on a shape mismatch or a lossy conversion."""
        self._check_leaves(leaves, transition_batch)
        return [x if x.dtype == store.dtype else _convert(x, store.dtype, name)
                for x, store, name in zip(leaves, self._storage, self._names)]

    def add(self, transition_batch: TransitionBatch) -> None:
        """Appends every transition of a batch (any batch size), overwriting the oldest when full.

        The first add fixes each field's per-transition shape and dtype. A later batch in another
        dtype is converted only where that keeps its values: any cast numpy calls ``safe``; ints
        into a narrower int (e.g. gymnasium's int64 actions into int32) when every value fits;
        ints or floats into a narrower float (e.g. float64 observations into float32), which may
        round but must not overflow a finite value to ``inf``. Anything else (floats into ints,
        numbers into bools, complex into reals) raises rather than truncate.

        Raises:
            TypeError: not a ``TransitionBatch``; its structure differs from what is stored; or a
                field's dtype cannot be converted to the stored one without changing values.
            ValueError: a field's shape differs from what is stored, batch sizes disagree, or a
                value does not fit the stored dtype (out of an int's range, or finite -> inf).

        A failed add stores nothing.
        """
        if not isinstance(transition_batch, TransitionBatch):
            raise TypeError(f"expected a TransitionBatch, got {type(transition_batch).__name__}")
        leaves, treedef = jax.tree_util.tree_flatten(transition_batch)
        leaves = [x if isinstance(x, np.ndarray) else np.asarray(x) for x in leaves]
        if self._treedef is None:
            self._check_leaves(leaves, transition_batch)
            self._allocate(leaves, transition_batch)
        elif treedef != self._treedef:
            raise TypeError(f"this batch's structure differs from the stored one: {treedef} vs "
                            f"{self._treedef}")
        n = leaves[0].shape[0] if leaves[0].ndim else -1
        # one comparison checks every shape and dtype; the slow path names what differs
        if [(x.shape, x.dtype) for x in leaves] != self._layout(n):
            leaves = self._conform(leaves, transition_batch)
        if n > self._capacity:  # only the newest `capacity` would survive anyway
            leaves = [x[-self._capacity:] for x in leaves]
            self._next = (self._next + n - self._capacity) % self._capacity
            n = self._capacity
        if n == 1:
            for x, store in zip(leaves, self._storage):
                store[self._next] = x[0]
        else:
            slots = (self._next + np.arange(n)) % self._capacity
            for x, store in zip(leaves, self._storage):
                store[slots] = x
        self._next = (self._next + n) % self._capacity
        self._size = min(self._size + n, self._capacity)

    def sample(self, batch_size: int = 32) -> TransitionBatch:
        """``batch_size`` distinct stored transitions drawn uniformly at random.

        Raises:
            ValueError: ``batch_size < 1`` or more than are stored.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"batch_size must be an int, got {batch_size!r}")
        if not 1 <= batch_size <= self._size:
            raise ValueError(f"cannot sample {batch_size} transitions: the buffer holds {self._size}")
        slots = self._rng.choice(self._size, size=batch_size, replace=False)
        return jax.tree_util.tree_unflatten(self._treedef, [s[slots] for s in self._storage])

    def oldest_first(self) -> TransitionBatch:
        """Every stored transition, oldest first (handy for tests and inspection)."""
        if self._size == 0:
            raise ValueError("the buffer is empty")
        slots = (self._next - self._size + np.arange(self._size)) % self._capacity
        return jax.tree_util.tree_unflatten(self._treedef, [s[slots] for s in self._storage])

    def __repr__(self) -> str:
        return f"SimpleReplayBuffer(capacity={self._capacity}, size={self._size})"


def _convert(x: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    """``x`` as ``dtype`` where that keeps its values (see :meth:`SimpleReplayBuffer.add`)."""
    if np.can_cast(x.dtype, dtype, "safe"):
        return x.astype(dtype)
    src, dst = x.dtype.kind, dtype.kind
    if src in "biu" and dst in "iu":
        info = np.iinfo(dtype)
        if x.size and (int(x.min()) < info.min or int(x.max()) > info.max):
            raise ValueError(f"field {name} holds {x.dtype} values in [{x.min()}, {x.max()}], "
                             f"outside the range of the buffer's {dtype}")
        return x.astype(dtype)
    if (src in "iuf" and dst == "f") or (src in "iufc" and dst == "c"):
        with np.errstate(over="ignore"):  # an overflow raises below, naming the field
            y = x.astype(dtype)
        overflow = np.isfinite(x) & ~np.isfinite(y)
        if overflow.any():
            raise ValueError(f"field {name}: {x.dtype} value {x[overflow][0]} overflows the "
                             f"buffer's {dtype}")
        return y
    raise TypeError(f"field {name} is {x.dtype}, the buffer stores {dtype}: converting would change "
                    f"the values (e.g. floats into ints truncate); convert it explicitly")
