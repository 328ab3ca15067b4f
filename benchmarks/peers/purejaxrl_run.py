"""Runs PureJaxRL's PPO (its ``purejaxrl/ppo.py``, ``make_train``) on gymnax CartPole-v1 and times it.

Installed by ``setup_purejaxrl.sh`` as ``$A2C_ANCHORS/purejaxrl/run.py``, beside PureJaxRL's own
files (unmodified, commit 146b4856). Two shims at run time let that code run on today's stack:
``brax`` (imported by ``wrappers.py`` for its Brax wrapper only) is stubbed, and gymnax 1.0.1's
``step``, which returns ``(obs, state, reward, terminated, truncated, info)``, is presented in the
five-value form the code was written for, with ``done = terminated or truncated`` (as in
PureJaxRL: a time-limit end is a termination).

The config is the dict in ``ppo.py``'s ``__main__`` block, except ``DEBUG=False`` (its printing
callback would be timed as training). Compilation (``jit(...).lower(rng).compile()``) and training
(one call of the compiled program) are timed separately. "Solved" is the first env step at which
the mean of the last 100 finished episodes reached 475, as a2c_jax reports it. Last line:
``RESULT {json}``.
"""
import argparse
import ast
import json
import os
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "src")
COMMIT = "146b4856d593bcb4114b9c9fdb45798034696551"
SOLVED = 475.0


def install_shims():
    sys.modules.setdefault("brax", types.SimpleNamespace(envs=None))
    import jax.numpy as jnp
    from gymnax.environments import environment

    step = environment.Environment.step

    def five_value_step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = step(self, key, state, action, params)
        return obs, state, reward, jnp.logical_or(terminated, truncated), info

    environment.Environment.step = five_value_step


def main_config(path):
    with open(path) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and getattr(stmt.targets[0], "id", "") == "config":
                    return ast.literal_eval(stmt.value)
    raise RuntimeError("config not found in " + path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sys.path.insert(0, SRC)
    install_shims()
    import jax
    import numpy as np
    from purejaxrl.ppo import make_train

    config = main_config(os.path.join(SRC, "purejaxrl", "ppo.py"))
    config["DEBUG"] = False
    rng = jax.random.PRNGKey(args.seed)
    train = make_train(config)
    t0 = time.perf_counter()
    compiled = jax.jit(train).lower(rng).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(rng))
    train_s = time.perf_counter() - t0

    steps, envs = int(config["NUM_STEPS"]), int(config["NUM_ENVS"])
    env_steps = int(config["NUM_UPDATES"]) * steps * envs
    steps_per_s = env_steps / train_s
    ret = np.asarray(out["metrics"]["returned_episode_returns"], np.float64)  # [updates, steps, envs]
    ended = np.asarray(out["metrics"]["returned_episode"]) > 0
    u, t, _ = np.nonzero(ended)
    returns = ret[ended]                         # in (update, step, env) order
    ends = (u * steps + t + 1) * envs            # the env step at which each episode ended
    solved = None
    if returns.size >= 100:
        mean100 = np.convolve(returns, np.ones(100) / 100, mode="valid")
        hit = np.nonzero(mean100 >= SOLVED)[0]
        solved = int(ends[hit[0] + 99]) if hit.size else None
    result = {
        "jax": jax.__version__, "commit": COMMIT, "seed": args.seed, "num_envs": envs,
        "num_steps": steps, "compile_s": round(compile_s, 3), "train_s": round(train_s, 3),
        "env_steps": env_steps, "steps_per_s": round(steps_per_s, 1), "solved_at_step": solved,
        "time_to_solve_s": None if solved is None else round(solved / steps_per_s, 3),
        "final_mean_return": round(float(returns[-100:].mean()), 1) if returns.size else None,
        "episodes": int(returns.size),
    }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
