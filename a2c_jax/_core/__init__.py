"""Function approximators: :class:`V` and :class:`Policy`."""

from ._base import BaseFunc
from ._policy import Policy
from ._v import V

__all__ = ["BaseFunc", "Policy", "V"]
