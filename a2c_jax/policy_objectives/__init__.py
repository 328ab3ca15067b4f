"""Policy objectives: jit-compiled policy-gradient updaters."""

from ._base import PolicyObjective
from ._ppo_clip import PPOClip
from ._vanilla_pg import VanillaPG

__all__ = ["PPOClip", "PolicyObjective", "VanillaPG"]
