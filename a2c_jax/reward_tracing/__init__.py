"""Reward tracing: n-step and Monte Carlo returns, GAE, and the :class:`TransitionBatch`."""

from ._gae import compute_gae
from ._nstep import MonteCarlo, NStep, TracerNotReadyError
from ._transition import TransitionBatch

__all__ = ["MonteCarlo", "NStep", "TracerNotReadyError", "TransitionBatch", "compute_gae"]
