"""Environment wrappers."""

from ._train_monitor import TrainMonitor

__all__ = ["TrainMonitor"]
