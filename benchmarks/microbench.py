"""Microseconds per call of the hot-path API of the seed A2C recipe, on a2c_jax or on coax.

The same script measures either library (``--lib`` is imported with ``importlib``), so running it
once under each interpreter gives a side-by-side table::

    .venv/bin/python benchmarks/microbench.py                               # a2c_jax
    /tmp/a2c-anchors/coax/bin/python benchmarks/microbench.py --lib coax    # coax 0.1.13

Setup is the recipe's: CartPole-v1, a shared 2x64 ReLU torso with name-scoped heads 'torso', 'v'
and 'pi', VanillaPG (adam 1e-3), SimpleTD (adam 2e-3), NStep(n=5, gamma=0.9),
SimpleReplayBuffer(256) filled by acting with the policy, batches of 32.

Each call is warmed up first (jit compilation excluded). A repeat times ``number`` calls one by
one with ``time.perf_counter``; the figure reported is the median over repeats of the mean time
per call. ``blocked`` waits for every device array the call returns (``block_until_ready``), so
it is the honest cost. ``dispatch`` is the time until the call returns, before waiting; it is
shown only for calls whose results are device arrays (asynchronous by design); a "-" means the
call returns host values (float, int, numpy), so it is synchronous and both figures agree.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

os.environ.setdefault("JAX_PLATFORMS", "cpu")

BATCH = 32
CAPACITY = 256
N_STEP = 5
GAMMA = 0.9


# ---- blocking on results ---------------------------------------------------------------------


def _walk(x: Any):
    """Yields the leaves of nested tuples/lists/mappings (a2c_jax ``Metrics`` without fetching)."""
    if x is None:
        return
    if isinstance(x, (tuple, list)):
        for y in x:
            yield from _walk(y)
    elif isinstance(x, Mapping):
        for y in getattr(x, "device_values", x).values():
            yield from _walk(y)
    else:
        yield x


def _device_leaves(x: Any) -> list:
    return [y for y in _walk(x) if hasattr(y, "block_until_ready")]


def block(x: Any) -> None:
    for y in _device_leaves(x):
        y.block_until_ready()


# ---- the timer --------------------------------------------------------------------------------


class Timer:
    """Times every call in rounds: repeat ``r`` of every call runs before repeat ``r + 1`` of any,
    so a burst of load from other jobs spreads over all calls instead of hitting one."""

    def __init__(self, quick: bool):
        self.repeats = 3 if quick else 7
        self.target_s = 0.01 if quick else 0.1  # wall time of one repeat
        self.max_number = 50 if quick else 2000

    def calibrate(self, fn: Callable[[], Any], setup: Callable[[int], None] | None,
                  warmup: int = 3) -> dict:
        for _ in range(warmup):
            if setup is not None:
                setup(1)
            block(fn())
        if setup is not None:
            setup(1)
        t0 = time.perf_counter()
        out = fn()
        block(out)
        one = time.perf_counter() - t0
        number = int(min(self.max_number, max(3, self.target_s / max(one, 1e-7))))
        return {"number": number, "async": bool(_device_leaves(out)), "blocked": [],
                "dispatched": []}

    @staticmethod
    def repeat(fn: Callable[[], Any], setup: Callable[[int], None] | None, state: dict) -> None:
        number = state["number"]
        if setup is not None:
            setup(number)
        tb = td = 0.0
        for _ in range(number):
            t0 = time.perf_counter()
            out = fn()
            t1 = time.perf_counter()
            block(out)
            t2 = time.perf_counter()
            td += t1 - t0
            tb += t2 - t0
        state["blocked"].append(tb / number * 1e6)
        state["dispatched"].append(td / number * 1e6)

    def run_all(self, benches: list) -> dict[str, dict]:
        states: dict[str, dict] = {}
        for name, fn, setup in benches:
            try:
                states[name] = self.calibrate(fn, setup)
            except Exception as e:  # an API the library lacks or spells differently
                states[name] = {"error": f"{type(e).__name__}: {e}"}
        for _ in range(self.repeats):
            for name, fn, setup in benches:
                if "error" not in states[name]:
                    try:
                        self.repeat(fn, setup, states[name])
                    except Exception as e:
                        states[name] = {"error": f"{type(e).__name__}: {e}"}
        results = {}
        for name, st in states.items():
            if "error" in st:
                results[name] = st
                continue
            results[name] = {
                "blocked_us": round(statistics.median(st["blocked"]), 2),
                "min_blocked_us": round(min(st["blocked"]), 2),
                "dispatch_us": round(statistics.median(st["dispatched"]), 2) if st["async"]
                else None,
                "async": st["async"],
                "number": st["number"],
                "repeats": len(st["blocked"]),
                "blocked_us_all": [round(x, 2) for x in st["blocked"]],
            }
        return results


# ---- the recipe's objects -----------------------------------------------------------------------


def _missing(what: str) -> Callable:
    def call(*args, **kwargs):
        raise NotImplementedError(f"{what} is missing in this library")

    return call


def build(lib, seed: int):
    import gymnasium
    import optax

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _recipe_nets import recipe_functions

    def make_env():
        inner = gymnasium.make("CartPole-v1")
        inner.reset(seed=seed)
        inner.action_space.seed(seed)
        return lib.wrappers.TrainMonitor(inner)

    env = make_env()
    func_pi, func_v = recipe_functions(env.action_space.n)

    o = argparse.Namespace()
    o.make_env = make_env
    o.env = env
    o.v = lib.V(func_v, env, random_seed=seed)
    o.pi = lib.Policy(func_pi, env, random_seed=seed)
    o.vanilla_pg = lib.policy_objectives.VanillaPG(o.pi, optimizer=optax.adam(0.001))
    o.simple_td = lib.td_learning.SimpleTD(o.v, optimizer=optax.adam(0.002))
    o.tracer = lib.reward_tracing.NStep(n=N_STEP, gamma=GAMMA)
    o.buffer = lib.experience_replay.SimpleReplayBuffer(capacity=CAPACITY, random_seed=seed)
    o.sync = getattr(lib.utils, "sync_shared_params", None) or _missing("utils.sync_shared_params")
    return o


def fill_buffer(o) -> list:
    """Acts with the policy until the buffer is full; returns the (s, a, r, logp) steps seen."""
    steps = []
    s, _ = o.env.reset()
    while len(o.buffer) < o.buffer.capacity:
        a, logp = o.pi(s, return_logp=True)
        s_next, r, done, truncated, _ = o.env.step(a)
        steps.append((s, a, r, logp))
        o.tracer.add(s, a, r, done or truncated, logp)
        while o.tracer:
            o.buffer.add(o.tracer.pop())
        s = s_next
        if done or truncated:
            s, _ = o.env.reset()
    o.tracer.reset()
    return steps


def benchmarks(o, steps: list) -> list[tuple[str, Callable, Callable | None]]:
    """``(name, fn, setup)`` for every measurement; ``setup(number)`` runs untimed per repeat."""
    pi, v, tracer, buffer = o.pi, o.v, o.tracer, o.buffer
    s0, a0, r0, logp0 = steps[0]
    batch = buffer.sample(batch_size=BATCH)
    _, td_error = o.simple_td.update(batch, return_td_error=True)
    block(td_error)

    def fill_tracer(number: int) -> None:  # `number` ready transitions, none from an episode end
        tracer.reset()
        for i in range(number + N_STEP):
            s, a, r, logp = steps[i % len(steps)]
            tracer.add(s, a, r, False, logp)

    def reset_tracer(number: int) -> None:
        tracer.reset()

    def tracer_add():
        return tracer.add(s0, a0, r0, False, logp0)

    def buffer_add_pop():
        return buffer.add(tracer.pop())

    def sync():
        return o.sync(pi.params, v.params)

    # the recipe's per-env-step work, on its own env (episode ends and resets included)
    step_env = o.make_env()
    step_state = {"s": step_env.reset()[0]}
    step_tracer = type(tracer)(n=N_STEP, gamma=GAMMA)
    step_buffer = type(buffer)(capacity=CAPACITY, random_seed=1)

    def env_step_only():
        out = step_env.step(int(step_env.action_space.sample()))
        if out[2] or out[3]:
            step_env.reset()
        return out

    def recipe_env_step():
        s = step_state["s"]
        a, logp = pi(s, return_logp=True)
        s_next, r, done, truncated, _ = step_env.step(a)
        step_tracer.add(s, a, r, done or truncated, logp)
        while step_tracer:
            step_buffer.add(step_tracer.pop())
        if len(step_buffer) == step_buffer.capacity:
            step_buffer.clear()
        step_state["s"] = step_env.reset()[0] if done or truncated else s_next

    # one pass of the recipe's inner update loop (metrics recorded on an env never stepped)
    metrics_env = o.make_env()

    def recipe_update_iteration():
        transition_batch = buffer.sample(batch_size=BATCH)
        metrics_v, td = o.simple_td.update(transition_batch, return_td_error=True)
        metrics_pi = o.vanilla_pg.update(transition_batch, td)
        metrics_env.record_metrics(metrics_v)
        metrics_env.record_metrics(metrics_pi)
        pi.params, v.params = o.sync(pi.params, v.params)
        # wait for the new params here instead of returning them: the harness holds what a call
        # returns until the next call, and a2c_jax does not donate buffers someone else holds
        # (the recipe's own loop holds none), so returning them would time a path the recipe
        # never takes
        block((pi.params, v.params))
        return metrics_v, metrics_pi

    return [
        ("pi(s)", lambda: pi(s0), None),
        ("pi(s, return_logp=True)", lambda: pi(s0, return_logp=True), None),
        ("v(s)", lambda: v(s0), None),
        ("simple_td.update(batch, return_td_error=True)",
         lambda: o.simple_td.update(batch, return_td_error=True), None),
        ("vanilla_pg.update(batch, td_error)", lambda: o.vanilla_pg.update(batch, td_error), None),
        ("buffer.add(tracer.pop())", buffer_add_pop, fill_tracer),
        ("buffer.sample(32)", lambda: buffer.sample(batch_size=BATCH), None),
        ("tracer.add(s, a, r, done, logp)", tracer_add, reset_tracer),
        ("tracer.pop()", lambda: tracer.pop(), fill_tracer),
        ("sync_shared_params(pi.params, v.params)", sync, None),
        ("env.step(a) [TrainMonitor(CartPole-v1)]", env_step_only, None),
        ("recipe: one env step, no update", recipe_env_step, None),
        ("recipe: one update iteration", recipe_update_iteration, None),
    ]


# ---- main -------------------------------------------------------------------------------------


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}"


def print_table(report: dict) -> None:
    print(f"# microbench: {report['lib']} {report['lib_version']} | jax {report['jax']} "
          f"({report['backend']}) | python {report['python']} | {report['cpus']} CPUs | "
          f"load avg {report['loadavg_before']} | {'quick' if report['quick'] else 'full'}")
    w = max(len(k) for k in report["results"]) + 2
    print(f"{'call':<{w}}{'blocked µs':>12}{'min µs':>9}{'dispatch µs':>13}"
          f"{'calls x repeats':>17}")
    for name, r in report["results"].items():
        if "error" in r:
            print(f"{name:<{w}}{'n/a':>12}{'n/a':>9}{'n/a':>13}   {r['error'][:80]}")
            continue
        print(f"{name:<{w}}{_fmt(r['blocked_us']):>12}{_fmt(r['min_blocked_us']):>9}"
              f"{_fmt(r['dispatch_us']):>13}"
              f"{r['number']:>11} x {r['repeats']}")
    est = report.get("recipe_us_per_env_step")
    if est is not None:
        print(f"recipe estimate: {est:,.1f} µs per env step (one env step + 1/8 update iteration: "
              f"{4 * CAPACITY // BATCH} iterations per {CAPACITY} steps) = "
              f"{1e6 / est:,.0f} env steps/s")
    print("blocked: waits for the returned device arrays; dispatch: until the call returns "
          "('-' = returns host values, synchronous). Median (and min) over repeats of the mean per "
          "call; repeats run in rounds over all calls.")
    print("Timing on a shared CPU is noisy: compare libraries only within one run.")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lib", default="a2c_jax", help="module to import: a2c_jax or coax")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="few, short repeats (smoke test)")
    parser.add_argument("--only", nargs="*", default=None,
                        help="run only the calls whose name contains one of these strings")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

    loadavg = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    logging.disable(logging.INFO)  # coax's TrainMonitor logs every episode
    lib = importlib.import_module(args.lib)
    import jax

    o = build(lib, args.seed)
    steps = fill_buffer(o)
    benches = [b for b in benchmarks(o, steps)
               if not args.only or any(s in b[0] for s in args.only)]
    results = Timer(args.quick).run_all(benches)

    report = {
        "lib": args.lib,
        "lib_version": getattr(lib, "__version__", "?"),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "python": platform.python_version(),
        "executable": sys.executable,
        "cpus": os.cpu_count(),
        "machine": platform.node(),
        "loadavg_before": loadavg,
        "quick": args.quick,
        "results": results,
    }
    step = results.get("recipe: one env step, no update", {}).get("blocked_us")
    upd = results.get("recipe: one update iteration", {}).get("blocked_us")
    if step is not None and upd is not None:
        report["recipe_us_per_env_step"] = round(step + upd * (4 * CAPACITY // BATCH) / CAPACITY, 1)
    print_table(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
