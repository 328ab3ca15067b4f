"""Policy regularizers, added to a policy objective's loss."""

from ._base import Regularizer
from ._entropy import EntropyRegularizer
from ._kl_div import KLDivRegularizer

__all__ = ["EntropyRegularizer", "KLDivRegularizer", "Regularizer"]
