"""Reading TensorBoard scalars back, without TensorBoard installed."""

from __future__ import annotations

import os
import struct
from pathlib import Path


def read_event_file(path: str | os.PathLike) -> list[tuple[str, int, float]]:
    """``(tag, step, value)`` of every scalar in one TensorBoard event file, in file order.

    Event files are TFRecord streams: each record is an 8-byte little-endian length, a 4-byte
    length checksum, the serialized ``Event`` protobuf and a 4-byte data checksum (not verified
    here). Parsed with tensorboardX's protobuf classes.

    Raises:
        ValueError: a record runs past the end of the file (a truncated or foreign file).
    """
    from tensorboardX.proto import event_pb2

    data = Path(path).read_bytes()
    out, pos = [], 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError(f"{path}: truncated record header at byte {pos}")
        (length,) = struct.unpack("<Q", data[pos: pos + 8])
        end = pos + 12 + length
        if end + 4 > len(data):
            raise ValueError(f"{path}: record at byte {pos} runs past the end of the file")
        event = event_pb2.Event.FromString(data[pos + 12: end])
        pos = end + 4
        for v in event.summary.value:
            if v.HasField("simple_value"):
                out.append((v.tag, int(event.step), float(v.simple_value)))
    return out


def read_scalars(logdir: str | os.PathLike) -> dict[str, tuple[list[int], list[float]]]:
    """Every scalar under ``logdir`` (all event files, recursively): ``{tag: (steps, values)}``.

    Sorted by step within each tag, e.g. to plot what a :class:`~a2c_jax.wrappers.TrainMonitor`
    or ``a2c-jax train`` wrote::

        steps, returns = read_scalars("data/tensorboard/ppo")["episode/return"]
    """
    by_tag: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(Path(logdir).rglob("*tfevents*")):
        for tag, step, value in read_event_file(path):
            by_tag.setdefault(tag, []).append((step, value))
    out = {}
    for tag, points in by_tag.items():
        points.sort(key=lambda p: p[0])
        out[tag] = ([s for s, _ in points], [v for _, v in points])
    return out
