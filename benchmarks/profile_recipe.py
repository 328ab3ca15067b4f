"""Where the seed recipe's time per env step goes, on a2c_jax or on coax.

Runs ``seed_recipe.py`` in this process, unchanged, in one of two modes:

``--mode components`` (default): wraps the library's hot-path methods (``Policy.__call__``,
``TrainMonitor.step``, ``NStep.add``/``pop``, ``SimpleReplayBuffer.add``/``sample``,
``SimpleTD.update``, ``VanillaPG.update``, ``sync_shared_params``, ...) with a timer and prints
the total and µs per env step of each. The wrappers cost well under 1 µs a call. Asynchronous
calls are charged to whoever waits: an update's device time shows up in the next call that
needs its result (``pi(s)`` after the updates, or the next update).

``--mode cprofile``: the whole run under ``cProfile``; prints the top functions by own time and
by cumulative time. cProfile inflates Python-heavy code, so read it for *where*, not *how much*.

    .venv/bin/python benchmarks/profile_recipe.py --max-steps 10000
    /tmp/a2c-anchors/coax/bin/python benchmarks/profile_recipe.py --lib coax --max-steps 3000
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import importlib
import io
import logging
import os
import pstats
import runpy
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RECIPE = REPO.parent / "shared" / "anchors" / "seed_recipe.py"


class Clock:
    def __init__(self):
        self.total: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.first: dict[str, float] = {}  # the first call: jit compilation lands there
        self.depth = 0  # only the outermost wrapped call is charged (no double counting)

    def wrap(self, name: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if self.depth:
                return fn(*args, **kwargs)
            self.depth += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                if name in self.first:
                    self.total[name] += dt
                    self.calls[name] += 1
                else:
                    self.first[name], self.total[name], self.calls[name] = dt, 0.0, 0
                self.depth -= 1

        return timed


def instrument(lib, clock: Clock) -> None:
    targets = [
        ("pi(s, return_logp=True)", lib.Policy, "__call__"),
        ("env.step (TrainMonitor)", lib.wrappers.TrainMonitor, "step"),
        ("env.reset (TrainMonitor)", lib.wrappers.TrainMonitor, "reset"),
        ("env.record_metrics", lib.wrappers.TrainMonitor, "record_metrics"),
        ("tracer.add", lib.reward_tracing.NStep, "add"),
        ("tracer.pop", lib.reward_tracing.NStep, "pop"),
        ("bool(tracer)", lib.reward_tracing.NStep, "__bool__"),
        ("buffer.add", lib.experience_replay.SimpleReplayBuffer, "add"),
        ("buffer.sample", lib.experience_replay.SimpleReplayBuffer, "sample"),
        ("buffer.clear", lib.experience_replay.SimpleReplayBuffer, "clear"),
        ("len(buffer)", lib.experience_replay.SimpleReplayBuffer, "__len__"),
        ("simple_td.update", lib.td_learning.SimpleTD, "update"),
        ("vanilla_pg.update", lib.policy_objectives.VanillaPG, "update"),
    ]
    for name, cls, attr in targets:
        setattr(cls, attr, clock.wrap(name, getattr(cls, attr)))
    lib.utils.sync_shared_params = clock.wrap("sync_shared_params", lib.utils.sync_shared_params)


def run_recipe(recipe: Path, argv: list[str]) -> dict:
    """Runs the recipe as ``__main__``; returns its RESULT dict."""
    import contextlib

    here = str(Path(__file__).resolve().parent)
    sys.path.insert(0, here)
    try:
        from _peers import parse_results
    finally:
        sys.path.remove(here)  # the recipe runs with the sys.path it would have on its own

    out = io.StringIO()
    sys.argv = [str(recipe), *argv]
    with contextlib.redirect_stdout(out):
        runpy.run_path(str(recipe), run_name="__main__")
    return parse_results(out.getvalue())[-1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lib", default="a2c_jax")
    parser.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=10_000)
    parser.add_argument("--mode", choices=["components", "cprofile"], default="components")
    parser.add_argument("--top", type=int, default=25, help="rows of the cProfile tables")
    args = parser.parse_args(argv)

    logging.disable(logging.INFO)
    lib = importlib.import_module(args.lib)
    recipe_argv = ["--lib", args.lib, "--seed", str(args.seed), "--max-steps",
                   str(args.max_steps), "--quiet"]

    if args.mode == "cprofile":
        prof = cProfile.Profile()
        prof.enable()
        result = run_recipe(args.recipe, recipe_argv)
        prof.disable()
        print(f"# cProfile of the recipe on {args.lib} (slower than unprofiled): {result}")
        for key in ("tottime", "cumulative"):
            s = io.StringIO()
            pstats.Stats(prof, stream=s).strip_dirs().sort_stats(key).print_stats(args.top)
            text = s.getvalue()
            print(text[text.find("   ncalls"):])
        return 0

    clock = Clock()
    instrument(lib, clock)
    result = run_recipe(args.recipe, recipe_argv)
    steps = result["env_steps"]
    loop_s = result["wall_s"] - result["setup_s"]
    print(f"# recipe on {args.lib}: {steps} env steps, {result['updates']} update iterations, "
          f"{result['episodes']} episodes, wall {result['wall_s']} s (setup "
          f"{result['setup_s']} s), {result['steps_per_s']} steps/s overall, "
          f"{steps / loop_s:,.0f} steps/s in the loop")
    print("(first calls, which include jit compilation, are counted apart)")
    print(f"{'component':<28}{'calls':>9}{'µs/call':>10}{'µs/env step':>13}{'share':>8}")
    accounted = 0.0
    for name, total in sorted(clock.total.items(), key=lambda kv: -kv[1]):
        n = max(clock.calls[name], 1)
        accounted += total
        print(f"{name:<28}{n:>9}{total / n * 1e6:>10.1f}{total / steps * 1e6:>13.1f}"
              f"{total / loop_s:>8.1%}")
    first = sum(clock.first.values())
    accounted += first
    print(f"{'first calls (jit compile)':<28}{len(clock.first):>9}{'':>10}"
          f"{first / steps * 1e6:>13.1f}{first / loop_s:>8.1%}")
    rest = loop_s - accounted
    print(f"{'rest (recipe loop, numpy)':<28}{'':>9}{'':>10}{rest / steps * 1e6:>13.1f}"
          f"{rest / loop_s:>8.1%}")
    print(f"{'total loop':<28}{'':>9}{'':>10}{loop_s / steps * 1e6:>13.1f}{1:>8.1%}")
    print("first calls, ms: " + ", ".join(
        f"{k} {v * 1e3:,.0f}" for k, v in sorted(clock.first.items(), key=lambda kv: -kv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
