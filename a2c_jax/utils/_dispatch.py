"""Synchronous dispatch on the CPU: the right default for many small computations."""

from __future__ import annotations

import logging
import os

import jax

_log = logging.getLogger("a2c_jax")
_ENV_OPT_OUT = "A2C_JAX_ASYNC_DISPATCH"
_ASYNC_OPTION = "jax_cpu_enable_async_dispatch"
# an option JAX lets change only before its backends start (its validator raises afterwards) and
# reads for multi-process CPU topologies only: a harmless probe of whether they have started
_PROBE_OPTION = "jax_cpu_get_local_topology_timeout_minutes"
_checked = False


def _backends_started() -> bool | None:
    """Whether JAX's backends (the CPU client among them) exist yet; ``None`` if it cannot tell.

    JAX has no public query for this. It refuses, with a ``RuntimeError``, to change
    ``jax_cpu_get_local_topology_timeout_minutes`` once its backends have started; before that,
    the option is only stored. So the option is set to another value and straight back: a refusal
    means started, a success means not started (and leaves nothing changed).
    """
    try:
        current = getattr(jax.config, _PROBE_OPTION)
        jax.config.update(_PROBE_OPTION, int(current) + 1)
    except RuntimeError:
        return True
    except Exception:  # noqa: BLE001 (a JAX without this option: cannot tell)
        return None
    jax.config.update(_PROBE_OPTION, current)
    return False


def _synchronous() -> bool:
    return not jax.config.values.get(_ASYNC_OPTION, True)


def prefer_synchronous_cpu_dispatch() -> bool:
    """Runs JAX's CPU computations inline in the calling thread, if it is still possible.

    JAX dispatches CPU computations asynchronously by default: each call hands the work to a
    worker thread and the result is waited for. For the small programs of RL on one machine (a
    policy evaluated on one observation, an update on a batch of 32) the hand-off costs more than
    the computation itself (``benchmarks/README.md`` has the measurements).

    a2c_jax calls this once, when its first function approximator is built. It sets
    ``jax_cpu_enable_async_dispatch = False`` only if JAX's backends have not started yet (the
    option is read when the CPU client is created; see :func:`_backends_started` for how that is
    told with public API only) and the option still has JAX's default. Opt out with the
    environment variable ``A2C_JAX_ASYNC_DISPATCH=1``, by setting the option yourself, or by
    starting JAX (running any computation) first.

    Returns:
        Whether dispatch on the CPU is synchronous after the call.
    """
    global _checked
    if _checked:
        return _synchronous()
    _checked = True
    if os.environ.get(_ENV_OPT_OUT, "") not in ("", "0"):
        return False
    started = _backends_started()
    if started is None:  # cannot tell: leave everything as it is
        return _synchronous()
    if started:
        _log.info("JAX was initialised before a2c_jax: CPU dispatch stays as it is")
        return _synchronous()
    if jax.config.values.get(_ASYNC_OPTION, True):
        jax.config.update(_ASYNC_OPTION, False)
    return True
