"""a2c_jax against coax, side by side: the same recipe script, the same machine, one run.

Runs the seed A2C recipe (``../shared/anchors/seed_recipe.py``) with ``--lib coax`` under the coax
virtualenv's python and with ``--lib a2c_jax`` under this interpreter, for the same seeds and
``--max-steps``, one after the other (never in parallel, so they do not share the CPU). Prints
env steps, wall time and env steps/s of each, and the ratio a2c_jax / coax of steps/s.
With ``--microbench`` it also runs ``benchmarks/microbench.py`` under both and prints the
per-call ratio table.

    .venv/bin/python benchmarks/vs_coax.py --seeds 0 --max-steps 10000 --microbench

The recipe's steps/s includes its setup (imports, jit compilation) and depends on episode lengths
(short episodes mean more resets and more per-episode bookkeeping), so the two libraries, which
learn differently, do not run identical workloads; the ratio is the claim, not the absolute speed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _peers import PeerRun, cpu_env, launch, peer_python, setup_hint  # noqa: E402

REPO = HERE.parent
DEFAULT_RECIPE = REPO / ".." / "shared" / "anchors" / "seed_recipe.py"
DEFAULT_COAX_PYTHON = peer_python("coax")
SETUP_HINT = f"{setup_hint('coax')}   (from the repository root; a few minutes)"


def _loadavg():
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _tail(run: PeerRun) -> str:
    return "\n".join((run.stdout + run.stderr).splitlines()[-15:])


def run_recipe(python: str, recipe: Path, lib: str, seed: int, args) -> dict:
    print(f"  running {lib} seed {seed} ...", flush=True)
    run = launch(python, [str(recipe), "--lib", lib, "--seed", str(seed), "--max-steps",
                          str(args.max_steps), "--max-seconds", str(args.max_seconds), "--objective",
                          args.objective, "--quiet"],
                 peer="coax" if lib == "coax" else None, cwd=REPO, env=cpu_env(),
                 on_failure="return")
    if not run.ok or not run.results:
        raise RuntimeError(f"{lib} recipe failed (rc {run.returncode}):\n{_tail(run)}")
    result = run.result
    result["process_s"] = round(run.seconds, 2)
    loop_s = result["wall_s"] - result.get("setup_s", 0.0)
    result["loop_steps_per_s"] = round(result["env_steps"] / loop_s, 1) if loop_s > 0 else None
    return result


def run_microbench(python: str, lib: str, quick: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{lib}.json"
        cmd = [str(HERE / "microbench.py"), "--lib", lib, "--json", str(path)]
        if quick:
            cmd.append("--quick")
        print(f"  microbench {lib} ...", flush=True)
        run = launch(python, cmd, peer="coax" if lib == "coax" else None, cwd=REPO,
                     on_failure="return")
        if not run.ok or not path.exists():
            raise RuntimeError(f"{lib} microbench failed (rc {run.returncode}):\n{_tail(run)}")
        return json.loads(path.read_text())


def _ratio(a, b):
    return round(a / b, 2) if a and b else None


def print_recipe_table(runs: list[dict], seeds: list[int]) -> dict:
    cols = ["lib", "seed", "env_steps", "episodes", "wall_s", "setup_s", "steps_per_s",
            "loop_steps_per_s"]
    print()
    print("".join(f"{c:>17}" if i else f"{c:<9}" for i, c in enumerate(cols)))
    for r in runs:
        print("".join(f"{r.get(c)!s:>17}" if i else f"{r.get(c)!s:<9}"
                      for i, c in enumerate(cols)))
    ratios = {}
    for seed in seeds:
        by = {r["lib"]: r for r in runs if r["seed"] == seed}
        if "coax" in by and "a2c_jax" in by:
            ratios[seed] = {
                "steps_per_s": _ratio(by["a2c_jax"]["steps_per_s"], by["coax"]["steps_per_s"]),
                "loop_steps_per_s": _ratio(by["a2c_jax"]["loop_steps_per_s"],
                                           by["coax"]["loop_steps_per_s"]),
                "mean_episode_len": {lib: round(r["env_steps"] / max(r["episodes"], 1), 1)
                                     for lib, r in by.items()},
            }
    print()
    for seed, q in ratios.items():
        print(f"seed {seed}: ratio a2c_jax/coax steps/s = {q['steps_per_s']}x overall "
              f"(setup and jit compile included), {q['loop_steps_per_s']}x in the loop; mean "
              f"episode length coax {q['mean_episode_len']['coax']}, a2c_jax "
              f"{q['mean_episode_len']['a2c_jax']}")
    totals = {}
    for lib in ("coax", "a2c_jax"):
        rs = [r for r in runs if r["lib"] == lib]
        if rs:
            totals[lib] = sum(r["env_steps"] for r in rs) / sum(r["wall_s"] for r in rs)
    overall = _ratio(totals.get("a2c_jax"), totals.get("coax"))
    if len(seeds) > 1 and overall is not None:
        print(f"all seeds: ratio a2c_jax/coax of total steps / total wall = {overall}x")
    return {"per_seed": ratios, "overall_steps_per_s": overall}


def print_micro_table(micro: dict) -> dict:
    a, c = micro["a2c_jax"]["results"], micro["coax"]["results"]
    names = list(dict.fromkeys([*c, *a]))
    w = max(len(n) for n in names) + 2
    print()
    print(f"{'call (blocked µs)':<{w}}{'coax':>11}{'a2c_jax':>11}{'coax/a2c_jax':>14}")
    table = {}
    for n in names:
        cu = c.get(n, {}).get("blocked_us")
        au = a.get(n, {}).get("blocked_us")
        r = _ratio(cu, au)
        table[n] = {"coax_us": cu, "a2c_jax_us": au, "speedup": r}
        print(f"{n:<{w}}{'n/a' if cu is None else f'{cu:,.1f}':>11}"
              f"{'n/a' if au is None else f'{au:,.1f}':>11}"
              f"{'n/a' if r is None else f'{r}x':>14}")
    ce = micro["coax"].get("recipe_us_per_env_step")
    ae = micro["a2c_jax"].get("recipe_us_per_env_step")
    if ce and ae:
        print(f"{'recipe estimate, µs per env step':<{w}}{ce:>11,.1f}{ae:>11,.1f}"
              f"{f'{_ratio(ce, ae)}x':>14}")
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE,
                        help="the recipe script (default: ../shared/anchors/seed_recipe.py "
                             "relative to the repository root)")
    parser.add_argument("--coax-python", default=DEFAULT_COAX_PYTHON,
                        help=f"python of the coax virtualenv (default {DEFAULT_COAX_PYTHON})")
    parser.add_argument("--python", default=sys.executable,
                        help="python with a2c_jax installed (default: this interpreter)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--max-steps", type=int, default=20_000,
                        help="env steps per run, both libraries (coax runs ~400 steps/s)")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--objective", choices=["vanilla", "ppo"], default="vanilla")
    parser.add_argument("--microbench", action="store_true",
                        help="also run benchmarks/microbench.py under both and compare per call")
    parser.add_argument("--quick-microbench", action="store_true",
                        help="with --microbench: its --quick mode")
    parser.add_argument("--no-recipe", action="store_true", help="skip the recipe runs")
    parser.add_argument("--json", metavar="PATH", help="also write everything as JSON")
    args = parser.parse_args(argv)

    recipe = args.recipe.resolve()
    if not recipe.exists():
        print(f"recipe not found: {recipe} (pass --recipe)", file=sys.stderr)
        return 2
    if not Path(args.coax_python).exists():
        print(f"coax's python not found at {args.coax_python}. Build the coax virtualenv with\n"
              f"    {SETUP_HINT}\nor pass --coax-python.", file=sys.stderr)
        return 2

    print(f"# a2c_jax vs coax, {datetime.datetime.now().isoformat(timespec='seconds')} on "
          f"{platform.node()} ({os.cpu_count()} CPUs), load avg {_loadavg()}")
    print(f"# both run the same script ({recipe}) on this machine in this one run, one after the "
          "other; timing on a shared CPU is noisy, so compare the ratio, not absolute speeds")
    out: dict = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
                 "machine": platform.node(), "cpus": os.cpu_count(), "recipe": str(recipe),
                 "max_steps": args.max_steps, "objective": args.objective, "seeds": args.seeds,
                 "pythons": {"coax": args.coax_python, "a2c_jax": args.python},
                 "loadavg_start": _loadavg()}

    if not args.no_recipe:
        runs = []
        for seed in args.seeds:
            runs.append(run_recipe(args.coax_python, recipe, "coax", seed, args))
            runs.append(run_recipe(args.python, recipe, "a2c_jax", seed, args))
        out["runs"] = runs
        out["ratios"] = print_recipe_table(runs, args.seeds)
        print("(steps_per_s = env_steps / wall_s, setup and jit compilation included; "
              "loop_steps_per_s excludes the setup before the first env step)")

    if args.microbench:
        print()
        micro = {"coax": run_microbench(args.coax_python, "coax", args.quick_microbench),
                 "a2c_jax": run_microbench(args.python, "a2c_jax", args.quick_microbench)}
        out["microbench"] = micro
        out["microbench_ratios"] = print_micro_table(micro)

    out["loadavg_end"] = _loadavg()
    print(f"\nload avg at the end: {out['loadavg_end']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
