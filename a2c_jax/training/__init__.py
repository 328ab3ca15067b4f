"""Training runs over vector envs (the ``a2c-jax train`` command's engine)."""

from ._presets import PRESETS, TrainConfig, preset
from ._trainer import Trainer, build_functions, make_vector_env, plot_learning_curve

__all__ = ["PRESETS", "TrainConfig", "Trainer", "build_functions", "make_vector_env",
           "plot_learning_curve", "preset"]
