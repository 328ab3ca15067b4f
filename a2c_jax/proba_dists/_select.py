"""Picks the default distribution for an action space."""

from __future__ import annotations

import gymnasium

from ._base import BaseProbaDist
from ._categorical import CategoricalDist
from ._normal import NormalDist


def proba_dist_for_space(space: gymnasium.Space) -> BaseProbaDist:
    """Categorical for ``Discrete``, diagonal Gaussian for ``Box``; ``TypeError`` for anything else."""
    if isinstance(space, gymnasium.spaces.Discrete):
        return CategoricalDist(space)
    if isinstance(space, gymnasium.spaces.Box):
        return NormalDist(space)
    raise TypeError(
        f"unsupported action space {space!r} ({type(space).__name__}): a2c_jax's Policy supports "
        "gymnasium.spaces.Discrete and gymnasium.spaces.Box; pass proba_dist=... for others"
    )
