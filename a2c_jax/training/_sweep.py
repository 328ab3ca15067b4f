"""Hyperparameter sweeps in one compiled program: ``a2c-jax train --engine jit --sweep KEY=V1,V2``.

A :class:`Sweep` is a grid of traced hyperparameters (the cartesian product of the values of each
key, in the order the keys are given, the last key varying fastest). The jitted engine trains
every configuration of the grid times ``num_seeds`` seeds as one batch of runs: run ``r`` is
configuration ``r // num_seeds`` with seed ``seed + r % num_seeds``, so every configuration is
trained on the same seeds. The runs' hyperparameters get a leading run axis and are ``vmap``-ed
together with their states.

Only a hyperparameter that is a traced value of the compiled program can differ between the runs
of one program (:data:`SWEEPABLE`, :data:`~a2c_jax.training._update.TRACEABLE`): a key that sets
a shape (``num_envs``, ``n_steps``, ``hidden``, ``batch_size``) or the program itself (``algo``,
``optimizer``, ``n_epochs``, ...) needs a program of its own and is refused (:class:`SweepError`,
one line saying why).

Results: :func:`interval` is the 95% Student-t interval over seeds, :func:`sweep_table` the
per-configuration table of ``OUT/sweep.md``, :func:`plot_sweep` the learning curves of
``OUT/sweep.png`` (mean over seeds with that interval as a band).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import optax

from .._actor_critic import ActorCritic
from .._core import Policy, V
from ..policy_objectives import PPOClip, VanillaPG
from ..regularizers import EntropyRegularizer
from ..td_learning import SimpleTD
from ..value_losses import mse
from ._config import value_from_text
from ._keys import KEYS, check_value, unknown_key_message
from ._presets import TrainConfig
from ._update import TRACEABLE, Learner

__all__ = ["SWEEPABLE", "Sweep", "SweepError", "WeightedTD", "build_traced_learner",
           "check_resumed", "from_options", "interval", "parse_sweep", "plot_sweep", "sweep_table"]

#: the keys a sweep may vary: the hyperparameters that are traced values of the compiled program
SWEEPABLE: tuple[str, ...] = tuple(TRACEABLE)

_SHAPES = "changes the shapes of the compiled program"
#: why each other TrainConfig key cannot be swept
_REFUSED: dict[str, str] = {
    "num_envs": _SHAPES, "n_steps": _SHAPES, "hidden": _SHAPES, "batch_size": _SHAPES,
    "n_epochs": "changes the compiled program (the number of passes over a rollout)",
    "algo": "changes the compiled program (another objective)",
    "optimizer": "changes the compiled program (another optimizer and its state)",
    "activation": "changes the compiled program (another network)",
    "shared_backbone": "changes the compiled program (another network and optimizer layout)",
    "normalize_advantage": "changes the compiled program (a step more or less)",
    "normalize_obs": "changes the compiled program (a step more or less)",
    "normalize_reward": "changes the compiled program (a step more or less)",
    "clip_obs": "is a constant of the compiled program, not a traced value",
    "clip_reward": "is a constant of the compiled program, not a traced value",
    "env_kwargs": "changes the envs the compiled program is built from",
    "total_steps": "is every run's step budget, not a hyperparameter of the program (use --steps)",
    "eval_episodes": "sets the evaluation after training, not a hyperparameter of the program",
}


class SweepError(ValueError):
    """A sweep that cannot run; the message (one line) says why. ``key`` is the key concerned
    (``None`` when the problem is not one key's); the command line prints ``--sweep KEY: ...``."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key

    @property
    def option_message(self) -> str:
        """The line the command line prints: ``--sweep KEY: ...`` (key-less messages name the
        option themselves)."""
        return f"--sweep {self.key}: {self}" if self.key else str(self)


def _admit(key: str, seen: set[str]) -> None:
    """Adds ``key`` to the keys of a grid so far, ``seen``; a key that cannot be swept, or one
    given twice, is a :class:`SweepError`."""
    if key not in SWEEPABLE:
        raise SweepError(_refusal(key), key)
    if key in seen:
        raise SweepError(f"{key} is given twice; give each key once, its values comma-separated",
                         key)
    seen.add(key)


def _refusal(key: str) -> str:
    if key in _REFUSED:
        return (f"{key} {_REFUSED[key]}; only traced hyperparameters can be swept: "
                f"{', '.join(SWEEPABLE)}")
    # a TrainConfig key this module does not know yet is refused as not traced
    if key in KEYS:
        return (f"{key} is not a traced hyperparameter; only these can be swept: "
                f"{', '.join(SWEEPABLE)}")
    return f"{unknown_key_message(key)} (sweepable: {', '.join(SWEEPABLE)})"


def _fmt(x: float) -> str:
    """A value as the grid's labels show it: the shortest form that reads back the same."""
    return f"{x:g}" if float(f"{x:g}") == x else repr(x)


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A grid of traced hyperparameters: ``axes`` is ``((key, (v1, v2, ...)), ...)``.

    The configurations are the cartesian product of the values, in the order of ``axes`` (the
    last key varies fastest). Make one with :meth:`from_grid` or :func:`parse_sweep`.

    Raises:
        SweepError: no key, a key that cannot be swept (the message says why), a key given
            twice, a key without values, a value given twice or one the key cannot take.
    """

    axes: tuple[tuple[str, tuple[float, ...]], ...]

    def __post_init__(self) -> None:
        if not self.axes:
            raise SweepError("a sweep needs at least one KEY=V1,V2,...")
        seen: set[str] = set()
        axes = []
        for key, values in self.axes:
            _admit(key, seen)
            checked: list[float] = []
            for v in values:
                try:
                    x = check_value(key, v)
                except ValueError as err:
                    raise SweepError(str(err), key) from None
                if not math.isfinite(x):
                    raise SweepError(f"{key} must be finite in a sweep, got {v!r}", key)
                if x in checked:
                    raise SweepError(f"{key} lists {_fmt(x)} twice", key)
                checked.append(x)
            if not checked:
                raise SweepError(f"{key} has no values (give {key}=V1,V2,...)", key)
            axes.append((key, tuple(checked)))
        object.__setattr__(self, "axes", tuple(axes))

    @classmethod
    def from_grid(cls, grid: Mapping[str, Iterable[float]]) -> Sweep:
        """``Sweep.from_grid({"learning_rate": [1e-3, 3e-4], "ent_coef": [0.0, 0.01]})``."""
        return cls(tuple((k, tuple(v)) for k, v in grid.items()))

    @property
    def keys(self) -> tuple[str, ...]:
        """The swept keys, in order."""
        return tuple(k for k, _ in self.axes)

    @property
    def configs(self) -> list[dict[str, float]]:
        """Every configuration of the grid, ``{key: value}``, in run order."""
        return [dict(zip(self.keys, values))
                for values in itertools.product(*(v for _, v in self.axes))]

    def __len__(self) -> int:
        return math.prod(len(v) for _, v in self.axes)

    def label(self, index: int) -> str:
        """Configuration ``index`` as text: ``learning_rate=0.001,ent_coef=0.01``."""
        return ",".join(f"{k}={_fmt(v)}" for k, v in self.configs[index].items())

    def specs(self) -> list[str]:
        """The grid as the command line gives it: ``["learning_rate=0.001,0.0003", ...]``."""
        return [f"{k}={','.join(_fmt(x) for x in v)}" for k, v in self.axes]

    def check(self, config: TrainConfig) -> None:
        """Raises :class:`SweepError` for a key ``config`` does not use (PPO's ``clip_epsilon``
        in an A2C run: every configuration would be the same run)."""
        if "clip_epsilon" in self.keys and config.algo != "ppo":
            raise SweepError(f"clip_epsilon is PPO's; algo {config.algo} does not use it",
                             "clip_epsilon")

    def run_values(self, num_seeds: int) -> dict[str, np.ndarray]:
        """Each key's value for every run, ``[len(self) * num_seeds]`` float32 (config-major)."""
        return {k: np.repeat(np.asarray([c[k] for c in self.configs], np.float32), num_seeds)
                for k in self.keys}

    def to_dict(self) -> dict[str, list[float]]:
        """The grid as ``{key: [values]}`` (``summary.json``'s ``sweep.grid``)."""
        return {k: list(v) for k, v in self.axes}

    def to_data(self) -> list[list[Any]]:
        """The grid as JSON-able ``[[key, [values]], ...]`` pairs, which keep the keys' order
        in any JSON (a checkpoint's ``sweep`` entry; :meth:`from_data`)."""
        return [[k, list(v)] for k, v in self.axes]

    @classmethod
    def from_data(cls, data: Any) -> Sweep:
        """The grid of :meth:`to_data`; anything else raises :class:`SweepError`."""
        if not isinstance(data, (list, tuple)) or not all(
                isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], str)
                and isinstance(p[1], (list, tuple)) for p in data):
            raise SweepError(f"a sweep is a list of [key, [values]] pairs, got {data!r}")
        return cls(tuple((k, tuple(v)) for k, v in data))


def parse_sweep(specs: Sequence[str]) -> Sweep:
    """The grid of ``--sweep KEY=V1,V2,...`` options (one per key).

    Raises:
        SweepError: text that is not ``KEY=V1,V2,...``, a value that is not a number, and
            everything :class:`Sweep` refuses.
    """
    axes: list[tuple[str, tuple[float, ...]]] = []
    seen: set[str] = set()
    for spec in specs:
        key, eq, text = spec.partition("=")
        key = key.strip()
        if not eq or not key:
            raise SweepError(f"{spec!r} is not KEY=V1,V2,...", key or None)
        _admit(key, seen)
        parts = [p.strip() for p in text.split(",")]
        if not any(parts):
            raise SweepError(f"{key} has no values (give {key}=V1,V2,...)", key)
        if not all(parts):
            raise SweepError(f"{key} has an empty value in {text!r}", key)
        values = []
        for p in parts:
            try:
                values.append(value_from_text(key, p))
            except ValueError as err:
                raise SweepError(str(err), key) from None
        axes.append((key, tuple(values)))
    return Sweep(tuple(axes))


def from_options(specs: Sequence[str], config: TrainConfig, engine: str = "jit",
                 sets: Sequence[str] = ()) -> Sweep | None:
    """The grid of ``a2c-jax train``'s ``--sweep`` options for a run of ``config`` (``None``
    without any); ``sets`` are the ``--set KEY=VALUE`` options, which may not name a swept key.

    Raises:
        SweepError: everything :func:`parse_sweep` and :meth:`Sweep.check` refuse, a sweep with
            ``engine`` other than ``"jit"``, a key also given by ``--set``.
    """
    if not specs:
        return None
    if engine != "jit":
        raise SweepError("--sweep needs --engine jit (the loop engine trains one run at a time)")
    sweep = parse_sweep(specs)
    given = {s.partition("=")[0].strip() for s in sets}
    for key in sweep.keys:
        if key in given:
            raise SweepError(f"--set gives {key} too; give its values in --sweep only", key)
    sweep.check(config)
    return sweep


def check_resumed(specs: Sequence[str], saved: Sweep | None, config: TrainConfig,
                  checkpoint: str | Path, engine: str = "jit") -> None:
    """Raises :class:`SweepError` unless ``--sweep`` options given with ``--resume`` (if any) are
    the grid the checkpoint was trained with (``saved``)."""
    given = from_options(specs, config, engine)
    if given is None or given == saved:
        return
    was = ("without --sweep" if saved is None
           else "--sweep " + " --sweep ".join(saved.specs()))
    raise SweepError(f"{checkpoint} was trained {'with ' if saved is not None else ''}{was}; "
                     "drop --sweep to resume it, or choose another --out")


# ---- the updaters of a sweep ------------------------------------------------------------------

class WeightedTD(SimpleTD):
    """:class:`~a2c_jax.td_learning.SimpleTD` whose loss (and TD error) is multiplied by the
    traced hyperparameter ``vf_coef``: the critic of a sweep over ``vf_coef`` with separate
    networks (where the engines' own critic has the weight as a constant of its loss)."""

    def __init__(self, v: V, optimizer: optax.GradientTransformation, *, vf_coef: float,
                 flatten_optimizer: bool | None = None) -> None:
        super().__init__(v, optimizer=optimizer, loss_function=mse,
                         flatten_optimizer=flatten_optimizer)
        self.vf_coef = vf_coef

    @property
    def hyperparams(self) -> dict[str, Any]:
        return {**super().hyperparams, "vf_coef": self.vf_coef}

    def loss_fn(self, params: Any, function_state: Any, hparams: dict[str, Any],
                rng: Any, transition_batch: Any, target_params: Any,
                target_state: Any) -> tuple[Any, tuple[dict[str, Any], Any, Any]]:
        """Pure: ``vf_coef`` times :meth:`SimpleTD.loss_fn <a2c_jax.td_learning.SimpleTD.loss_fn>`
        (its metrics ``td_error`` and ``td_error_abs`` scaled alike, as the weighted loss's)."""
        loss, (metrics, state, td_error) = super().loss_fn(
            params, function_state, hparams, rng, transition_batch, target_params, target_state)
        w = hparams["vf_coef"]
        metrics = {**metrics, "td_error": w * metrics["td_error"],
                   "td_error_abs": w * metrics["td_error_abs"]}
        return w * loss, (metrics, state, w * td_error)


def _traced_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """The engines' optimizer (``_trainer._optimizer``: global-norm clipping, then RMSprop or
    Adam) with its step size and clipping norm injected: read from the optimizer state, where
    :class:`~a2c_jax.training.Learner` writes each run's values."""
    def make(learning_rate: float, max_grad_norm: float) -> optax.GradientTransformation:
        if config.optimizer == "rmsprop":
            opt = optax.rmsprop(learning_rate, decay=0.99, eps=1e-5)
        else:
            opt = optax.adam(learning_rate)
        return optax.chain(optax.clip_by_global_norm(max_grad_norm), opt)

    return optax.inject_hyperparams(make)(learning_rate=config.learning_rate,
                                          max_grad_norm=config.max_grad_norm)


def build_traced_learner(probe: gymnasium.Env, config: TrainConfig, seed: int,
                         traced: Sequence[str], func_pi: Callable | None = None,
                         func_v: Callable | None = None,
                         ) -> tuple[Policy, V, SimpleTD, VanillaPG | PPOClip, ActorCritic | None,
                                    Learner]:
    """:func:`~a2c_jax.training.build_learner` for a learner with ``traced`` config fields:
    the same networks and updaters, except what each traced field needs (an injected learning
    rate or clipping norm, an entropy regularizer also at ``ent_coef=0``, :class:`WeightedTD`
    for ``vf_coef`` with separate networks). Fields not in ``traced`` stay constants, as in the
    engines' own learner."""
    from ..utils._sync import _shared_groups
    from ._trainer import _optimizer, _weighted_mse, build_networks

    traced = tuple(traced)
    pi, v = build_networks(probe, config, seed, func_pi, func_v)

    def optimizer() -> optax.GradientTransformation:
        if {"learning_rate", "max_grad_norm"} & set(traced):
            return _traced_optimizer(config)
        return _optimizer(config, config.learning_rate)

    td: SimpleTD
    if config.shared_backbone:
        td = SimpleTD(v, optimizer=optimizer(), loss_function=mse, flatten_optimizer=True)
    elif "vf_coef" in traced:
        td = WeightedTD(v, optimizer(), vf_coef=config.vf_coef, flatten_optimizer=True)
    else:
        import functools

        td = SimpleTD(v, optimizer=optimizer(),
                      loss_function=functools.partial(_weighted_mse, config.vf_coef),
                      flatten_optimizer=True)
    reg = (EntropyRegularizer(pi, beta=config.ent_coef)
           if config.ent_coef > 0 or "ent_coef" in traced else None)
    pg: VanillaPG | PPOClip
    if config.algo == "ppo":
        pg = PPOClip(pi, optimizer=optimizer(), regularizer=reg, epsilon=config.clip_epsilon,
                     flatten_optimizer=True)
    else:
        pg = VanillaPG(pi, optimizer=optimizer(), regularizer=reg, flatten_optimizer=True)
    ac = (ActorCritic(pg, td, optimizer=optimizer(), vf_coef=config.vf_coef,
                      flatten_optimizer=True) if config.shared_backbone else None)
    shares = bool(_shared_groups((dict(pi.params), dict(v.params))))
    learner = Learner(pi, v, td, pg, config, ac, sync_shared=shares, traced=traced)
    return pi, v, td, pg, ac, learner


# ---- results ----------------------------------------------------------------------------------

def t_quantile(q: Any, df: Any) -> Any:
    """Student's t distribution's ``q`` quantile with ``df`` degrees of freedom (scipy's
    ``stats.t.ppf``; scipy comes with jax); array arguments broadcast."""
    from scipy import stats  # type: ignore[import-untyped]

    return stats.t.ppf(q, df)


def interval(values: Iterable[float | None], confidence: float = 0.95,
             ) -> tuple[float | None, float | None, int]:
    """``(mean, half_width, n)`` of the Student-t interval for the mean of the finite
    ``values``: ``mean ± t_{(1+confidence)/2, n-1} · s / √n``, ``s`` the sample standard
    deviation. ``half_width`` is ``None`` below two values, ``mean`` too with none."""
    x = np.asarray([float(v) for v in values if v is not None and math.isfinite(v)], np.float64)
    n = len(x)
    if n == 0:
        return None, None, 0
    if n == 1:
        return float(x[0]), None, 1
    t = float(t_quantile((1.0 + confidence) / 2.0, n - 1))
    return float(x.mean()), t * float(x.std(ddof=1)) / math.sqrt(n), n


def _cell(mean: float | None, half: float | None) -> str:
    if mean is None:
        return "—"
    return f"{mean:.1f}" if half is None else f"{mean:.1f} ± {half:.1f}"


def sweep_table(summary: Mapping[str, Any]) -> str:
    """The per-configuration table of a sweep's ``summary.json`` as Markdown: for each
    configuration, the seeds, the mean ± the 95% t-interval's half width over seeds of the final
    mean return (last 100 episodes) and of the greedy evaluation return, and how many seeds
    solved the env."""
    keys = list(summary["sweep"]["grid"])
    groups: dict[tuple[float, ...], list[dict[str, Any]]] = {}
    for run in summary["runs"]:
        groups.setdefault(tuple(run["config"][k] for k in keys), []).append(run)
    head = [*keys, "seeds", "final mean return", "greedy eval return", "solved"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for values, runs in groups.items():
        final = interval(r["final_mean_return"] for r in runs)
        evals = interval(r.get("eval_mean_return") for r in runs)
        solved = sum(r["solved_at_step"] is not None for r in runs)
        row = [*(_fmt(v) for v in values), str(len(runs)), _cell(*final[:2]), _cell(*evals[:2]),
               f"{solved}/{len(runs)}"]
        lines.append("| " + " | ".join(row) + " |")
    steps = summary["env_steps"]
    return "\n".join([
        f"{summary['env']} {summary['algo']}, {len(groups)} configurations x "
        f"{summary['num_seeds']} seed(s), {steps:,} env steps per run. Mean ± half width of the "
        "95% Student-t interval over seeds (n - 1 degrees of freedom); final mean return: the "
        "mean of the last 100 training episodes; greedy eval: "
        f"{summary['config']['eval_episodes']} episodes of the greedy policy.", "", *lines, ""])


def plot_sweep(trainer: Any, path: Path) -> None:
    """One learning curve per configuration: the mean over seeds of the mean return of the last
    100 episodes, with the 95% t-interval over seeds as a band, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep, k = trainer.sweep, trainer.num_seeds
    fig, ax = plt.subplots(figsize=(7, 4))
    curves = trainer.curves()
    if curves:
        mean100 = np.where(curves["episodes"] > 0, curves["mean100"], np.nan)
        steps = np.arange(1, mean100.shape[1] + 1) * trainer.steps_per_update
        for c in range(len(sweep)):
            runs = mean100[c * k:(c + 1) * k]
            n = np.sum(np.isfinite(runs), axis=0)
            have = n > 0
            mean = np.full(runs.shape[1], np.nan)
            mean[have] = np.nanmean(runs[:, have], axis=0)
            line, = ax.plot(steps[have], mean[have], lw=1.2, label=sweep.label(c))
            two = n > 1
            if np.any(two):
                sd = np.nanstd(runs[:, two], axis=0, ddof=1)
                half = t_quantile(0.975, n[two] - 1) * sd / np.sqrt(n[two])
                ax.fill_between(steps[two], mean[two] - half, mean[two] + half,
                                color=line.get_color(), alpha=0.2, lw=0)
    if trainer.reward_threshold is not None:
        ax.axhline(trainer.reward_threshold, color="grey", ls="--", lw=0.8, label="threshold")
    ax.set(xlabel="env steps (per run)", ylabel="mean return, last 100 episodes",
           title=f"{trainer.env_id}, {trainer.config.algo}: {len(sweep)} configs x {k} seed(s), "
                 "mean and 95% t-interval")
    ax.legend(loc="upper left", fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
