"""The host side of a training run, written once for both engines: TensorBoard, checkpoints, the
learning-curve plot, evaluation, ``summary.json`` and the final line of ``a2c-jax train``.

An engine (:class:`~a2c_jax.training.Trainer` or :class:`~a2c_jax.training.JitTrainer`) offers
``run(total_steps, progress, on_report)``, ``curves()``, ``summary()``, ``policy(run)``,
``save(path)`` and the counters ``env_steps`` (per run), ``updates``, ``num_seeds``,
``steps_per_update``, ``train_seconds``; :func:`drive` does the rest.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ._distributed import is_main

#: TensorBoard points per run (the cadence is the same for both engines: every
#: ``max(1, updates // TB_POINTS)`` updates)
TB_POINTS = 500


def eval_seed(seed: int) -> int:
    """The seed of the first greedy evaluation episode of run ``seed`` (both engines)."""
    return 1_000_000 + 1000 * seed


def _round(x: float | None, digits: int = 4) -> float | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return round(float(x), digits)


def run_summary(trainer: Any, *, solved_at: list[int | None], final_mean: list[float | None],
                episodes: list[int], devices: list[str]) -> dict[str, Any]:
    """The summary of a run with one meaning per key in both engines.

    ``env_steps`` and ``steps_per_s`` are per run (each of ``num_seeds`` runs took
    ``env_steps``); ``env_steps_all_runs`` and ``steps_per_s_all_runs`` count every run's steps.
    ``wall_s`` is the time spent training (the jit engine's ahead-of-time compilation is
    ``compile_s``; the loop engine's ``compile_s`` is its first update call, which traces and
    compiles, and is included in ``wall_s``). Run ``k`` of ``runs`` is seed ``seed + k``; the
    top-level ``solved_at_step``, ``final_mean_return`` and ``episodes`` are the first run's.
    """
    n, wall, steps = trainer.num_seeds, trainer.train_seconds, trainer.env_steps
    compile_s = trainer.compile_s
    return {
        "env": trainer.env_id, "algo": trainer.config.algo, "engine": trainer.engine,
        "seed": trainer.seed, "num_seeds": n, "num_envs": trainer.config.num_envs,
        "devices": devices, "processes": jax.process_count(), "env_steps": steps,
        "env_steps_all_runs": steps * n, "updates": trainer.updates,
        "compile_s": None if compile_s is None else round(compile_s, 3),
        "wall_s": round(wall, 4),
        "steps_per_s": round(steps / max(wall, 1e-9), 1),
        "steps_per_s_all_runs": round(steps * n / max(wall, 1e-9), 1),
        "solved_at_step": solved_at[0], "final_mean_return": _round(final_mean[0]),
        "episodes": episodes[0],
        "runs": [{"seed": trainer.seed + k, "solved_at_step": solved_at[k],
                  "final_mean_return": _round(final_mean[k]), "episodes": episodes[k]}
                 for k in range(n)],
        "reward_threshold": trainer.reward_threshold,
        "config": dataclasses.asdict(trainer.config),
    }


def plot_learning_curve(trainer: Any, path: Path) -> None:
    """The mean return of the last 100 episodes against env steps, one line per run, as a PNG
    (with the loop engine, each finished episode's return as a dot too)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = trainer.curves()
    fig, ax = plt.subplots(figsize=(7, 4))
    returns = getattr(trainer, "returns", None)
    if returns:
        ax.plot(trainer.ends, returns, ".", ms=2, alpha=0.3, color="grey", label="episode return")
    if curves:
        mean100, episodes = curves["mean100"], curves["episodes"]
        steps = np.arange(1, mean100.shape[1] + 1) * trainer.steps_per_update
        for k in range(trainer.num_seeds):
            have = episodes[k] > 0
            label = (f"seed {trainer.seed + k}" if trainer.num_seeds <= 8 else None)
            ax.plot(steps[have], mean100[k][have], lw=1, label=label)
    if trainer.reward_threshold is not None:
        ax.axhline(trainer.reward_threshold, color="grey", ls="--", lw=0.8, label="threshold")
    ax.set(xlabel="env steps (per run)", ylabel="mean return, last 100 episodes",
           title=f"{trainer.env_id}, {trainer.config.algo}, --engine {trainer.engine}, "
                 f"{trainer.num_seeds} run(s)")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(path: Path, data: Any) -> None:
    """Writes JSON atomically (temporary file, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default))
    tmp.replace(path)


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


class _Checkpointer:
    """Saves the run every ``every`` env steps (never when ``every`` is 0)."""

    def __init__(self, trainer: Any, path: Path, every: int) -> None:
        self.path, self.every = path, every
        self.next = trainer.env_steps + every if every else None

    def __call__(self, trainer: Any) -> None:
        if self.next is not None and trainer.env_steps >= self.next:
            trainer.save(self.path)
            self.next = trainer.env_steps + self.every


class _TensorBoard:
    """One writer per run (``tensorboard/seed_S``); every ``every`` updates: ``episode/mean100``
    (once the run has finished an episode) and every loss metric, at the env step of that update."""

    def __init__(self, trainer: Any, out: Path, total_steps: int, write: bool = True) -> None:
        from tensorboardX import SummaryWriter

        self.writers = [SummaryWriter(str(out / "tensorboard" / f"seed_{trainer.seed + k}"))
                        for k in range(trainer.num_seeds)] if write else []
        self.every = max(1, math.ceil(total_steps / trainer.steps_per_update) // TB_POINTS)

    def __call__(self, trainer: Any, metrics: dict[str, np.ndarray]) -> None:
        n = metrics["mean100"].shape[1]
        first = trainer.updates - n
        for i in range(n):
            update = first + i + 1
            if update % self.every:
                continue
            step = update * trainer.steps_per_update
            for k, w in enumerate(self.writers):
                if metrics["episodes"][k, i] > 0:
                    w.add_scalar("episode/mean100", float(metrics["mean100"][k, i]), step)
                for key, val in metrics.items():
                    if "/" in key:
                        w.add_scalar(key, float(val[k, i]), step)

    def close(self) -> None:
        for w in self.writers:
            w.close()


def drive(trainer: Any, total_steps: int, out: Path, checkpoint: Path, *,
          checkpoint_every: int = 100_000, progress: bool = True, setup_s: float = 0.0,
          eval_episodes: int | None = None) -> int:
    """Trains ``trainer`` to ``total_steps`` env steps per run and writes the run's outputs under
    ``out``: TensorBoard scalars, a checkpoint every ``checkpoint_every`` env steps and at the end,
    ``learning_curve.png`` and ``summary.json`` (with the greedy evaluation of the first run);
    prints one line. Ctrl-C saves the checkpoint and returns 130; otherwise returns 0.
    """
    before = (trainer.env_steps, trainer.train_seconds, trainer.compile_s or 0.0)
    main = is_main()   # over several processes, process 0 writes the outputs
    tb = _TensorBoard(trainer, out, total_steps, write=main)
    if hasattr(trainer, "report_every"):
        # the loop engine reports (fetches its metrics, may checkpoint) at TensorBoard's cadence,
        # or more often when checkpoints are due more often
        per_checkpoint = checkpoint_every // trainer.steps_per_update if checkpoint_every else 0
        trainer.report_every = max(1, min(tb.every, per_checkpoint or tb.every))
    save = _Checkpointer(trainer, checkpoint, checkpoint_every)

    def on_report(tr: Any, metrics: dict[str, np.ndarray]) -> None:
        tb(tr, metrics)
        save(tr)

    try:
        try:
            trainer.run(total_steps, progress=progress, on_report=on_report)
        except KeyboardInterrupt:
            if jax.process_count() > 1:
                # the processes are not interrupted at the same update: saving needs them all
                print("interrupted; not saved (a run over several processes saves every "
                      "--checkpoint-every steps: continue from the last one with --resume)",
                      file=sys.stderr)
                return 130
            trainer.save(checkpoint)
            print(f"interrupted; checkpoint saved to {checkpoint} (continue with --resume)",
                  file=sys.stderr)
            return 130
        finally:
            tb.close()
        trainer.save(checkpoint)
        return _finish(trainer, out, before, setup_s, eval_episodes, write=main)
    finally:
        close = getattr(trainer, "close", None)
        if close is not None:  # the loop engine's envs (asynchronous ones are processes)
            close()


def _finish(trainer: Any, out: Path, before: tuple[int, float, float], setup_s: float,
            eval_episodes: int | None, write: bool = True) -> int:
    """Evaluation, summary.json, the plot and the final line of a finished run (the summary is
    computed by every process of a multi-process run; the rest by the one with ``write``)."""
    from ..utils._evaluate import evaluate_greedy

    t0 = time.perf_counter()
    summary = trainer.summary()
    if not write:
        return 0
    summary["setup_s"] = round(setup_s, 3)
    episodes = eval_episodes or trainer.config.eval_episodes
    summary["eval_mean_return"] = _round(evaluate_greedy(
        trainer.policy(0), trainer.env_id, episodes, first_seed=eval_seed(trainer.seed)))
    summary["eval_s"] = round(time.perf_counter() - t0, 3)
    trainer.plot(out / "learning_curve.png")
    write_json(out / "summary.json", summary)
    steps_now = trainer.env_steps - before[0]
    seconds_now = trainer.train_seconds - before[1]
    compile_now = (trainer.compile_s or 0.0) - before[2]
    print(final_line(summary, out, steps_now, seconds_now, compile_now))
    return 0


def final_line(summary: dict[str, Any], out: Path, steps: int, seconds: float,
               compile_s: float) -> str:
    """The one line ``a2c-jax train`` ends with: this command's steps and speed, and the run's
    results, with no raw ``None`` and rounded figures."""
    n = summary["num_seeds"]
    runs = summary["runs"]
    rate = steps * n / seconds if seconds > 0 else 0.0
    if n == 1:
        solved = summary["solved_at_step"]
        solved_txt = f"solved at step {solved:,}" if solved is not None else "not solved"
        final = summary["final_mean_return"]
        mean_txt = (f"mean of the last 100 episodes {final:.1f}" if final is not None
                    else "no episode finished")
    else:
        solved_txt = f"solved in {sum(r['solved_at_step'] is not None for r in runs)}/{n} runs"
        finals = [r["final_mean_return"] for r in runs if r["final_mean_return"] is not None]
        mean_txt = (f"mean of the last 100 episodes {np.mean(finals):.1f} over runs" if finals
                    else "no episode finished")
    if compile_s <= 0.05:
        compiled = ""
    elif summary["engine"] == "loop":  # its first update call compiles, inside the seconds
        compiled = f" (including {compile_s:.1f} s of compilation)"
    else:
        compiled = f" after {compile_s:.1f} s of compilation"
    evaluated = summary["eval_mean_return"]
    eval_txt = f"{evaluated:.1f}" if evaluated is not None else "not finite"
    return (f"{summary['env']} {summary['algo']} --engine {summary['engine']}, {n} run(s): "
            f"{steps:,} env steps per run in {seconds:.1f} s{compiled} ({rate:,.0f} steps/s"
            f"{' over all runs' if n > 1 else ''}), {solved_txt}, {mean_txt}, greedy eval of "
            f"seed {summary['seed']} {eval_txt}; wrote {out}/summary.json")
