"""Utilities: parameter syncing, lazy metrics, checkpoints, logging."""

from ._checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ._dispatch import prefer_synchronous_cpu_dispatch
from ._evaluate import evaluate_greedy
from ._logging import enable_logging
from ._metrics import Metrics
from ._sync import sync_shared_params
from ._trees import check_same_tree, copy_tree

__all__ = [
    "CheckpointError",
    "Metrics",
    "check_same_tree",
    "copy_tree",
    "enable_logging",
    "evaluate_greedy",
    "load_checkpoint",
    "prefer_synchronous_cpu_dispatch",
    "save_checkpoint",
    "sync_shared_params",
]
