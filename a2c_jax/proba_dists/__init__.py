"""Pure, jittable action distributions: categorical (``Discrete``) and diagonal Gaussian (``Box``)."""

from ._base import BaseProbaDist, DistParams
from ._categorical import CategoricalDist
from ._normal import NormalDist
from ._select import proba_dist_for_space

__all__ = ["BaseProbaDist", "CategoricalDist", "DistParams", "NormalDist", "proba_dist_for_space"]
