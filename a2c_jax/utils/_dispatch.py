"""Synchronous dispatch on the CPU: the right default for many small computations."""

from __future__ import annotations

import logging
import os

import jax

_log = logging.getLogger("a2c_jax")
_ENV_OPT_OUT = "A2C_JAX_ASYNC_DISPATCH"
_checked = False


def prefer_synchronous_cpu_dispatch() -> bool:
    """Runs JAX's CPU computations inline in the calling thread, if it is still possible.

    JAX dispatches CPU computations asynchronously by default: each call hands the work to a
    worker thread and the result is waited for. For the small programs of RL on one machine (a
    policy evaluated on one observation, an update on a batch of 32) the hand-off costs more than
    the computation: on this project's 2-core machines ``pi(s)`` took ~60 µs inside a training
    loop with it and ~18 µs without (``benchmarks/README.md``).

    a2c_jax calls this once, when its first function approximator is built. It sets
    ``jax_cpu_enable_async_dispatch = False`` only if JAX's backends are not initialised yet (the
    option is read when the CPU client is created) and the option still has JAX's default.
    Opt out with the environment variable ``A2C_JAX_ASYNC_DISPATCH=1``, or by initialising JAX
    (running any computation) first.

    Returns:
        Whether dispatch on the CPU is synchronous after the call.
    """
    global _checked
    if _checked:
        return not jax.config.values.get("jax_cpu_enable_async_dispatch", True)
    _checked = True
    if os.environ.get(_ENV_OPT_OUT, "") not in ("", "0"):
        return False
    try:
        from jax._src import xla_bridge

        initialized = xla_bridge.backends_are_initialized()
    except Exception:  # a JAX without this internal: leave everything as it is
        return False
    if initialized:
        _log.info("JAX was initialised before a2c_jax: CPU dispatch stays asynchronous")
        return not jax.config.values.get("jax_cpu_enable_async_dispatch", True)
    if jax.config.values.get("jax_cpu_enable_async_dispatch", True):
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    return True
