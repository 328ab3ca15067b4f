"""Runs a script (the shared recipe) with SimpleTD's default loss switched to MSE.

    python benchmarks/_mse_td.py ../shared/anchors/seed_recipe.py --lib a2c_jax --seed 0

For measurement only (``recipe_seeds.py --mse-td`` uses it): with MSE, the TD error that the
recipe hands its policy, ``-B dL/dv(S)``, is the raw ``G - v(S)`` instead of the default Huber
loss's ``clip(G - v(S), -1, 1)``. The script itself runs unchanged; nothing outside this process
is affected.
"""

import runpy
import sys

from a2c_jax.td_learning import SimpleTD
from a2c_jax.value_losses import mse

_init = SimpleTD.__init__


def _mse_init(self, v, v_targ=None, optimizer=None, loss_function=None, **kwargs):
    _init(self, v, v_targ, optimizer, mse if loss_function is None else loss_function, **kwargs)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: _mse_td.py SCRIPT [ARGS...]")
    SimpleTD.__init__ = _mse_init
    script = sys.argv[1]
    sys.argv = [script, *sys.argv[2:]]
    runpy.run_path(script, run_name="__main__")
