"""Reward tracing: n-step and Monte Carlo returns, and the :class:`TransitionBatch` they produce."""

from ._nstep import MonteCarlo, NStep, TracerNotReadyError
from ._transition import TransitionBatch

__all__ = ["MonteCarlo", "NStep", "TracerNotReadyError", "TransitionBatch"]
