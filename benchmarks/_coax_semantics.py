"""Runs a script (the shared recipe) with a2c_jax switched to coax's TD-error semantics.

    python benchmarks/_coax_semantics.py ../shared/anchors/seed_recipe.py --lib a2c_jax --seed 0

For measurement only (``recipe_seeds.py`` uses it): ``SimpleTD`` defaults to the Huber loss, and
``update(..., return_td_error=True)`` returns ``clip(G - v(S), -1, 1)``, which is what coax 0.1.13
returns as its TD error (``-B dL/dv(S)``, the negative gradient of its default Huber loss). The
script itself runs unchanged; a2c_jax's own semantics (``G - v(S)``, MSE) are untouched outside
this process.
"""

import runpy
import sys

import jax.numpy as jnp

import a2c_jax
from a2c_jax.td_learning import SimpleTD

_init, _update = SimpleTD.__init__, SimpleTD.update


def _coax_init(self, v, v_targ=None, optimizer=None, loss_function=None, **kwargs):
    _init(self, v, v_targ, optimizer, loss_function or a2c_jax.value_losses.huber, **kwargs)


def _coax_update(self, transition_batch, return_td_error=False):
    out = _update(self, transition_batch, return_td_error)
    if not return_td_error:
        return out
    metrics, td_error = out
    return metrics, jnp.clip(td_error, -1.0, 1.0)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: _coax_semantics.py SCRIPT [ARGS...]")
    SimpleTD.__init__, SimpleTD.update = _coax_init, _coax_update
    script = sys.argv[1]
    sys.argv = [script, *sys.argv[2:]]
    runpy.run_path(script, run_name="__main__")
