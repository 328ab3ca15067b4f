"""The fully-jitted engine on this machine: the whole command, throughput, K seeds, other envs.

    .venv/bin/python benchmarks/jit_engine.py [--seeds 0 1 2] [--json PATH] [--plot PATH]
        [--purejaxrl-python /tmp/a2c-anchors/purejaxrl/bin/python
         --purejaxrl-runner /tmp/a2c-anchors/purejaxrl/run.py]

1. ``a2c-jax train --env CartPole-v1 --engine jit`` (rl-baselines3-zoo's A2C settings: 8 envs,
   5-step rollouts, RMSprop 7e-4, 500k steps) as a user runs it, one subprocess per seed: the
   whole command's wall time (interpreter start, imports, set-up, compilation, training, greedy
   evaluation, plots), and from its ``summary.json`` the compilation seconds, env steps/s after
   compilation, the step at which the mean of the last 100 episodes reached 475, and the
   training seconds to that point (``solved_at_step / steps_per_s``).
2. ``--num-seeds K`` for K = 1, 4, 16 (200k steps per run): aggregate env steps/s of the
   compiled program, compilation excluded and reported.
3. Acrobot-v1 (A2C preset) and Pendulum-v1 (PPO preset): throughput and the final mean return.
4. With ``--purejaxrl-python`` and ``--purejaxrl-runner``: PureJaxRL's PPO (its own CartPole
   config) run right after ours, same seeds, one after the other; its runner prints a
   ``RESULT {json}`` line with ``compile_s``, ``steps_per_s`` and ``solved_at_step_last100`` /
   ``time_to_solve_last100_s`` (the first step at which the mean of the last 100 finished
   episodes reached 475, as for a2c_jax, and ``solved_at_step_last100 / steps_per_s``). The ratio
   of the training seconds to a solved CartPole is printed. The runner is not part of this
   repository: ``benchmarks/README.md`` says how it was built from PureJaxRL's own files.

Runs never overlap. The load average is printed: on a shared 2-core machine other jobs move
absolute figures; compare within one run of this script.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import cpu_env, launch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def whole_command(seed: int, out: Path) -> dict:
    run = launch(sys.executable, ["-m", "a2c_jax", "train", "--env", "CartPole-v1", "--engine",
                                  "jit", "--seed", str(seed), "--out", str(out), "--no-progress"],
                 cwd=ROOT, env=cpu_env(), on_failure="exit")
    wall = run.seconds
    s = json.loads((out / "summary.json").read_text())
    solved = s["solved_at_step"]
    return {"seed": seed, "command_s": round(wall, 2), "setup_s": s["setup_s"],
            "compile_s": s["compile_s"], "train_s": s["wall_s"], "steps_per_s": s["steps_per_s"],
            "env_steps": s["env_steps"], "solved_at_step": solved,
            "time_to_solve_s": None if solved is None else round(solved / s["steps_per_s"], 3),
            "final_mean_return": s["final_mean_return"], "eval_mean_return": s["eval_mean_return"]}


def in_process(env_id: str, num_seeds: int, steps: int, seed: int = 0) -> dict:
    import numpy as np

    from a2c_jax.training import preset
    from a2c_jax.training._jit import JitTrainer

    algo = "ppo" if env_id == "Pendulum-v1" else "a2c"
    trainer = JitTrainer(env_id, preset(env_id, algo), seed=seed, num_seeds=num_seeds)
    trainer.run(steps, progress=False)
    s = trainer.summary()
    return {"env": env_id, "algo": algo, "num_seeds": num_seeds, "env_steps_per_run": s["env_steps"],
            "compile_s": s["compile_s"], "train_s": s["wall_s"],
            "steps_per_s": s["steps_per_s_all_runs"],  # aggregate over the runs
            "solved": sum(r["solved_at_step"] is not None for r in s["runs"]),
            "final_mean_return": round(float(np.mean([r["final_mean_return"] for r in s["runs"]
                                                      if r["final_mean_return"] is not None]
                                                     or [np.nan])), 1),
            "curves": trainer.curves()["mean100"].tolist(), "steps_per_update": trainer.steps_per_update}


def purejaxrl(python: str, runner: str, seed: int) -> dict:
    run = launch(python, [runner, "--seed", str(seed)], peer="purejaxrl", cwd=None, env=cpu_env(),
                 on_failure="exit")
    r = {"command_s": round(run.seconds, 2), **run.result}
    # "solved" as for a2c_jax: the mean of the last 100 finished episodes >= 475
    if "solved_at_step_last100" in r:
        r["solved_at_step"], r["time_to_solve_s"] = (r["solved_at_step_last100"],
                                                     r["time_to_solve_last100_s"])
    return r


def plot(cartpole: list[dict], scaling: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    big = max(scaling, key=lambda r: r["num_seeds"])
    curves = np.asarray(big["curves"])
    steps = np.arange(1, curves.shape[1] + 1) * big["steps_per_update"]
    for c in curves:
        ax1.plot(steps, c, lw=0.8, alpha=0.7)
    ax1.axhline(475, color="grey", ls="--", lw=0.8)
    ax1.xaxis.set_major_formatter(lambda x, _: f"{x / 1e3:.0f}k")
    ax1.set(xlabel="env steps per run", ylabel="mean return, last 100 episodes",
            title=f"CartPole-v1, zoo A2C, --engine jit, {big['num_seeds']} seeds at once")
    ks = [r["num_seeds"] for r in scaling]
    ax2.bar([str(k) for k in ks], [r["steps_per_s"] / 1e3 for r in scaling], color="tab:blue")
    for i, r in enumerate(scaling):
        ax2.text(i, r["steps_per_s"] / 1e3, f"{r['steps_per_s'] / 1e3:.0f}k", ha="center",
                 va="bottom")
    ax2.set(xlabel="--num-seeds K", ylabel="aggregate env steps/s (thousands)",
            title="one compiled program, compilation excluded")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--ks", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--scaling-steps", type=int, default=200_000)
    p.add_argument("--skip-other-envs", action="store_true")
    p.add_argument("--purejaxrl-python", default=None)
    p.add_argument("--purejaxrl-runner", default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plot", type=Path, default=None)
    args = p.parse_args(argv)
    import jax

    print(f"load average before: {os.getloadavg()[0]:.2f}; jax {jax.__version__}, "
          f"{jax.devices()[0].device_kind}, {os.cpu_count()} CPUs", flush=True)
    result: dict = {"jax": jax.__version__, "device": jax.devices()[0].device_kind}

    rows, peer = [], []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as out:
            rows.append(whole_command(seed, Path(out)))
        if args.purejaxrl_python and args.purejaxrl_runner:
            peer.append(purejaxrl(args.purejaxrl_python, args.purejaxrl_runner, seed))
    result["cartpole_command"], result["purejaxrl"] = rows, peer
    print("\n1. a2c-jax train --env CartPole-v1 --engine jit (zoo A2C, 8 envs, 500k steps)")
    print(f"{'seed':>4} {'command_s':>9} {'compile_s':>9} {'train_s':>7} {'steps/s':>9} "
          f"{'solved_at':>9} {'to_solve_s':>10} {'mean100':>7} {'eval':>6}")
    for r in rows:
        print(f"{r['seed']:>4} {r['command_s']:>9.2f} {r['compile_s']:>9.2f} {r['train_s']:>7.2f} "
              f"{r['steps_per_s']:>9.0f} {str(r['solved_at_step']):>9} "
              f"{str(r['time_to_solve_s']):>10} {r['final_mean_return']:>7.1f} "
              f"{r['eval_mean_return']:>6.1f}")
    if peer:
        print("\n   PureJaxRL PPO (its CartPole config), same seeds, run after each of ours")
        for r in peer:
            print(f"{r['seed']:>4} {r['command_s']:>9.2f} {r['compile_s']:>9.2f} "
                  f"{r['train_s']:>7.2f} {r['steps_per_s']:>9.0f} {str(r['solved_at_step']):>9} "
                  f"{str(r['time_to_solve_s']):>10} {r['final_mean_return']:>7.1f}")
        ours = [r["time_to_solve_s"] for r in rows if r["time_to_solve_s"]]
        theirs = [r["time_to_solve_s"] for r in peer if r.get("time_to_solve_s")]
        if ours and theirs:
            ratio = (sum(theirs) / len(theirs)) / (sum(ours) / len(ours))
            result["time_to_solve_ratio"] = round(ratio, 2)
            print(f"   mean training seconds to a solved CartPole: PureJaxRL "
                  f"{sum(theirs) / len(theirs):.2f} / a2c_jax {sum(ours) / len(ours):.2f} "
                  f"= {ratio:.1f}x")

    scaling = [in_process("CartPole-v1", k, args.scaling_steps) for k in args.ks]
    result["scaling"] = [{k: v for k, v in r.items() if k != "curves"} for r in scaling]
    print(f"\n2. --num-seeds K, CartPole-v1 zoo A2C, {args.scaling_steps} steps per run")
    print(f"{'K':>3} {'compile_s':>9} {'train_s':>7} {'steps/s':>10} {'solved':>6}")
    for r in scaling:
        print(f"{r['num_seeds']:>3} {r['compile_s']:>9.2f} {r['train_s']:>7.2f} "
              f"{r['steps_per_s']:>10.0f} {r['solved']:>4}/{r['num_seeds']}")

    if not args.skip_other_envs:
        others = [in_process("Acrobot-v1", 1, 500_000), in_process("Pendulum-v1", 1, 300_000)]
        result["other_envs"] = [{k: v for k, v in r.items() if k != "curves"} for r in others]
        print("\n3. other JAX-native envs (presets), one run each")
        print(f"{'env':12} {'algo':4} {'steps':>7} {'compile_s':>9} {'train_s':>7} {'steps/s':>9} "
              f"{'mean100':>8}")
        for r in others:
            print(f"{r['env']:12} {r['algo']:4} {r['env_steps_per_run']:>7} {r['compile_s']:>9.2f} "
                  f"{r['train_s']:>7.2f} {r['steps_per_s']:>9.0f} {r['final_mean_return']:>8.1f}")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    if args.plot:
        plot(rows, scaling, args.plot)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
