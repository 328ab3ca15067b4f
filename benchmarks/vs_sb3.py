"""a2c_jax's `a2c-jax train` against Stable-Baselines3's A2C, side by side, same settings.

    .venv/bin/python benchmarks/vs_sb3.py --seeds 0 1 2 --steps 300000

Runs `../shared/anchors/sb3_a2c.py` (SB3 2.9.2 on torch 2.13.0 CPU, one thread; build it with
`bash ../shared/anchors/setup.sh sb3`) and `a2c-jax train` on the same env, seeds and step budget
(rl-baselines3-zoo's CartPole-v1 settings: 8 envs, 5-step rollouts, RMSprop 7e-4, gamma 0.99, no
GAE, no entropy bonus), one after the other on this machine, and prints env steps/s (training
loop wall time, as each reports it), the step at which the mean of the last 100 episodes reached
the env's threshold, the greedy evaluation return, and the speed ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import PeerRun, cpu_env, launch, peer_python, setup_hint  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run(python: str, args: list[str], peer: str | None = None) -> PeerRun:
    return launch(python, args, peer=peer, cwd=ROOT, env=cpu_env(force=True), on_failure="exit")


def env_ceiling(env_id: str, num_envs: int, steps: int, seed: int = 0) -> float:
    """Env steps/s of gymnasium's ``SyncVectorEnv(num_envs)`` alone (the trainer's own vector env,
    same-step autoreset) stepped with uniformly random actions drawn beforehand: the most any
    trainer stepping these envs from Python can reach on this machine."""
    import time

    import numpy as np

    from a2c_jax.training import make_vector_env

    envs = make_vector_env(env_id, num_envs)
    envs.reset(seed=seed)
    n = max(1, steps // num_envs)
    space = envs.single_action_space
    rng = np.random.default_rng(seed)
    actions = (rng.integers(0, space.n, (n, num_envs)) if hasattr(space, "n")
               else rng.uniform(space.low, space.high, (n, num_envs, *space.shape)).astype(space.dtype))
    t0 = time.perf_counter()
    for a in actions:
        envs.step(a)
    seconds = time.perf_counter() - t0
    envs.close()
    return n * num_envs / seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=300_000)
    p.add_argument("--sb3-python", default=peer_python("sb3"))
    p.add_argument("--sb3-script", type=Path, default=ROOT.parent / "shared" / "anchors" / "sb3_a2c.py")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if not Path(args.sb3_python).exists() or not args.sb3_script.exists():
        sys.exit(f"SB3 anchor missing ({args.sb3_python}, {args.sb3_script}); build it with "
                 f"`{setup_hint('sb3')}`")
    rows = []
    for seed in args.seeds:
        sb3 = run(args.sb3_python, [str(args.sb3_script), "--env", args.env, "--seed", str(seed),
                                    "--steps", str(args.steps)], peer="sb3")
        rows.append({"lib": "sb3", **sb3.result})
        with tempfile.TemporaryDirectory() as out:
            run(sys.executable, ["-m", "a2c_jax", "train", "--env", args.env, "--algo", "a2c",
                                 "--seed", str(seed), "--steps", str(args.steps), "--out", out,
                                 "--no-progress"])
            rows.append({"lib": "a2c_jax", **json.loads((Path(out) / "summary.json").read_text())})
        print(f"seed {seed} done", file=sys.stderr, flush=True)
    num_envs = next(r for r in rows if r["lib"] == "a2c_jax")["num_envs"]
    ceiling = env_ceiling(args.env, num_envs, min(args.steps, 200_000))
    print(f"\n{args.env}, {args.steps} env steps per run, same machine, one after the other\n")
    print(f"{'lib':8s} {'seed':>4s} {'steps/s':>9s} {'wall_s':>7s} {'compile_s':>9s} "
          f"{'solved_at':>10s} {'mean100':>8s} {'eval':>7s}")
    for r in rows:
        compile_s = r.get("compile_s")
        print(f"{r['lib']:8s} {r['seed']:4d} {r['steps_per_s']:9.0f} {r['wall_s']:7.1f} "
              f"{compile_s if compile_s is not None else float('nan'):9.2f} "
              f"{str(r['solved_at_step']):>10s} {r['final_mean_return'] or float('nan'):8.1f} "
              f"{r['eval_mean_return'] if r['eval_mean_return'] is not None else float('nan'):7.1f}")
    print(f"\nenv-only ceiling, SyncVectorEnv({num_envs}) with random actions: {ceiling:,.0f} steps/s")
    ratios = []
    for seed in args.seeds:
        sb3, ours = (next(r for r in rows if r["lib"] == lib and r["seed"] == seed)
                     for lib in ("sb3", "a2c_jax"))
        ratios.append(ours["steps_per_s"] / sb3["steps_per_s"])
        print(f"seed {seed}: a2c_jax / sb3 steps/s = {ratios[-1]:.2f}x; a2c_jax at "
              f"{100 * ours['steps_per_s'] / ceiling:.0f}% of the ceiling, sb3 at "
              f"{100 * sb3['steps_per_s'] / ceiling:.0f}%")
    for lib in ("sb3", "a2c_jax"):
        solved = sum(r["solved_at_step"] is not None for r in rows if r["lib"] == lib)
        print(f"{lib}: solved (mean of the last 100 episodes >= threshold) in {solved}/"
              f"{len(args.seeds)} seeds within {args.steps:,} steps")
    print(f"mean ratio {sum(ratios) / len(ratios):.2f}x (a2c_jax's steps/s includes its first "
          "update call, which compiles)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "ceiling_steps_per_s": ceiling}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
