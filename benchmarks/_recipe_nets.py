"""coax's recipe layout, shared by the benchmarks: a 2x64 torso and name-scoped ``v``/``pi`` heads.

These are plain Haiku functions, exactly what a user writes (``benchmarks/recipe.py``,
``microbench.py`` and ``jit_architectures.py`` import them from here). Only pure Haiku and JAX is
used, so the module also runs under coax's interpreter.
"""

from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp

ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh}


def recipe_functions(n_actions: int, activation: str = "relu", shared: bool = True,
                     zero_heads: bool = True):
    """``(func_pi, func_v)`` in coax's recipe layout.

    The defaults are the recipe of coax's A2C page: one ReLU torso named ``torso`` that both
    functions build (so ``sync_shared_params`` averages it), heads initialised at zero.
    ``shared=False`` gives each function its own torso (``torso_pi``/``torso_v``);
    ``zero_heads=False`` keeps Haiku's default head initialisation.
    """
    act = ACTIVATIONS[activation]
    w_init = jnp.zeros if zero_heads else None

    def torso(S, name):
        with hk.experimental.name_scope(name):
            net = hk.Sequential([hk.Linear(64), act, hk.Linear(64), act])
        return net(S)

    def func_v(S, is_training):
        X = torso(S, "torso" if shared else "torso_v")
        with hk.experimental.name_scope("v"):
            value = hk.Sequential([hk.Linear(1, w_init=w_init), jnp.ravel])
        return value(X)

    def func_pi(S, is_training):
        X = torso(S, "torso" if shared else "torso_pi")
        with hk.experimental.name_scope("pi"):
            logits = hk.Linear(n_actions, w_init=w_init)
        return {"logits": logits(X)}

    return func_pi, func_v
