"""Training runs: over gymnasium vector envs (:class:`Trainer`) or entirely under ``jit`` on
JAX-native envs (:class:`JitTrainer`); the engines of ``a2c-jax train``."""

from ._jit import JAX_NATIVE_ENVS, JitTrainer
from ._presets import PRESETS, TrainConfig, preset
from ._trainer import Trainer, build_functions, make_vector_env, plot_learning_curve

__all__ = ["JAX_NATIVE_ENVS", "PRESETS", "JitTrainer", "TrainConfig", "Trainer", "build_functions",
           "make_vector_env", "plot_learning_curve", "preset"]
