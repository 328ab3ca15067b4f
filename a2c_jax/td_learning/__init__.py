"""TD learning: jit-compiled value-function updaters."""

from ._simple_td import SimpleTD

__all__ = ["SimpleTD"]
