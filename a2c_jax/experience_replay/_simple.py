"""A fixed-capacity ring buffer of transitions over preallocated arrays."""

from __future__ import annotations

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

    def __init__(self, capacity: int, random_seed: int | None = None):
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)):
            raise TypeError(f"capacity must be an int >= 1, got {capacity!r}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._capacity = int(capacity)
        self._rng = np.random.default_rng(random_seed)
        self._storage: list[np.ndarray] | None = None
        self._treedef = None
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

    def _allocate(self, leaves: list[np.ndarray], treedef) -> None:
        self._treedef = treedef
        self._storage = [np.zeros((self._capacity, *x.shape[1:]), x.dtype) for x in leaves]
        self._shapes = [x.shape[1:] for x in leaves]

    def _check_leaves(self, leaves: list[np.ndarray], transition_batch) -> None:
        n = leaves[0].shape[0] if leaves and leaves[0].ndim else 0
        if any(x.ndim == 0 or x.shape[0] != n for x in leaves):
            raise ValueError("every field of the TransitionBatch needs the same leading batch size; "
                             f"got {transition_batch!r}")
        if self._storage is not None:
            for x, shape in zip(leaves, self._shapes):
                if x.shape[1:] != shape:
                    raise ValueError(f"a field has per-transition shape {x.shape[1:]}, the buffer "
                                     f"stores {shape}: {transition_batch!r}")

    def add(self, transition_batch: TransitionBatch) -> None:
        """Appends every transition of a batch (any batch size), overwriting the oldest when full.

        Raises:
            TypeError: not a ``TransitionBatch``, or its structure differs from what is stored.
            ValueError: a field's shape differs from what is stored, or batch sizes disagree.
        """
        if not isinstance(transition_batch, TransitionBatch):
            raise TypeError(f"expected a TransitionBatch, got {type(transition_batch).__name__}")
        leaves, treedef = jax.tree_util.tree_flatten(transition_batch)
        leaves = [x if isinstance(x, np.ndarray) else np.asarray(x) for x in leaves]
        if self._storage is None:
            self._check_leaves(leaves, transition_batch)
            self._allocate(leaves, treedef)
        elif treedef != self._treedef:
            raise TypeError(f"this batch's structure differs from the stored one: {treedef} vs "
                            f"{self._treedef}")
        n = leaves[0].shape[0] if leaves[0].ndim else -1
        if [x.shape for x in leaves] != [(n, *shape) for shape in self._shapes]:
            self._check_leaves(leaves, transition_batch)  # raises, naming the mismatch
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
