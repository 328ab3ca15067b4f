"""Running an element-wise optimizer on one flat parameter vector, when that is the same optimizer.

XLA:CPU executes an optax update leaf by leaf, as many small kernels; on the single vector of all
parameters (``optax.flatten``) the same update is a handful of kernels, which is faster for the
small networks of RL (``benchmarks/README.md`` has the measurements).

That is only the same optimizer when it treats every parameter element alike (sgd, adam, rmsprop,
global-norm clipping, ...). Optimizers with statistics per parameter array (LAMB and LARS trust
ratios, Adafactor's factored moments) differ, and optimizers that look at the parameter tree
(``optax.masked`` with a mask tree, ``optax.multi_transform`` with a label tree) cannot run on a
flat vector at all. So the choice is made by a probe, once, at construction: the optimizer is run
both ways for two steps on deterministic test gradients of the actual parameter shapes, in the
same compiled program as its initialisation, and flattened only if the updates agree. Whatever
the probe cannot handle (an optimizer that raises on the flat vector, updates that are not finite
or do not agree) falls back to the leaf-wise optimizer as given. ``flatten_optimizer=False`` on
the updaters skips the probe; ``True`` flattens without it; ``optimizer_flattened`` says what was
chosen.
"""

from __future__ import annotations

import logging
from typing import Any

import jax
import jax.numpy as jnp
import optax

_log = logging.getLogger("a2c_jax")

# relative agreement required between the flat and the leaf-wise updates: rounding differs (Adam
# shows ~1e-5), an optimizer with per-array statistics differs by O(1)
_RTOL = 1e-3


def _max_rel_diff(a: Any, b: Any) -> jax.Array:
    diffs = [jnp.max(jnp.abs(x - y) / (jnp.abs(x) + jnp.abs(y) + 1e-12))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]
    return jnp.max(jnp.stack(diffs)) if diffs else jnp.zeros(())


def _init_both(optimizer: optax.GradientTransformation, flat: optax.GradientTransformation,
               params: Any) -> tuple[optax.OptState, optax.OptState, jax.Array]:
    state, flat_state = optimizer.init(params), flat.init(params)
    s_a, s_b, p_a, p_b = state, flat_state, params, params
    leaves, treedef = jax.tree.flatten(params)
    diff = jnp.zeros(())
    for step in range(2):
        # deterministic, irregular test gradients of every sign and scale (no PRNG: cheap to compile)
        grads = jax.tree.unflatten(treedef, [
            (1.0 + step) * jnp.sin(jnp.arange(jnp.size(x), dtype=jnp.result_type(x))
                                   * (0.7 + 0.3 * i + step) + i).reshape(jnp.shape(x))
            for i, x in enumerate(leaves)])
        u_a, s_a = optimizer.update(grads, s_a, p_a)
        u_b, s_b = flat.update(grads, s_b, p_b)
        diff = jnp.maximum(diff, _max_rel_diff(u_a, u_b))
        p_a, p_b = optax.apply_updates(p_a, u_a), optax.apply_updates(p_b, u_b)
    return state, flat_state, diff


def init_optimizer(optimizer: optax.GradientTransformation, params: Any, flatten: bool | None,
                   compiler_options: dict[str, Any]
                   ) -> tuple[optax.GradientTransformation, optax.OptState, bool]:
    """``(optimizer_used, its_state, flattened)`` for ``params``; see the module docstring.

    Args:
        optimizer: the optax optimizer as given.
        params: the parameters it will update.
        flatten: ``True``/``False`` forces the choice (``True`` raises whatever the flat
            optimizer raises); ``None`` decides by the probe, falling back to ``optimizer`` on any
            error.
        compiler_options: passed to ``jax.jit`` for the one-off programs.
    """
    leaves = jax.tree.leaves(params)
    floating = bool(leaves) and all(jnp.issubdtype(jnp.result_type(x), jnp.floating)
                                    for x in leaves)
    if flatten is True:
        flat = optax.flatten(optimizer)
        return flat, jax.jit(flat.init, compiler_options=compiler_options)(params), True
    if flatten is None and floating:
        try:
            flat = optax.flatten(optimizer)
            state, flat_state, diff = jax.jit(
                lambda p: _init_both(optimizer, flat, p), compiler_options=compiler_options)(params)
            agree = bool(float(diff) <= _RTOL)  # False for a NaN difference too
        except Exception as err:  # noqa: BLE001 (any failure of the flat form means: leaf-wise)
            _log.debug("optimizer %r cannot run on the flat parameter vector (%s: %s); using it "
                       "leaf-wise", optimizer, type(err).__name__, err)
        else:
            return (flat, flat_state, True) if agree else (optimizer, state, False)
    # leaf-wise: errors here are the optimizer's own and propagate
    return optimizer, jax.jit(optimizer.init, compiler_options=compiler_options)(params), False
