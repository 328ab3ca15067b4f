"""Value transforms: learn ``v`` in a squashed space (coax's ``value_transforms``)."""

from ._base import LogTransform, ValueTransform

__all__ = ["LogTransform", "ValueTransform"]
