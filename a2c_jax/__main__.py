"""``python -m a2c_jax train ...``: see :mod:`a2c_jax.cli`."""

import sys

from .cli import main

sys.exit(main())
