"""Training runs: over gymnasium vector envs (:class:`Trainer`) or entirely under ``jit`` on
JAX-native envs (:class:`JitTrainer`); the engines of ``a2c-jax train``."""

from ._driver import drive, plot_learning_curve
from ._jit import JAX_NATIVE_ENVS, JitTrainer
from ._presets import PRESETS, TrainConfig, preset
from ._sweep import Sweep, SweepError
from ._trainer import Trainer, build_functions, build_learner, make_vector_env
from ._update import Learner, LearnerState, Rollout, minibatches

__all__ = ["JAX_NATIVE_ENVS", "PRESETS", "JitTrainer", "Learner", "LearnerState", "Rollout",
           "Sweep", "SweepError", "TrainConfig", "Trainer", "build_functions", "build_learner", "drive",
           "make_vector_env", "minibatches", "plot_learning_curve", "preset"]
