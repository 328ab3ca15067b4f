"""TD learning: jit-compiled value-function updaters."""

from ..functional import td_error_from_loss  # its home is a2c_jax.functional; kept here for coax users
from ._simple_td import SimpleTD

__all__ = ["SimpleTD", "td_error_from_loss"]
