"""The host side of a training run, written once for both engines: TensorBoard, checkpoints, the
learning-curve plot, evaluation, ``summary.json`` and the final line of ``a2c-jax train``.

An engine (:class:`~a2c_jax.training.Trainer` or :class:`~a2c_jax.training.JitTrainer`) offers
``run(total_steps, progress, on_report)``, ``curves()``, ``summary()``, ``policy(run)``,
``save(path)`` and the counters ``env_steps`` (per run), ``updates``, ``num_seeds``,
``steps_per_update``, ``train_seconds``; :func:`drive` does the rest. A sweep (the jit engine's
``sweep``, with ``num_runs``, ``run_seed(r)`` and ``run_config(r)``) also gets every run
evaluated, ``sweep.md`` (the per-configuration table, also printed) and ``sweep.png``.
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


def num_runs(trainer: Any) -> int:
    """The runs an engine trains at once: a sweep's configurations times seeds, or the seeds."""
    return int(getattr(trainer, "num_runs", trainer.num_seeds))


def _sweep_of(trainer: Any) -> Any:
    return getattr(trainer, "sweep", None)


def _run_name(trainer: Any, k: int) -> str:
    """Run ``k``'s name: ``seed_S``, or ``CONFIG/seed_S`` in a sweep (TensorBoard, plots)."""
    if _sweep_of(trainer) is None:
        return f"seed_{trainer.seed + k}"
    return f"{trainer.sweep.label(k // trainer.num_seeds)}/seed_{trainer.run_seed(k)}"


def run_summary(trainer: Any, *, solved_at: list[int | None], final_mean: list[float | None],
                episodes: list[int], devices: list[str]) -> dict[str, Any]:
    """The summary of a run with one meaning per key in both engines.

    ``env_steps`` and ``steps_per_s`` are per run (each of ``num_seeds`` runs took
    ``env_steps``); ``env_steps_all_runs`` and ``steps_per_s_all_runs`` count every run's steps.
    ``wall_s`` is the time spent training (the jit engine's ahead-of-time compilation is
    ``compile_s``; the loop engine's ``compile_s`` is its first update call, which traces and
    compiles, and is included in ``wall_s``). Run ``k`` of ``runs`` is seed ``seed + k``; the
    top-level ``solved_at_step``, ``final_mean_return`` and ``episodes`` are the first run's.

    A sweep adds ``sweep`` (``grid``: each key's values; ``configs``; ``seeds_per_config``) and
    ``num_runs``; its ``runs`` (configuration-major) each name their ``config`` (the swept keys'
    values) and ``seed``, and the ``env_steps_all_runs``/``steps_per_s_all_runs`` count them all.
    """
    n, wall, steps = num_runs(trainer), trainer.train_seconds, trainer.env_steps
    compile_s = trainer.compile_s
    sweep = _sweep_of(trainer)
    runs = [{"seed": trainer.seed + k, "solved_at_step": solved_at[k],
             "final_mean_return": _round(final_mean[k]), "episodes": episodes[k]}
            for k in range(n)]
    extra: dict[str, Any] = {}
    if sweep is not None:
        runs = [{"config": trainer.run_config(k), **run, "seed": trainer.run_seed(k)}
                for k, run in enumerate(runs)]
        extra = {"num_runs": n, "sweep": {"grid": sweep.to_dict(), "configs": len(sweep),
                                          "seeds_per_config": trainer.num_seeds}}
    return {
        "env": trainer.env_id, "algo": trainer.config.algo, "engine": trainer.engine,
        "seed": trainer.seed, "num_seeds": trainer.num_seeds, **extra,
        "num_envs": trainer.config.num_envs,
        "devices": devices, "processes": jax.process_count(), "env_steps": steps,
        "env_steps_all_runs": steps * n, "updates": trainer.updates,
        "compile_s": None if compile_s is None else round(compile_s, 3),
        "wall_s": round(wall, 4),
        "steps_per_s": round(steps / max(wall, 1e-9), 1),
        "steps_per_s_all_runs": round(steps * n / max(wall, 1e-9), 1),
        "solved_at_step": solved_at[0], "final_mean_return": _round(final_mean[0]),
        "episodes": episodes[0],
        "runs": runs,
        "reward_threshold": trainer.reward_threshold,
        "config": dataclasses.asdict(trainer.config),
    }


def plot_learning_curve(trainer: Any, path: Path) -> None:
    """The mean return of the last 100 episodes against env steps, one line per run, as a PNG
    (with the loop engine, each finished episode's return as a dot too; in a sweep, one colour
    per configuration)."""
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
        sweep = _sweep_of(trainer)
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for k in range(num_runs(trainer)):
            have = episodes[k] > 0
            if sweep is None:
                label = f"seed {trainer.seed + k}" if trainer.num_seeds <= 8 else None
                ax.plot(steps[have], mean100[k][have], lw=1, label=label)
                continue
            c = k // trainer.num_seeds
            label = sweep.label(c) if k % trainer.num_seeds == 0 else None
            ax.plot(steps[have], mean100[k][have], lw=0.8, color=colors[c % len(colors)],
                    label=label)
    if trainer.reward_threshold is not None:
        ax.axhline(trainer.reward_threshold, color="grey", ls="--", lw=0.8, label="threshold")
    ax.set(xlabel="env steps (per run)", ylabel="mean return, last 100 episodes",
           title=f"{trainer.env_id}, {trainer.config.algo}, --engine {trainer.engine}, "
                 f"{num_runs(trainer)} run(s)")
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
    """One writer per run (``tensorboard/seed_S``, in a sweep ``tensorboard/CONFIG/seed_S``);
    every ``every`` updates: ``episode/mean100`` (once the run has finished an episode) and every
    loss metric, at the env step of that update."""

    def __init__(self, trainer: Any, out: Path, total_steps: int, write: bool = True) -> None:
        from tensorboardX import SummaryWriter

        self.writers = [SummaryWriter(str(out / "tensorboard" / _run_name(trainer, k)))
                        for k in range(num_runs(trainer))] if write else []
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
    from ._config import make_env

    t0 = time.perf_counter()
    summary = trainer.summary()
    if not write:
        return 0
    summary["setup_s"] = round(setup_s, 3)
    episodes = eval_episodes or trainer.config.eval_episodes
    sweep = _sweep_of(trainer)
    env = make_env(trainer.env_id, trainer.config)   # with the run's env_kwargs
    try:
        if sweep is None:
            summary["eval_mean_return"] = _round(evaluate_greedy(
                trainer.policy(0), env, episodes, first_seed=eval_seed(trainer.seed)))
        else:  # every run, each on its seed's episodes (the same for every configuration)
            for k, run in enumerate(summary["runs"]):
                run["eval_mean_return"] = _round(evaluate_greedy(
                    trainer.policy(k), env, episodes, first_seed=eval_seed(trainer.run_seed(k))))
            summary["eval_mean_return"] = summary["runs"][0]["eval_mean_return"]
    finally:
        env.close()
    summary["eval_s"] = round(time.perf_counter() - t0, 3)
    trainer.plot(out / "learning_curve.png")
    write_json(out / "summary.json", summary)
    if sweep is not None:
        from ._sweep import plot_sweep, sweep_table

        table = sweep_table(summary)
        (out / "sweep.md").write_text(table)
        plot_sweep(trainer, out / "sweep.png")
        print(table)
    steps_now = trainer.env_steps - before[0]
    seconds_now = trainer.train_seconds - before[1]
    compile_now = (trainer.compile_s or 0.0) - before[2]
    print(final_line(summary, out, steps_now, seconds_now, compile_now))
    return 0


def final_line(summary: dict[str, Any], out: Path, steps: int, seconds: float,
               compile_s: float) -> str:
    """The one line ``a2c-jax train`` ends with: this command's steps and speed, and the run's
    results, with no raw ``None`` and rounded figures."""
    n = summary.get("num_runs", summary["num_seeds"])
    runs = summary["runs"]
    sweep = summary.get("sweep")
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
    runs_txt, eval_of, wrote = f"{n} run(s)", f"seed {summary['seed']}", f"{out}/summary.json"
    if sweep is not None:
        runs_txt = (f"sweep of {sweep['configs']} config(s) x {sweep['seeds_per_config']} "
                    f"seed(s) = {n} run(s)")
        evals = [r["eval_mean_return"] for r in runs if r.get("eval_mean_return") is not None]
        eval_of, eval_txt = "over runs", f"{np.mean(evals):.1f}" if evals else "not finite"
        wrote += f", {out}/sweep.md"
    return (f"{summary['env']} {summary['algo']} --engine {summary['engine']}, {runs_txt}: "
            f"{steps:,} env steps per run in {seconds:.1f} s{compiled} ({rate:,.0f} steps/s"
            f"{' over all runs' if n > 1 else ''}), {solved_txt}, {mean_txt}, greedy eval "
            f"{'of ' if sweep is None else ''}{eval_of} {eval_txt}; wrote {wrote}")
