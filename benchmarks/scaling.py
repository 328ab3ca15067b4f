"""Throughput with 1 and 2 processes on this machine (jax.distributed on localhost, gloo), and the
cost of the per-update all-reduce: the measured inputs of the scaling model in
docs/distributed.md.

    .venv/bin/python benchmarks/scaling.py [--engines loop jit] [--steps 200000]

For each engine, `a2c-jax train` on CartPole-v1 with the same global envs (``--num-envs``, 8 by
default) as one process, then as two processes of one CPU device each (the envs split 4 + 4);
env steps/s from process 0's ``summary.json`` (training wall time, compilation excluded for the
jit engine). Then the all-reduce alone: two processes summing a float32 array the size of the
preset's gradients (both networks), timed over many calls. Last line: ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    return {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "", "OMP_NUM_THREADS": "1"}


def train(engine: str, processes: int, steps: int, num_envs: int, algo: str) -> dict:
    """``summary.json`` of one run of ``processes`` processes (process 0's)."""
    with tempfile.TemporaryDirectory() as out:
        base = [sys.executable, "-m", "a2c_jax", "train", "--env", "CartPole-v1", "--algo", algo,
                "--engine", engine, "--num-envs", str(num_envs), "--steps", str(steps),
                "--checkpoint-every", "0", "--no-progress", "--out", out]
        if processes == 1:
            subprocess.run(base, check=True, env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL)
        else:
            port = _free_port()
            procs = [subprocess.Popen(base + ["--coordinator", f"127.0.0.1:{port}",
                                              "--num-processes", str(processes),
                                              "--process-id", str(i)],
                                      env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL)
                     for i in range(processes)]
            for p in procs:
                if p.wait() != 0:
                    sys.exit(f"a {processes}-process {engine} run failed (exit {p.returncode})")
        return json.loads((Path(out) / "summary.json").read_text())


ALLREDUCE = textwrap.dedent("""
    import sys, time, json
    import numpy as np
    from a2c_jax.training._distributed import initialize
    initialize(f"127.0.0.1:{sys.argv[1]}", 2, int(sys.argv[2]))
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    mesh = Mesh(np.asarray(jax.devices()), ("d",))
    rows = []
    for size in json.loads(sys.argv[3]):
        x = jax.make_array_from_process_local_data(NamedSharding(mesh, P("d")),
                                                   np.ones((1, size), np.float32))
        f = jax.jit(lambda x: x.sum(0), out_shardings=NamedSharding(mesh, P()))
        jax.block_until_ready(f(x))
        n = 300
        t = time.perf_counter()
        for _ in range(n):
            y = f(x)
        jax.block_until_ready(y)
        rows.append({"floats": size, "bytes": 4 * size,
                     "us": round((time.perf_counter() - t) / n * 1e6, 1)})
    if jax.process_index() == 0:
        print("RESULT " + json.dumps(rows))
""")


def allreduce(sizes: list[int]) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "allreduce.py"
        script.write_text(ALLREDUCE)
        port = str(_free_port())
        procs = [subprocess.Popen([sys.executable, str(script), port, str(i), json.dumps(sizes)],
                                  env=_env(), cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True) for i in range(2)]
        outs = [p.communicate()[0] for p in procs]
    line = next(ln for ln in outs[0].splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def gradient_floats(algo: str) -> int:
    """The number of parameters of the CartPole preset's two networks (the gradients' size)."""
    import jax

    from a2c_jax.training import Trainer, preset

    tr = Trainer("CartPole-v1", preset("CartPole-v1", algo))
    try:
        return sum(x.size for x in jax.tree.leaves((tr.state.pi_params, tr.state.v_params)))
    finally:
        tr.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engines", nargs="+", default=["loop", "jit"], choices=["loop", "jit"])
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--algo", default="a2c", choices=["a2c", "ppo"])
    args = p.parse_args(argv)
    rows = []
    for engine in args.engines:
        for n in (1, 2):
            t0 = time.perf_counter()
            s = train(engine, n, args.steps, args.num_envs, args.algo)
            rows.append({"engine": engine, "processes": n, "steps_per_s": s["steps_per_s"],
                         "wall_s": s["wall_s"], "final_mean_return": s["final_mean_return"],
                         "command_s": round(time.perf_counter() - t0, 1)})
            print(f"{engine:4s} {n} process(es): {s['steps_per_s']:>10,.0f} env steps/s "
                  f"(train {s['wall_s']:.1f} s, mean100 {s['final_mean_return']})", flush=True)
    for engine in args.engines:
        one, two = (next(r for r in rows if r["engine"] == engine and r["processes"] == n)
                    for n in (1, 2))
        print(f"{engine}: 2 processes / 1 process = {two['steps_per_s'] / one['steps_per_s']:.2f}x")
    floats = gradient_floats(args.algo)
    ar = allreduce([floats, 10 * floats])
    for r in ar:
        print(f"all-reduce of {r['floats']:,} float32 ({r['bytes'] / 1024:.0f} KiB) over 2 "
              f"processes: {r['us']:,.0f} us")
    print("RESULT " + json.dumps({"runs": rows, "gradient_floats": floats, "allreduce": ar,
                                  "num_envs": args.num_envs, "algo": args.algo}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
