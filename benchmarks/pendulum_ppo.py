"""PPO-clip with a squashed-Gaussian policy on Pendulum-v1, built from the library's pieces.

    python benchmarks/pendulum_ppo.py --seeds 0 1 2 --max-steps 300000

Rollouts of ``--rollout`` steps are traced with the truncation-aware ``NStep`` (Pendulum only
ends by its 200-step time limit), then ``--epochs`` passes of minibatches update the critic
(SimpleTD, MSE) and the policy (PPOClip) with per-batch normalised TD(n) advantages. Every
``--eval-every`` steps the greedy policy is evaluated on 5 fresh episodes. Prints one line per
seed and ``RESULT {json}``; writes a learning-curve PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import gymnasium  # noqa: E402
import haiku as hk  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import a2c_jax  # noqa: E402


def func_v(S, is_training):
    net = hk.Sequential([hk.Linear(64), jnp.tanh, hk.Linear(64), jnp.tanh, hk.Linear(1), jnp.ravel])
    return net(S)


def func_pi(S, is_training):
    mu = hk.Sequential([hk.Linear(64), jnp.tanh, hk.Linear(64), jnp.tanh,
                        hk.Linear(1, w_init=hk.initializers.VarianceScaling(0.01))])(S)
    logvar = hk.get_parameter("logvar", (1,), init=jnp.zeros)
    return {"mu": mu, "logvar": jnp.broadcast_to(logvar, mu.shape)}


def evaluate(pi, seed: int) -> float:
    return a2c_jax.utils.evaluate_greedy(pi, "Pendulum-v1", 5, first_seed=10_000 + 100 * seed)


def run(seed: int, args) -> dict:
    env = gymnasium.make("Pendulum-v1")
    v = a2c_jax.V(func_v, env, random_seed=seed)
    pi = a2c_jax.Policy(func_pi, env, random_seed=seed)
    ppo = a2c_jax.policy_objectives.PPOClip(
        pi, optimizer=optax.chain(optax.clip_by_global_norm(0.5), optax.adam(args.lr)),
        epsilon=0.2)
    # MSE, as measured in the README (the TD error handed to PPO is the raw G - v(S); the
    # library's default, Huber, would clip it to [-1, 1])
    td = a2c_jax.td_learning.SimpleTD(
        v, optimizer=optax.chain(optax.clip_by_global_norm(0.5), optax.adam(args.lr)),
        loss_function=a2c_jax.value_losses.mse)
    tracer = a2c_jax.reward_tracing.NStep(n=args.n, gamma=args.gamma)
    buffer = a2c_jax.experience_replay.SimpleReplayBuffer(args.rollout, random_seed=seed)
    curve = [(0, evaluate(pi, seed))]  # the untrained policy, for scale
    t0 = time.perf_counter()
    s, _ = env.reset(seed=seed)
    for step in range(1, args.max_steps + 1):
        a, logp = pi(s, return_logp=True)
        s_next, r, terminated, truncated, _ = env.step(a)
        tracer.add(s, a, r * args.reward_scale, terminated, logp, truncated=truncated,
                   s_next=s_next)
        while tracer:
            buffer.add(tracer.pop())
        s = env.reset()[0] if terminated or truncated else s_next
        if len(buffer) >= args.rollout:
            for _ in range(args.epochs * args.rollout // args.batch):
                batch = buffer.sample(args.batch)
                _, adv = td.update(batch, return_td_error=True)
                adv = (adv - jnp.mean(adv)) / (jnp.std(adv) + 1e-8)
                ppo.update(batch, adv)
            buffer.clear()
        if step % args.eval_every == 0:
            curve.append((step, evaluate(pi, seed)))
    wall = time.perf_counter() - t0
    return {"seed": seed, "env_steps": args.max_steps, "wall_s": round(wall, 1),
            "steps_per_s": round(args.max_steps / wall), "initial_eval": curve[0][1],
            "final_eval": curve[-1][1], "best_eval": max(c[1] for c in curve[1:]),
            "first_step_at_or_above_-300": next((t for t, g in curve[1:] if g >= -300), None),
            "curve": curve}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--max-steps", type=int, default=300_000)
    p.add_argument("--rollout", type=int, default=2048)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--gamma", type=float, default=0.9)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--reward-scale", type=float, default=0.1)
    p.add_argument("--eval-every", type=int, default=20_000)
    p.add_argument("--out", type=Path, default=Path("runs/pendulum"))
    args = p.parse_args(argv)
    results = []
    for seed in args.seeds:
        res = run(seed, args)
        results.append(res)
        print(f"seed {seed}: eval {res['initial_eval']:.1f} untrained, {res['final_eval']:.1f} final, "
              f"best {res['best_eval']:.1f}, >= -300 from step {res['first_step_at_or_above_-300']}, "
              f"{res['wall_s']} s ({res['steps_per_s']} steps/s)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for res in results:
        steps, evals = zip(*res["curve"])
        plt.plot(steps, evals, label=f"seed {res['seed']}")
    plt.axhline(-300, color="grey", ls="--", lw=0.8)
    plt.xlabel("env steps")
    plt.ylabel("greedy evaluation return (5 episodes)")
    plt.title("PPOClip on Pendulum-v1")
    plt.legend()
    plt.savefig(args.out / "pendulum_ppo.png", dpi=110)
    (args.out / "pendulum_ppo.json").write_text(json.dumps(results, indent=1))
    print("RESULT " + json.dumps([{k: v for k, v in r.items() if k != "curve"} for r in results]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
