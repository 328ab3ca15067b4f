"""Environment wrappers."""

from ._frame_stacking import FrameStacking
from ._train_monitor import TrainMonitor

__all__ = ["FrameStacking", "TrainMonitor"]
