"""Utilities: parameter syncing, lazy metrics, checkpoints, logging, GIFs, schedules, TensorBoard."""

from ._checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ._diff import diff_transform, diff_transform_matrix
from ._dispatch import prefer_synchronous_cpu_dispatch
from ._evaluate import evaluate_greedy
from ._logging import enable_logging
from ._metrics import Metrics
from ._render import generate_gif, render_episode
from ._schedules import StepwiseLinearFunction
from ._sync import sync_shared_params
from ._tensorboard import read_event_file, read_scalars
from ._trees import check_same_tree, copy_tree

__all__ = [
    "CheckpointError",
    "Metrics",
    "StepwiseLinearFunction",
    "check_same_tree",
    "copy_tree",
    "diff_transform",
    "diff_transform_matrix",
    "enable_logging",
    "evaluate_greedy",
    "generate_gif",
    "load_checkpoint",
    "prefer_synchronous_cpu_dispatch",
    "read_event_file",
    "read_scalars",
    "render_episode",
    "save_checkpoint",
    "sync_shared_params",
]
