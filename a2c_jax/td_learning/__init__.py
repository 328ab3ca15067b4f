"""TD learning: jit-compiled value-function updaters."""

from ._simple_td import SimpleTD, td_error_from_loss

__all__ = ["SimpleTD", "td_error_from_loss"]
