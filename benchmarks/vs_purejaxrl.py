"""The jit engine against PureJaxRL's PPO on CartPole-v1: same settings, same machine, one run.

    .venv/bin/python benchmarks/vs_purejaxrl.py [--num-seeds 1 16] [--steps 500000]

For each K of ``--num-seeds``: PureJaxRL's own ``ppo.py`` (unmodified, through
``../shared/anchors/purejaxrl_ppo.py --num-seeds K``: vmapped over K seeds, one compiled call)
and then ``JitTrainer`` with PureJaxRL's CartPole config (4 envs, 128-step rollouts, 4 epochs of 4
minibatches, Adam 2.5e-4, gamma 0.99, GAE lambda 0.95, clip 0.2, entropy 0.01, value weight 0.5,
gradient clipping 0.5, two 64x64 tanh networks) over K seeds in one program. The work per step
is the same; the learning is not strictly comparable: PureJaxRL anneals its learning rate, clips
its value loss, initialises orthogonally and runs one Adam (one gradient clip) over actor and
critic together, where a2c_jax has two optimizers, each clipped. Compilation is timed apart from training
for both; throughput is env steps over all seeds per training second. Build PureJaxRL with
``bash ../shared/anchors/setup.sh purejaxrl``. Last line: ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import cpu_env, launch, parse_results, peer_python  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT.parent / "shared" / "anchors" / "purejaxrl_ppo.py"


def purejaxrl_config():
    from a2c_jax.training import TrainConfig

    return TrainConfig(algo="ppo", num_envs=4, n_steps=128, gamma=0.99, gae_lambda=0.95,
                       learning_rate=2.5e-4, optimizer="adam", ent_coef=0.01, vf_coef=0.5,
                       max_grad_norm=0.5, normalize_advantage=True, hidden=(64, 64),
                       activation="tanh", n_epochs=4, batch_size=128, clip_epsilon=0.2)


def ours(num_seeds: int, steps: int, seed: int) -> dict:
    from a2c_jax.training import JitTrainer

    jt = JitTrainer("CartPole-v1", purejaxrl_config(), seed=seed, num_seeds=num_seeds)
    per_chunk, _ = jt.plan(steps)
    compile_s = jt.compile(per_chunk)
    jt.run(steps, progress=False)
    s = jt.summary()
    return {"lib": "a2c_jax jit", "num_seeds": num_seeds, "env_steps": s["env_steps_all_runs"],
            "compile_s": round(compile_s, 2), "train_s": s["wall_s"],
            "steps_per_s": s["steps_per_s_all_runs"],
            "solved": sum(r["solved_at_step"] is not None for r in s["runs"]),
            "solved_at_step": s["solved_at_step"], "final_mean_return": s["final_mean_return"]}


def peer(python: str, num_seeds: int, steps: int, seed: int) -> dict:
    run = launch(python, [str(RUNNER), "--seed", str(seed), "--num-seeds", str(num_seeds),
                          "--total-steps", str(steps)], peer="purejaxrl", cwd=None,
                 env={**os.environ, **cpu_env()}, on_failure="exit")
    r = parse_results(run.stdout)[-1]
    return {"lib": "purejaxrl ppo", "num_seeds": num_seeds, "env_steps": r["env_steps"],
            "compile_s": r["compile_s"], "train_s": r["train_s"], "steps_per_s": r["steps_per_s"],
            "solved": None, "solved_at_step": r["solved_at_step"],
            "final_mean_return": r["final_mean_return"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-seeds", type=int, nargs="+", default=[1, 16])
    p.add_argument("--steps", type=int, default=500_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--purejaxrl-python", default=None,
                   help="default: the anchor's interpreter (setup.sh purejaxrl)")
    args = p.parse_args(argv)
    python = args.purejaxrl_python or peer_python("purejaxrl")
    rows = []
    for k in args.num_seeds:
        rows.append(peer(python, k, args.steps, args.seed))
        rows.append(ours(k, args.steps, args.seed))
        print(f"K={k} done", file=sys.stderr, flush=True)
    print(f"\nCartPole-v1 PPO, PureJaxRL's config, {args.steps:,} env steps per run, load "
          f"{os.getloadavg()[0]:.1f}\n")
    print(f"{'lib':14s} {'seeds':>5s} {'compile_s':>9s} {'train_s':>8s} {'steps/s':>11s} "
          f"{'solved@ (run 0)':>15s} {'mean100':>8s}")
    for r in rows:
        print(f"{r['lib']:14s} {r['num_seeds']:5d} {r['compile_s']:9.1f} {r['train_s']:8.2f} "
              f"{r['steps_per_s']:11,.0f} {str(r['solved_at_step']):>15s} "
              f"{r['final_mean_return'] if r['final_mean_return'] is not None else float('nan'):8.1f}")
    ratios = {}
    for k in args.num_seeds:
        theirs, mine = (next(r for r in rows if r["num_seeds"] == k and r["lib"].startswith(lib))
                        for lib in ("purejaxrl", "a2c_jax"))
        ratios[k] = round(mine["steps_per_s"] / theirs["steps_per_s"], 2)
        print(f"K={k}: a2c_jax / PureJaxRL env steps/s = {ratios[k]:.2f}x")
    print("RESULT " + json.dumps({"rows": rows, "ratios": ratios}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
