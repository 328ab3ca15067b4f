"""a2c_jax: advantage actor-critic in JAX and Haiku, in the style of coax.

Write plain Haiku functions; :class:`V` and :class:`Policy` turn them into function approximators
that :mod:`~a2c_jax.td_learning` and :mod:`~a2c_jax.policy_objectives` update with one fused,
jit-compiled step each. ``import a2c_jax as coax`` runs coax's A2C recipe unchanged.
"""

from . import (
    experience_replay,
    functional,
    policy_objectives,
    proba_dists,
    regularizers,
    reward_tracing,
    td_learning,
    utils,
    value_losses,
    value_transforms,
    wrappers,
)
from ._actor_critic import ActorCritic
from ._core import Policy, V
from ._export import load_policy

__version__ = "0.1.0"

__all__ = [
    "ActorCritic",
    "Policy",
    "V",
    "__version__",
    "experience_replay",
    "functional",
    "load_policy",
    "policy_objectives",
    "proba_dists",
    "regularizers",
    "reward_tracing",
    "td_learning",
    "utils",
    "value_losses",
    "value_transforms",
    "wrappers",
]
