"""Running statistics for observation and reward normalisation, as pure functions.

The normalisation is Stable-Baselines3's ``VecNormalize``: a running mean and variance per
feature, merged batch by batch with the parallel-variance formula of Chan, Golub and LeVeque
("Updating formulae and a pairwise algorithm for computing sample variances", 1979), starting
from mean 0, variance 1 and a count of ``1e-4``;

    normalised x = clip((x - mean) / sqrt(var + eps), -clip, clip),     eps = 1e-8.

Rewards are divided by the running standard deviation of each env's discounted return
``ret_t = gamma * ret_{t-1} + r_t`` (reset to 0 after an episode ends), not centred.

The merge is exact (up to float rounding) in any grouping: merging two batches one after the
other gives the mean and variance of their union, so statistics merged from the whole batch of
every device's envs equal those of one device seeing them all.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

#: added to the variance under the square root (SB3's ``epsilon``)
EPSILON = 1e-8
#: the count of the initial statistics (mean 0, variance 1): a prior worth 1e-4 samples (SB3's)
INITIAL_COUNT = 1e-4


class RunningStats(NamedTuple):
    """The running mean and variance of everything merged so far (a pytree).

    Attributes:
        mean: ``[*shape]``, the mean per feature.
        var: ``[*shape]``, the (population) variance per feature.
        count: ``[]``, the number of samples merged, plus the prior's :data:`INITIAL_COUNT`.
    """

    mean: chex.Array
    var: chex.Array
    count: chex.Array


def init(shape: tuple[int, ...] = (), dtype: jnp.dtype = jnp.float32) -> RunningStats:
    """Pure: the statistics before any sample: mean 0, variance 1, count :data:`INITIAL_COUNT`.

    Args:
        shape: the shape of one sample (``()`` for a scalar such as a return).
        dtype: the floating dtype of the statistics.
    """
    return RunningStats(jnp.zeros(shape, dtype), jnp.ones(shape, dtype),
                        jnp.asarray(INITIAL_COUNT, dtype))


def merge(stats: RunningStats, batch_mean: chex.Array, batch_var: chex.Array,
          batch_count: chex.Array | float) -> RunningStats:
    """Pure: ``stats`` merged with a batch given by its moments (Chan et al.'s pairwise update).

    With ``d = batch_mean - mean`` and ``n = count + batch_count``:
    ``mean' = mean + d * batch_count / n`` and
    ``var' = (var * count + batch_var * batch_count + d² * count * batch_count / n) / n``.

    Args:
        stats: the running statistics, ``mean``/``var`` ``[*shape]``.
        batch_mean: the batch's mean, ``[*shape]``.
        batch_var: the batch's population variance, ``[*shape]``.
        batch_count: the number of samples in the batch (``> 0``).
    """
    chex.assert_equal_shape([stats.mean, stats.var, batch_mean, batch_var])
    chex.assert_rank(stats.count, 0)
    delta = batch_mean - stats.mean
    total = stats.count + batch_count
    mean = stats.mean + delta * (batch_count / total)
    m2 = (stats.var * stats.count + batch_var * batch_count
          + jnp.square(delta) * (stats.count * batch_count / total))
    return RunningStats(mean, m2 / total, jnp.asarray(total, stats.count.dtype))


def update(stats: RunningStats, batch: chex.Array) -> RunningStats:
    """Pure: ``stats`` after merging every sample of ``batch``.

    Args:
        stats: the running statistics of samples of shape ``[*shape]``.
        batch: ``[*batch_axes, *shape]``: every leading axis is a batch axis (e.g. ``[N, *shape]``
            or a rollout's ``[T, E, *shape]``; reduced without reshaping, so an env axis sharded
            over devices stays where it is and the compiler reduces across devices).

    Returns:
        The statistics of everything merged before and the ``prod(batch_axes)`` new samples.
    """
    feature_ndim = stats.mean.ndim
    chex.assert_rank(batch, set(range(feature_ndim + 1, feature_ndim + 8)))
    if feature_ndim:
        chex.assert_shape(batch, (..., *stats.mean.shape))
    axes = tuple(range(batch.ndim - feature_ndim))
    x = jnp.asarray(batch, stats.mean.dtype)
    count = 1
    for a in axes:
        count *= batch.shape[a]
    batch_mean = jnp.mean(x, axis=axes)
    batch_var = jnp.mean(jnp.square(x - batch_mean), axis=axes)
    return merge(stats, batch_mean, batch_var, float(count))


def normalize(stats: RunningStats, x: chex.Array, clip: float | chex.Array) -> chex.Array:
    """Pure: ``clip((x - mean) / sqrt(var + eps), -clip, clip)`` (frozen statistics).

    Args:
        stats: statistics of samples of shape ``[*shape]``.
        x: ``[..., *shape]``, any leading axes.
        clip: the bound of the normalised values (``> 0``).
    """
    if stats.mean.ndim:
        chex.assert_shape(x, (..., *stats.mean.shape))
    z = (jnp.asarray(x, stats.mean.dtype) - stats.mean) / jnp.sqrt(stats.var + EPSILON)
    return jnp.clip(z, -clip, clip)


def scale(stats: RunningStats, x: chex.Array, clip: float | chex.Array) -> chex.Array:
    """Pure: ``clip(x / sqrt(var + eps), -clip, clip)``: scaled by the running standard
    deviation, not centred (how rewards are normalised)."""
    z = jnp.asarray(x, stats.var.dtype) / jnp.sqrt(stats.var + EPSILON)
    return jnp.clip(z, -clip, clip)


def normalize_rewards(stats: RunningStats, ret_tm1: chex.Array, r_t: chex.Array,
                      done_t: chex.Array, *, gamma: float | chex.Array,
                      clip: float | chex.Array) -> tuple[RunningStats, chex.Array, chex.Array]:
    """Pure: ``T`` steps of SB3's reward normalisation over ``E`` envs.

    At each step ``t``, every env's discounted return ``ret_t = gamma * ret_{t-1} + r_t`` is
    computed, the batch ``ret_t[0..E-1]`` is merged into the scalar statistics ``stats``
    (:func:`merge`), the rewards are scaled with the statistics after that merge
    (:func:`scale`), and then ``ret_t`` is reset to 0 where an episode ended (``done_t``).

    The returns of all steps are computed first, env by env, then the ``T`` batch moments at once
    (one reduction over the env axis: one cross-device reduction when the envs are sharded), then
    the ``T`` merges in order: the same statistics as merging step by step.

    Args:
        stats: scalar running statistics of the discounted returns (``mean`` of shape ``[]``).
        ret_tm1: ``[E]``, each env's discounted return before the first step.
        r_t: ``[T, E]`` raw rewards.
        done_t: ``[T, E]`` bool: the episode ended (terminated or truncated) at step ``t``.
        gamma: the discount of the return.
        clip: the bound of the normalised rewards.

    Returns:
        ``(stats, ret, normalised r_t)``: the statistics after the ``T`` merges, each env's
        return after the last step (``[E]``, 0 where the episode just ended) and the normalised
        rewards ``[T, E]``.
    """
    chex.assert_rank([ret_tm1, r_t, done_t], [1, 2, 2])
    chex.assert_equal_shape([r_t, done_t])
    chex.assert_equal_shape_suffix([ret_tm1, r_t], 1)
    chex.assert_rank(stats.mean, 0)
    dtype = stats.mean.dtype
    r_t = jnp.asarray(r_t, dtype)

    def accumulate(ret: chex.Array, x: tuple[chex.Array, chex.Array],
                   ) -> tuple[chex.Array, chex.Array]:
        r, done = x
        ret = ret * gamma + r
        return jnp.where(done, 0.0, ret), ret

    ret_last, ret_t = jax.lax.scan(accumulate, jnp.asarray(ret_tm1, dtype), (r_t, done_t))
    E = r_t.shape[1]
    batch_mean = jnp.mean(ret_t, axis=1)
    batch_var = jnp.mean(jnp.square(ret_t - batch_mean[:, None]), axis=1)

    def merge_one(s: RunningStats, moments: tuple[chex.Array, chex.Array],
                  ) -> tuple[RunningStats, chex.Array]:
        s = merge(s, *moments, float(E))
        return s, s.var

    stats, var_t = jax.lax.scan(merge_one, stats, (batch_mean, batch_var))
    normalised = jnp.clip(r_t / jnp.sqrt(var_t[:, None] + EPSILON), -clip, clip)
    return stats, ret_last, normalised
