"""Utilities: parameter syncing, lazy metrics, logging."""

from ._logging import enable_logging
from ._metrics import Metrics
from ._sync import sync_shared_params
from ._trees import check_same_tree, copy_tree

__all__ = ["Metrics", "check_same_tree", "copy_tree", "enable_logging", "sync_shared_params"]
