"""Running an element-wise optimizer on one flat parameter vector.

XLA:CPU executes an optax update leaf by leaf as many small kernels; on the single vector of all
parameters (``optax.flatten``) the same update is a handful of kernels. For the coax recipe's
value network the fused update step took ~155 µs per leaf-wise call and ~48 µs flat.

That is only the same optimizer when it treats every parameter element alike (sgd, adam, rmsprop,
global-norm clipping, ...). Optimizers with statistics per parameter array (LAMB and LARS trust
ratios, Adafactor's factored moments) differ. So the choice is made by measurement: the
optimizer is run both ways for two steps on random gradients of the actual parameter shapes, in
the same compiled program as its initialisation, and flattened only if the updates agree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

# relative agreement required between the flat and the leaf-wise updates: rounding differs (Adam
# shows ~1e-5), an optimizer with per-array statistics differs by O(1)
_RTOL = 1e-3


def _max_rel_diff(a, b) -> jax.Array:
    diffs = [jnp.max(jnp.abs(x - y) / (jnp.abs(x) + jnp.abs(y) + 1e-12))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]
    return jnp.max(jnp.stack(diffs)) if diffs else jnp.zeros(())


def _init_both(optimizer: optax.GradientTransformation, flat: optax.GradientTransformation,
               params):
    state, flat_state = optimizer.init(params), flat.init(params)
    s_a, s_b, p_a, p_b = state, flat_state, params, params
    leaves, treedef = jax.tree.flatten(params)
    diff = jnp.zeros(())
    for step in range(2):
        # deterministic, irregular test gradients of every sign and scale (no PRNG: cheap to compile)
        grads = treedef.unflatten([
            (1.0 + step) * jnp.sin(jnp.arange(jnp.size(x), dtype=jnp.result_type(x))
                                   * (0.7 + 0.3 * i + step) + i).reshape(jnp.shape(x))
            for i, x in enumerate(leaves)])
        u_a, s_a = optimizer.update(grads, s_a, p_a)
        u_b, s_b = flat.update(grads, s_b, p_b)
        diff = jnp.maximum(diff, _max_rel_diff(u_a, u_b))
        p_a, p_b = optax.apply_updates(p_a, u_a), optax.apply_updates(p_b, u_b)
    return state, flat_state, diff


def init_optimizer(optimizer: optax.GradientTransformation, params, flatten: bool | None,
                   compiler_options: dict):
    """``(optimizer_used, its_state, flattened)`` for ``params``; see the module docstring.

    Args:
        flatten: ``True``/``False`` forces the choice; ``None`` decides by the two-step check.
    """
    leaves = jax.tree.leaves(params)
    floating = leaves and all(jnp.issubdtype(jnp.result_type(x), jnp.floating) for x in leaves)
    if flatten is False or not floating:
        state = jax.jit(optimizer.init, compiler_options=compiler_options)(params)
        return optimizer, state, False
    flat = optax.flatten(optimizer)
    if flatten is True:
        return flat, jax.jit(flat.init, compiler_options=compiler_options)(params), True
    state, flat_state, diff = jax.jit(
        lambda p: _init_both(optimizer, flat, p), compiler_options=compiler_options)(params)
    if float(diff) <= _RTOL:
        return flat, flat_state, True
    return optimizer, state, False
