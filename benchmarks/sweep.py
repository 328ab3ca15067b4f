"""A hyperparameter sweep in one compiled program against the same runs one after another.

    .venv/bin/python benchmarks/sweep.py [--steps 40000] [--seeds 4] [--json PATH]

The grid: ``learning_rate`` 7e-4, 1.5e-3, 3e-3 x ``ent_coef`` 0, 0.01 (6 configurations) x
``--seeds`` seeds on CartPole-v1 with the zoo's A2C preset (8 envs, 5-step rollouts, RMSprop),
``--steps`` env steps per run.

1. One program: ``JitTrainer(..., num_seeds=K, sweep=grid)``, all ``6 * K`` runs ``vmap``-ed
   (what ``a2c-jax train --engine jit --sweep learning_rate=... --sweep ent_coef=...
   --num-seeds K`` runs).
2. One after another: for every configuration and seed, a ``JitTrainer`` of that configuration
   with one seed, its own compilation and its own run.

Both use ``chunks=1`` (one compiled call per trainer), so what is timed is set-up (building the
networks and updaters, the initial state), compilation and training. Printed: each part and the
totals with and without compilation, then the agreement run for run: how many runs end with
bitwise the same parameters, the largest parameter difference, and the final mean return (last
100 episodes) of each run in both. The sequential runs are not ``vmap``-ed (one run: the plain
scan), the sweep's are, and XLA:CPU may round a batched matmul differently, so small
differences can grow over a long run (a different sampled action makes a different episode);
the script reports what it sees, including for how many updates each run's learning curve
(the mean return of the last 100 episodes after every update) is the same in both.

Prints the load average: on a shared 2-core machine other jobs move the absolute times, so
compare within one run of this script. ``RESULT {json}`` lines: one per mode, one with the
agreement.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

GRID = {"learning_rate": [7e-4, 1.5e-3, 3e-3], "ent_coef": [0.0, 0.01]}


def _timed_run(make, steps: int) -> tuple[object, dict]:
    t0 = time.perf_counter()
    trainer = make()
    setup = time.perf_counter() - t0
    trainer.run(steps, progress=False, chunks=1)
    return trainer, {"setup_s": setup, "compile_s": trainer.compile_s,
                     "train_s": trainer.train_seconds}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=40_000, help="env steps per run")
    p.add_argument("--seeds", type=int, default=4, help="seeds per configuration")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()

    import jax
    import numpy as np

    from a2c_jax.training import preset
    from a2c_jax.training._jit import JitTrainer
    from a2c_jax.training._sweep import Sweep

    env, K = "CartPole-v1", args.seeds
    base = preset(env, "a2c")
    sweep = Sweep.from_grid(GRID)
    runs = len(sweep) * K
    print(f"load average before: {os.getloadavg()[0]:.2f}; jax {jax.__version__}, "
          f"{jax.devices()[0].platform}; {len(sweep)} configs x {K} seeds = {runs} runs of "
          f"{args.steps:,} env steps")

    one, t_one = _timed_run(lambda: JitTrainer(env, base, seed=0, num_seeds=K, sweep=sweep),
                            args.steps)
    s_one = one.summary()

    t_seq = {"setup_s": 0.0, "compile_s": 0.0, "train_s": 0.0}
    seq_params, seq_final, seq_curves = [], [], []
    for r in range(runs):
        config, seed = one.run_config(r), one.run_seed(r)
        tr, t = _timed_run(lambda: JitTrainer(env, base.replace(**config), seed=seed), args.steps)
        for k in t_seq:
            t_seq[k] += t[k]
        seq_params.append(tr.params(0))
        seq_final.append(tr.summary()["final_mean_return"])
        seq_curves.append(tr.curves()["mean100"][0])
        del tr

    rows = []
    for mode, t in (("one_program", t_one), ("one_after_another", t_seq)):
        total = t["setup_s"] + t["compile_s"] + t["train_s"]
        rows.append({"mode": mode, "runs": runs, "env_steps_per_run": one.env_steps,
                     "setup_s": round(t["setup_s"], 2), "compile_s": round(t["compile_s"], 2),
                     "train_s": round(t["train_s"], 2), "total_s": round(total, 2),
                     "total_without_compile_s": round(total - t["compile_s"], 2)})
    print(f"\n{'mode':18s} {'set-up s':>9s} {'compile s':>10s} {'train s':>8s} {'total s':>8s} "
          f"{'w/o compile':>12s}")
    for row in rows:
        print(f"{row['mode']:18s} {row['setup_s']:9.1f} {row['compile_s']:10.1f} "
              f"{row['train_s']:8.1f} {row['total_s']:8.1f} {row['total_without_compile_s']:12.1f}")
    a, b = rows
    print(f"one program / one after another: total {a['total_s'] / b['total_s']:.3f}, "
          f"without compilation {a['total_without_compile_s'] / b['total_without_compile_s']:.3f}")

    same, max_diff, final_diff, prefixes = 0, 0.0, [], []
    curves = one.curves()["mean100"]
    print(f"\n{'run':>3s} {'config':34s} {'seed':>4s} {'final (one program)':>20s} "
          f"{'final (alone)':>14s} {'max |Δparam|':>13s} {'same curve for':>15s}")
    for r in range(runs):
        mine = jax.tree.leaves(one.params(r))
        theirs = jax.tree.leaves(seq_params[r])
        diff = max(float(np.max(np.abs(x - y))) for x, y in zip(mine, theirs))
        same += all(np.array_equal(x, y) for x, y in zip(mine, theirs))
        max_diff = max(max_diff, diff)
        f1, f2 = s_one["runs"][r]["final_mean_return"], seq_final[r]
        if f1 is not None and f2 is not None:
            final_diff.append(abs(f1 - f2))
        # the updates over which the mean of the last 100 episodes is the same in both
        differs = curves[r] != seq_curves[r]
        prefix = int(np.argmax(differs)) if differs.any() else len(differs)
        prefixes.append(prefix)
        print(f"{r:3d} {sweep.label(r // K):34s} {one.run_seed(r):4d} {f1!s:>20s} {f2!s:>14s} "
              f"{diff:13.3g} {f'{prefix}/{len(differs)}':>15s}")
    agreement = {"check": "per-run agreement", "runs": runs, "bitwise_same_params": same,
                 "same_final_mean_return": sum(d == 0 for d in final_diff),
                 "same_curve_updates_min": min(prefixes), "updates": int(curves.shape[1]),
                 "max_abs_param_diff": max_diff,
                 "max_abs_final_mean_return_diff": max(final_diff) if final_diff else None}
    print(f"\n{same}/{runs} runs end with bitwise the same parameters, "
          f"{agreement['same_final_mean_return']}/{runs} with the same final mean return; largest "
          f"parameter difference {max_diff:.3g}; largest difference of the final mean return "
          f"{agreement['max_abs_final_mean_return_diff']}; every run's learning curve is the "
          f"same in both for at least {min(prefixes)} of {curves.shape[1]} updates")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for row in rows:
        print("RESULT " + json.dumps(row))
    print("RESULT " + json.dumps(agreement))
    if args.json is not None:
        args.json.write_text(json.dumps({"modes": rows, "agreement": agreement}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
