"""Observation and reward normalisation of a training run (SB3's ``VecNormalize``), written once
for both engines.

:class:`Normalizer` holds the config's switches; its two pure methods are all an engine calls:

- :meth:`Normalizer.observations` before the policy acts: the raw observations normalised with
  the running statistics as they were at the start of the rollout (frozen during it);
- :meth:`Normalizer.rollout` at the start of the rollout's update: the rollout's observations
  (``S``, ``final_S``, ``S_next``) normalised with those same statistics (so the update sees
  exactly what the policy acted on), then every observation the policy acted on in the rollout
  (``S``, ``[T, E]`` of them) merged into the statistics; the rewards scaled by the running
  standard deviation of the discounted return (:func:`~a2c_jax.functional.normalize_rewards`).

The loop engine calls ``observations`` inside its one compiled act per vector step and ``rollout``
inside its one compiled update per rollout; the jitted engine calls them in its ``_env_step`` and
``_update``. Differences from SB3, on purpose: the observation statistics move once per rollout
(with all of its observations), not after every vector step, so that a run split over devices or
processes acts exactly as one process would without a collective per step (SB3 runs in one
process); merged in one batch or step by step, the statistics are the same (Chan et al.'s merge
is exact), only the policy acts during a rollout with those of its start. The reward statistics
are merged step by step, as SB3 does. Raw rewards still make the episode returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import gymnasium
import jax.numpy as jnp
import numpy as np

from ..functional import _normalize as nz
from ._presets import TrainConfig
from ._update import Rollout


class NormState(NamedTuple):
    """The normalisation state of a run (a pytree; an empty ``()`` for what is switched off).

    Attributes:
        obs: :class:`~a2c_jax.functional.RunningStats` of the observations (``[*obs_shape]``).
        ret: scalar :class:`~a2c_jax.functional.RunningStats` of the discounted returns.
        ret_acc: ``[E]``, each env's running discounted return (reset where an episode ended).
    """

    obs: Any
    ret: Any
    ret_acc: Any


class Normalizer:
    """The config's normalisation (``normalize_obs``, ``normalize_reward``, ``clip_obs``,
    ``clip_reward``, ``gamma``) as pure functions of a :class:`NormState`.

    Raises:
        ValueError: ``normalize_obs`` with an observation space that is not a ``Box`` (one-hot
            and binary observations are not normalised), or a clip bound that is not positive.
    """

    def __init__(self, config: TrainConfig, observation_space: gymnasium.Space) -> None:
        self.obs_on, self.reward_on = bool(config.normalize_obs), bool(config.normalize_reward)
        self.clip_obs, self.clip_reward = float(config.clip_obs), float(config.clip_reward)
        self.gamma = float(config.gamma)
        if self.obs_on and not isinstance(observation_space, gymnasium.spaces.Box):
            raise ValueError(f"normalize_obs needs a Box observation space, not {observation_space!r}")
        if (self.obs_on and not self.clip_obs > 0) or (self.reward_on and not self.clip_reward > 0):
            raise ValueError("clip_obs and clip_reward must be > 0")
        self.obs_shape = tuple(observation_space.shape or ())

    @property
    def active(self) -> bool:
        """Whether anything is normalised."""
        return self.obs_on or self.reward_on

    def init(self, num_envs: int) -> NormState:
        """Pure: the statistics of a fresh run over ``num_envs`` envs."""
        return NormState(
            obs=nz.init(self.obs_shape) if self.obs_on else (),
            ret=nz.init(()) if self.reward_on else (),
            ret_acc=jnp.zeros(num_envs, jnp.float32) if self.reward_on else ())

    def observations(self, obs_stats: Any, S: chex.Array) -> chex.Array:
        """Pure: ``S`` as the policy sees it (normalised with ``obs_stats``, frozen; unchanged
        when ``normalize_obs`` is off)."""
        if not self.obs_on:
            return S
        return nz.normalize(obs_stats, S, self.clip_obs)

    def rollout(self, norm: NormState, rollout: Rollout,
                gamma: Any = None) -> tuple[NormState, Rollout]:
        """Pure: the rollout as the update sees it, and the statistics after it (see the module
        docstring). ``rollout`` holds the raw observations and rewards, time-major; ``gamma``
        (a traced value in a sweep over ``gamma``) discounts the returns whose spread scales the
        rewards, the config's by default."""
        if self.obs_on:
            raw_S = rollout.S
            rollout = rollout._replace(S=self.observations(norm.obs, raw_S),
                                       final_S=self.observations(norm.obs, rollout.final_S),
                                       S_next=self.observations(norm.obs, rollout.S_next))
            norm = norm._replace(obs=nz.update(norm.obs, raw_S))
        if self.reward_on:
            ret, ret_acc, R = nz.normalize_rewards(
                norm.ret, norm.ret_acc, rollout.R, rollout.terminated | rollout.truncated,
                gamma=self.gamma if gamma is None else gamma, clip=self.clip_reward)
            norm = norm._replace(ret=ret, ret_acc=ret_acc)
            rollout = rollout._replace(R=R.astype(rollout.R.dtype))
        return norm, rollout

    def preprocessor(self, obs_stats: Any) -> Callable[[Any], chex.Array]:
        """A Policy's ``observation_preprocessor`` that applies ``obs_stats`` (frozen): raw
        observations in, what the trained networks take out (float32, normalised)."""
        return frozen_obs_preprocessor(obs_stats, self.clip_obs)


def frozen_obs_preprocessor(obs_stats: Any, clip: float) -> Callable[[Any], chex.Array]:
    """A pure ``observation_preprocessor``: a batch of raw observations cast to float32 and
    normalised with ``obs_stats = (mean, var, count)``, frozen, clipped to ``[-clip, clip]``."""
    stats = nz.RunningStats(*(jnp.asarray(x, jnp.float32) for x in obs_stats))
    return lambda S: nz.normalize(stats, jnp.asarray(S, jnp.float32), clip)


def stats_to_json(obs_stats: Any, clip: float) -> dict[str, Any]:
    """Frozen observation statistics as the plain data an exported policy holds: ``mean``,
    ``var`` (float32 arrays), ``count``, ``clip`` and ``epsilon``."""
    mean, var, count = (np.asarray(x) for x in obs_stats)
    return {"mean": mean, "var": var, "count": float(count), "clip": float(clip),
            "epsilon": nz.EPSILON}
