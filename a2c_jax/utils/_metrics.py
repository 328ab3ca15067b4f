"""Metrics that stay on the device until someone reads them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def pack_metrics(metrics: dict[str, Any]) -> tuple[tuple[str, ...], jax.Array]:
    """Jittable: ``(keys, values)`` with the scalar metrics stacked into one float32 array."""
    keys = tuple(metrics)
    return keys, jnp.stack([jnp.asarray(metrics[k], jnp.float32) for k in keys])


class Metrics(Mapping):
    """A read-only ``dict[str, float]`` whose values are fetched from the device on first read.

    Updaters return their metrics as one stacked device array wrapped in this class: the hot path
    never waits for the device, and reading any value (``m['SimpleTD/loss']``, ``dict(m)``,
    printing) fetches all of them in one transfer. :meth:`a2c_jax.wrappers.TrainMonitor.record_metrics`
    keeps the device array and fetches once per episode.
    """

    __slots__ = ("_host", "_keys", "_values")

    def __init__(self, keys: tuple[str, ...], values: Any):
        self._keys = tuple(keys)
        self._values = values
        self._host: dict[str, float] | None = None

    @property
    def packed(self) -> tuple[tuple[str, ...], Any]:
        """``(keys, values)``: the names and the stacked (possibly not yet computed) values."""
        return self._keys, self._values

    def _fetch(self) -> dict[str, float]:
        if self._host is None:
            self._host = dict(zip(self._keys, np.asarray(self._values).tolist()))
        return self._host

    def __getitem__(self, key: str) -> float:
        return self._fetch()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __repr__(self) -> str:
        return f"Metrics({self._fetch()!r})"
