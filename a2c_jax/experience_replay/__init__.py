"""Experience replay: a fixed-capacity ring buffer of transitions."""

from ._simple import SimpleReplayBuffer

__all__ = ["SimpleReplayBuffer"]
