"""Policy regularizers, added to a policy objective's loss."""

from ._entropy import EntropyRegularizer, Regularizer

__all__ = ["EntropyRegularizer", "Regularizer"]
