"""How often coax's A2C recipe reaches 475 on CartPole-v1: many seeds, coax beside a2c_jax.

    .venv/bin/python benchmarks/recipe_seeds.py --seeds 20 --max-steps 100000 \\
        [--coax-python /tmp/a2c-anchors/coax/bin/python] [--cache runs/recipe_seeds] [--variants]

The recipe's runs swing between 500 and a collapse, so this script measures the rate over many
seeds, for the shared script ``../shared/anchors/seed_recipe.py`` (the seed's recipe, unchanged):

- ``coax``: ``--lib coax`` under coax's own interpreter (only with ``--coax-python``; about 3
  minutes per seed at 100k steps). Its per-seed results depend on the CPU model: rerun it on the
  machine that runs a2c_jax;
- ``a2c_jax``: ``--lib a2c_jax``, the same script;
- ``a2c_jax, truncation-aware``: ``--lib a2c_jax --truncation-aware``, the one-line form
  ``tracer.add(s, a, r, done, logp, truncated=truncated, s_next=s_next)``;

with ``--mse-td``, both a2c_jax forms with SimpleTD's loss switched to MSE by ``_mse_td.py`` (the
raw ``G - v(S)`` as the advantage, a2c_jax's semantics before it took coax's); and, with
``--variants``, the recipe as ``benchmarks/recipe.py`` writes it (one env loop, other
random streams than the shared script) with one change each: ``mse`` (SimpleTD's MSE loss, so
the advantage is the raw ``G - v(S)``: a2c_jax's semantics before it took coax's),
``truncation-aware``, ``entropy 0.01`` (an ``EntropyRegularizer``), and the last two together.

Every (configuration, seed) result is cached under ``--cache`` (the shared script's stdout, or
``recipe.py``'s episode returns as JSON), so an interrupted run resumes and a rerun only prints.
It prints a table (runs reaching 195 and 475 within 50k and within ``--max-steps`` steps, a 95%
Clopper-Pearson interval for the 475-by-the-budget rate, and the two-sided p-value of Fisher's
exact test of each configuration's count against coax's) and plots, per configuration, the share
of seeds that have reached an average of 475 by each env step.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess  # noqa: F401  (the runs go through _peers.launch, which calls subprocess.run)
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _peers import PeerError, cpu_env, launch, parse_results, setup_hint  # noqa: E402

ROOT = HERE.parent
SHARED_SCRIPT = ROOT.parent / "shared" / "anchors" / "seed_recipe.py"
EPISODE = re.compile(r"^ep (\d+) T (\d+) G (\S+) avg20")

# name -> keyword arguments of recipe.run
VARIANTS = {
    "recipe.py: defaults": {},
    "recipe.py: mse (raw G - v(S))": {"value_loss": "mse"},
    "recipe.py: truncation-aware": {"truncation_aware": True},
    "recipe.py: entropy 0.01": {"entropy": 0.01},
    "recipe.py: truncation-aware + entropy 0.01": {"truncation_aware": True, "entropy": 0.01},
}


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def parse_log(text: str, max_steps: int) -> tuple[list[int], list[float]]:
    """(env step at each episode's end, episode return) from the shared script's stdout."""
    ends, returns = [], []
    for line in text.splitlines():
        m = EPISODE.match(line)
        if m:
            ends.append(int(m.group(2)))
            returns.append(float(m.group(3)))
    results = parse_results(text)
    if not results:
        raise ValueError("the log has no RESULT line: the run did not finish")
    result = results[-1]
    if result["env_steps"] < max_steps:
        raise ValueError(f"the run stopped at {result['env_steps']} env steps (its time budget), "
                         f"before {max_steps}")
    return ends, returns


def run_shared(python: str, lib: str, flags: tuple[str, ...], seed: int, max_steps: int,
               path: Path, wrapper: tuple[str, ...] = ()) -> None:
    out = launch(python, [*wrapper, str(SHARED_SCRIPT), "--lib", lib, "--seed", str(seed),
                          "--max-steps", str(max_steps), "--max-seconds", "3600", *flags],
                 peer=lib if lib == "coax" else None, cwd=ROOT, env=cpu_env(force=True),
                 on_failure="return")
    if not out.ok or not out.results:
        raise PeerError(f"{' '.join(out.cmd)} failed:\n{out.stderr[-2000:]}")
    parse_log(out.stdout, max_steps)  # refuse a run cut short by its time budget
    tmp = path.with_suffix(".tmp")
    tmp.write_text(out.stdout)
    tmp.replace(path)


def run_variant(kwargs: dict, seed: int, max_steps: int, path: Path) -> None:
    import recipe

    res = recipe.run(seed, max_steps, progress=False, **kwargs)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"ends": res["_ends"], "returns": res["_returns"]}))
    tmp.replace(path)


def load(path: Path, max_steps: int) -> tuple[list[int], list[float]]:
    if path.suffix == ".log":
        return parse_log(path.read_text(), max_steps)
    data = json.loads(path.read_text())
    return data["ends"], data["returns"]


def first_reach(ends, returns, threshold: float) -> int | None:
    """First env step at which the mean of the last 20 returns is >= threshold."""
    r = np.asarray(returns, dtype=float)
    for i in range(19, len(r)):
        if r[i - 19: i + 1].mean() >= threshold:
            return int(ends[i])
    return None


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval, by bisection on the binomial tail (no scipy needed)."""
    def tail_ge(p):  # P(X >= k)
        return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))

    def tail_le(p):  # P(X <= k)
        return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(0, k + 1))

    def solve(f, target):  # f increasing in p on [0, 1]
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) < target else (lo, mid)
        return (lo + hi) / 2

    alpha = 1 - level
    lower = 0.0 if k == 0 else solve(tail_ge, alpha / 2)
    upper = 1.0 if k == n else solve(lambda p: -tail_le(p), -alpha / 2)
    return lower, upper


def two_of_three(p: float) -> float:
    return 3 * p**2 * (1 - p) + p**3


def fisher_exact(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of Fisher's exact test of ``k1/n1`` against ``k2/n2`` (no scipy needed).

    Under the null (one success rate), with the margins fixed, ``k1`` is hypergeometric; the
    p-value sums the probabilities of every table no more likely than the observed one (scipy's
    convention, with its relative tolerance for ties).
    """
    total, m = n1 + n2, k1 + k2

    def prob(x: int) -> float:
        return math.comb(n1, x) * math.comb(n2, m - x) / math.comb(total, m)

    observed = prob(k1)
    support = range(max(0, m - n2), min(n1, m) + 1)
    return min(1.0, sum(p for p in map(prob, support) if p <= observed * (1 + 1e-7)))


def reference_row(path: Path, budget: int, coax: tuple[int, int] | None) -> tuple[str, dict]:
    """A row from a stored coax record (``{"cpu", "steps", "seeds": {seed: RESULT}}``): the first
    step at which the 20-episode average reached 475, as the shared script reported it."""
    record = json.loads(path.read_text())
    if record.get("steps") != budget:
        raise ValueError(f"{path} was made with {record.get('steps')} steps, not {budget}")
    seeds = sorted(record["seeds"], key=int)
    r475 = [record["seeds"][s]["solved_at_step"] for s in seeds]
    k = sum(t is not None for t in r475)
    fisher = None if coax is None else fisher_exact(k, len(seeds), *coax)
    return f"coax, stored ({record['cpu']})", {
        "reach_475_by_50k": sum(t is not None and t <= 50_000 for t in r475),
        f"reach_475_by_{budget}": k,
        "fisher_p_vs_coax": None if fisher is None else round(fisher, 3),
        "first_step_475": r475, "seeds_run": [int(s) for s in seeds]}


def cpu_model() -> str:
    """This machine's CPU model name (coax's per-seed results depend on it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=20, help="seeds 0 .. N-1")
    p.add_argument("--max-steps", type=int, default=100_000)
    p.add_argument("--coax-python", default=None,
                   help=f"coax's interpreter ({setup_hint('coax')} builds it)")
    p.add_argument("--cached-only", action="store_true",
                   help="run nothing: tabulate the cached (configuration, seed) results only, "
                        "each configuration over the seeds it has")
    p.add_argument("--reference", type=Path, default=None, metavar="JSON",
                   help="a stored per-seed coax record (../shared/anchors/coax_recipe_runs/*.json, "
                        "made on another CPU) to add as its own row")
    p.add_argument("--mse-td", action="store_true",
                   help="also both a2c_jax forms with SimpleTD's loss MSE (benchmarks/_mse_td.py): "
                        "the raw G - v(S) as the advantage instead of it clipped")
    p.add_argument("--variants", action="store_true",
                   help="also the recipe.py variants (one change each; see the docstring)")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME",
                   help="run only these configurations (names as printed)")
    p.add_argument("--cache", type=Path, default=ROOT / "runs" / "recipe_seeds",
                   help="where each (configuration, seed) result is kept")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results",
                   help="where the summary JSON and the plot go")
    args = p.parse_args(argv)
    if args.seeds < 1 or args.max_steps < 50_000:
        p.error("--seeds must be >= 1 and --max-steps >= 50000 (the target's budget)")
    if not SHARED_SCRIPT.exists() and not args.cached_only:
        p.error(f"{SHARED_SCRIPT} is missing (the shared anchors checkout)")

    configs: dict[str, tuple[str, object]] = {}
    if args.coax_python:
        configs["coax"] = ("shared", (args.coax_python, "coax", ()))
    configs["a2c_jax"] = ("shared", (sys.executable, "a2c_jax", ()))
    configs["a2c_jax, truncation-aware"] = ("shared", (sys.executable, "a2c_jax",
                                                       ("--truncation-aware",)))
    if args.mse_td:  # the same script with SimpleTD's loss MSE: the raw G - v(S) as advantage
        mse_td = (str(HERE / "_mse_td.py"),)
        configs["a2c_jax, MSE TD error"] = ("shared", (sys.executable, "a2c_jax", (), mse_td))
        configs["a2c_jax, truncation-aware, MSE TD error"] = (
            "shared", (sys.executable, "a2c_jax", ("--truncation-aware",), mse_td))
    if args.variants:
        for name, kwargs in VARIANTS.items():
            configs[name] = ("variant", kwargs)
    if args.only:
        unknown = set(args.only) - set(configs)
        if unknown:
            p.error(f"unknown configuration(s) {sorted(unknown)}; choose from {list(configs)}")
        configs = {k: v for k, v in configs.items() if k in args.only}

    cache = args.cache / f"{args.max_steps}"
    cache.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[tuple[list[int], list[float]]]] = {}
    seeds_of: dict[str, list[int]] = {}
    for name, (kind, spec) in configs.items():
        runs, seeds_of[name] = [], []
        for seed in range(args.seeds):
            ext = ".log" if kind == "shared" else ".json"
            path = cache / f"{slug(name)}_seed{seed}{ext}"
            if not path.exists() and args.cached_only:
                continue
            if not path.exists():
                t0 = time.perf_counter()
                if kind == "shared":
                    python, lib, flags, *wrapper = spec
                    run_shared(python, lib, flags, seed, args.max_steps, path, *wrapper)
                else:
                    run_variant(spec, seed, args.max_steps, path)
                print(f"  {name}, seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
            runs.append(load(path, args.max_steps))
            seeds_of[name].append(seed)
        if runs:
            results[name] = runs

    budget = args.max_steps
    print(f"\nCartPole-v1, coax's A2C recipe, seeds 0-{args.seeds - 1} (or those cached), {budget} "
          "env steps each; 'reach X': the mean of the last 20 episode returns reached X; "
          f"CPU: {cpu_model()}")
    by_budget = f"475 by {budget // 1000}k"
    head = (f"{'configuration':44} {'195 by 50k':>10} {'475 by 50k':>10} {by_budget:>11}"
            f" {'95% interval':>13} {'Fisher p vs coax':>16} {'seeds 0-2 (best avg20 by 50k)':>30}")
    print(head)
    table = {}
    coax = None  # (count, seeds) of coax on this machine
    if "coax" in results:
        coax = (sum(first_reach(e, g, 475) is not None for e, g in results["coax"]),
                len(results["coax"]))
    for name, runs in results.items():
        n = len(runs)
        r195 = [first_reach(e, g, 195) for e, g in runs]
        r475 = [first_reach(e, g, 475) for e, g in runs]
        k50 = sum(t is not None and t <= 50_000 for t in r475)
        kall = sum(t is not None for t in r475)
        lo, hi = clopper_pearson(kall, n)
        fisher = None if coax is None else fisher_exact(kall, n, *coax)
        best50 = []
        for e, g in (run for seed, run in zip(seeds_of[name], runs) if seed < 3):
            g50 = [x for t, x in zip(e, g) if t <= 50_000]
            best50.append(max((float(np.mean(g50[i - 19: i + 1])) for i in range(19, len(g50))),
                              default=float("nan")))
        row = {
            "reach_195_by_50k": sum(t is not None and t <= 50_000 for t in r195),
            "reach_475_by_50k": k50, f"reach_475_by_{budget}": kall,
            f"rate_475_by_{budget}_ci95": [round(lo, 3), round(hi, 3)],
            "fisher_p_vs_coax": None if fisher is None else round(fisher, 3),
            "p_two_of_three_by_50k": round(two_of_three(k50 / n), 3),
            "best_avg20_by_50k_seeds_0_2": [round(b, 1) for b in best50],  # those that ran
            "first_step_475": r475,
            "seeds_run": seeds_of[name],
        }
        table[name] = row
        print(f"{name:44} {row['reach_195_by_50k']:>7}/{n:<2} {k50:>7}/{n:<2} {kall:>8}/{n:<2} "
              f"{f'{lo:.2f}-{hi:.2f}':>13} "
              f"{'-' if fisher is None else f'{fisher:.3f}':>16} "
              f"{' / '.join(f'{b:.0f}' for b in best50):>30}", flush=True)
    if args.reference is not None:
        name, row = reference_row(args.reference, budget, coax)
        table[name] = row
        k, n = row[f"reach_475_by_{budget}"], len(row["seeds_run"])
        fisher = row["fisher_p_vs_coax"]
        print(f"{name:44} {'-':>10} {row['reach_475_by_50k']:>7}/{n:<2} {k:>8}/{n:<2} "
              f"{'-':>13} {'-' if fisher is None else f'{fisher:.3f}':>16} {'-':>30}")
    summary = args.out / f"recipe_seeds_{budget}.json"
    summary.write_text(json.dumps(
        {"seeds": args.seeds, "max_steps": budget, "cpu": cpu_model(), "configurations": table},
        indent=2))
    png = args.out / f"recipe_seeds_{budget}.png"
    plot(table, budget, png)
    print(f"\nsummary: {summary}; plot: {png}")
    return 0


def plot(table: dict, budget: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.linspace(0, budget, 401)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, row in table.items():
        n = len(row["first_step_475"])
        hits = np.asarray([t for t in row["first_step_475"] if t is not None], dtype=float)
        share = [(hits <= s).sum() / n for s in steps]
        # the shared script's runs solid, recipe.py's (other random streams) dashed
        ax.step(steps, share, where="post", label=f"{name} ({n} seeds)",
                lw=1.3 if name.startswith("recipe.py") else 2.2,
                ls="--" if name.startswith("recipe.py") else "-")
    ax.axvline(50_000, color="grey", ls="--", lw=0.8)
    ax.set(xlabel="env steps", ylabel="share of seeds whose avg20 has reached 475",
           title="coax's A2C recipe on CartPole-v1: how often it reaches 475", ylim=(0, 1))
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
