"""Metrics that stay on the device until someone reads them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jax


class Metrics(Mapping):
    """A read-only ``dict[str, float]`` whose values are fetched from the device on first read.

    Updaters return their metrics as device scalars wrapped in this class: the hot path never waits
    for the device, and reading any value (``m['SimpleTD/loss']``, ``dict(m)``, printing) fetches
    all of them in one transfer. :meth:`a2c_jax.wrappers.TrainMonitor.record_metrics` keeps the
    device values and fetches them once per episode.
    """

    __slots__ = ("_device", "_host")

    def __init__(self, device_values: dict[str, Any]):
        self._device = device_values
        self._host: dict[str, float] | None = None

    @property
    def device_values(self) -> dict[str, Any]:
        """The underlying (possibly not yet computed) device scalars; reading them does not sync."""
        return self._device

    def _fetch(self) -> dict[str, float]:
        if self._host is None:
            self._host = {k: float(v) for k, v in jax.device_get(self._device).items()}
        return self._host

    def __getitem__(self, key: str) -> float:
        return self._fetch()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._device)

    def __len__(self) -> int:
        return len(self._device)

    def __contains__(self, key: object) -> bool:
        return key in self._device

    def __repr__(self) -> str:
        return f"Metrics({self._fetch()!r})"
