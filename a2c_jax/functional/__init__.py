"""The pure core: losses, targets and advantages as free functions over explicit arrays.

rlax's shape: each function is pure and jittable (no ``jit`` inside), checks the ranks and shapes
of its arguments when traced, and takes rlax's time-suffixed names (``logp_t``, ``adv_t``,
``v_tm1``, ``r_t``, ``discount_t``, ``w_t``). The updaters are thin facades over them:
:class:`~a2c_jax.policy_objectives.VanillaPG` minimises :func:`policy_gradient_loss`,
:class:`~a2c_jax.policy_objectives.PPOClip` :func:`clipped_surrogate_loss`, the regularizers add
:func:`entropy_loss` and :func:`kl_divergence_loss`, :class:`~a2c_jax.td_learning.SimpleTD`
regresses with :func:`value_loss` onto :func:`n_step_target` and hands on
:func:`td_error_from_loss`, and :func:`~a2c_jax.reward_tracing.compute_gae` runs
:func:`generalized_advantage_estimation`'s recursion. :class:`RunningStats` with
:func:`init_running_stats`, :func:`update_running_stats`, :func:`normalize` and
:func:`normalize_rewards` are SB3's ``VecNormalize`` statistics, which both training engines
update and apply (``normalize_obs``/``normalize_reward``; see docs/normalization.md).

Example, an A2C loss written by hand::

    from a2c_jax import functional as af

    logp_t = pi.proba_dist.log_proba(dist_params, A)
    loss = (af.policy_gradient_loss(logp_t, adv_t, W)
            + beta * af.entropy_loss(pi.proba_dist, dist_params, W)
            + vf_coef * af.value_loss(v_t, af.n_step_target(Rn, In, v_next), huber, W))
"""

from ._losses import (
    clip_fraction,
    clipped_surrogate_loss,
    entropy_loss,
    importance_ratio,
    kl_divergence,
    kl_divergence_loss,
    policy_gradient_loss,
    td_error_from_loss,
    value_loss,
)
from ._normalize import RunningStats, normalize, normalize_rewards, scale
from ._normalize import init as init_running_stats
from ._normalize import merge as merge_running_stats
from ._normalize import update as update_running_stats
from ._returns import generalized_advantage_estimation, n_step_target

__all__ = [
    "RunningStats",
    "clip_fraction",
    "clipped_surrogate_loss",
    "entropy_loss",
    "generalized_advantage_estimation",
    "importance_ratio",
    "init_running_stats",
    "kl_divergence",
    "kl_divergence_loss",
    "merge_running_stats",
    "n_step_target",
    "normalize",
    "normalize_rewards",
    "policy_gradient_loss",
    "scale",
    "td_error_from_loss",
    "update_running_stats",
    "value_loss",
]
