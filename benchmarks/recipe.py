"""coax's A2C recipe on CartPole-v1, written with a2c_jax: train, report, plot.

The recipe of coax's A2C page (shared 2x64 ReLU torso with name-scoped heads, VanillaPG with
adam(1e-3), SimpleTD with adam(2e-3), NStep(n=5, gamma=0.9), a 256-transition buffer; once full,
4 passes of batch 32 with a torso sync after each, then the buffer is cleared).

    python benchmarks/recipe.py --seeds 0 1 2 --max-steps 50000 --out runs/recipe

Prints one summary line per seed and a final ``RESULT {json}``; writes a learning-curve PNG.
``make train`` runs it for seed 0.
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
import numpy as np  # noqa: E402
import optax  # noqa: E402
from tqdm import tqdm  # noqa: E402

import a2c_jax  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _recipe_nets import recipe_functions  # noqa: E402


def build(env: gymnasium.Env, seed: int, objective: str, value_loss: str = "huber",
          entropy: float = 0.0):
    """The recipe's function approximators and updaters."""
    func_pi, func_v = recipe_functions(env.action_space.n)
    v = a2c_jax.V(func_v, env, random_seed=seed)
    pi = a2c_jax.Policy(func_pi, env, random_seed=seed)
    objectives = {"vanilla": a2c_jax.policy_objectives.VanillaPG,
                  "ppo": a2c_jax.policy_objectives.PPOClip}
    reg = a2c_jax.regularizers.EntropyRegularizer(pi, beta=entropy) if entropy > 0 else None
    policy_updater = objectives[objective](pi, optimizer=optax.adam(0.001), regularizer=reg)
    loss = {"mse": a2c_jax.value_losses.mse, "huber": a2c_jax.value_losses.huber}[value_loss]
    simple_td = a2c_jax.td_learning.SimpleTD(v, optimizer=optax.adam(0.002), loss_function=loss)
    return v, pi, policy_updater, simple_td


def run(seed: int, max_steps: int, objective: str = "vanilla", progress: bool = True,
        value_loss: str = "huber", truncation_aware: bool = False,
        entropy: float = 0.0) -> dict:
    """Trains one seed for ``max_steps`` env steps; returns the summary and the episode returns.

    ``truncation_aware`` swaps the seed's ``add(s, a, r, done or truncated, logp)`` for the form
    that bootstraps a time-limit cut from ``s_next``. The policy's advantage is SimpleTD's TD
    error ``-B dL/dv(S)``: ``clip(G - v(S), -1, 1)`` under ``value_loss="huber"`` (the default,
    coax's), the raw ``G - v(S)`` under ``"mse"``. ``entropy > 0`` adds an
    ``EntropyRegularizer`` with that ``beta`` to the policy objective (the recipe has none).
    """
    env = a2c_jax.wrappers.TrainMonitor(gymnasium.make("CartPole-v1"))
    env.action_space.seed(seed)
    v, pi, policy_updater, simple_td = build(env, seed, objective, value_loss, entropy)
    tracer = a2c_jax.reward_tracing.NStep(n=5, gamma=0.9)
    buffer = a2c_jax.experience_replay.SimpleReplayBuffer(capacity=256, random_seed=seed)

    returns, ends = [], []
    bar = tqdm(total=max_steps, desc=f"seed {seed}", unit="step", disable=not progress,
               mininterval=0.5, leave=False)
    t0 = time.perf_counter()
    s, _ = env.reset(seed=seed)
    while max_steps > env.T:
        a, logp = pi(s, return_logp=True)
        s_next, r, terminated, truncated, _ = env.step(a)
        if truncation_aware:
            tracer.add(s, a, r, terminated, logp, truncated=truncated, s_next=s_next)
        else:
            tracer.add(s, a, r, terminated or truncated, logp)
        while tracer:
            buffer.add(tracer.pop())
        if len(buffer) == buffer.capacity:
            for _ in range(4 * buffer.capacity // 32):
                batch = buffer.sample(batch_size=32)
                metrics_v, td_error = simple_td.update(batch, return_td_error=True)
                metrics_pi = policy_updater.update(batch, td_error)
                env.record_metrics(metrics_v)
                env.record_metrics(metrics_pi)
                pi.params, v.params = a2c_jax.utils.sync_shared_params(pi.params, v.params)
            buffer.clear()
        if terminated or truncated:
            returns.append(env.G)
            ends.append(env.T)
            bar.set_postfix(avg20=f"{np.mean(returns[-20:]):.0f}", refresh=False)
            s, _ = env.reset()
        else:
            s = s_next
        bar.update(1)
    bar.close()
    wall = time.perf_counter() - t0

    avg20 = [float(np.mean(returns[max(0, i - 19): i + 1])) for i in range(len(returns))]

    def first(threshold):
        hits = [ends[i] for i in range(19, len(returns)) if avg20[i] >= threshold]
        return hits[0] if hits else None

    return {
        "seed": seed, "objective": objective, "value_loss": value_loss,
        "truncation_aware": truncation_aware, "entropy": entropy,
        "env_steps": env.T,
        "episodes": len(returns),
        "wall_s": round(wall, 2), "steps_per_s": round(env.T / wall, 1),
        "best_avg20": max(avg20[19:], default=None), "final_avg20": avg20[-1] if avg20 else None,
        "step_avg20_195": first(195), "step_avg20_475": first(475),
        "eval_greedy_return": a2c_jax.utils.evaluate_greedy(pi, "CartPole-v1", 5,
                                                            first_seed=10_000 + 100 * seed),
        "_returns": returns, "_ends": ends,
    }


def plot(results: list[dict], path: Path, tag: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for res in results:
        r = np.asarray(res["_returns"])
        smooth = [r[max(0, i - 19): i + 1].mean() for i in range(len(r))]
        ax.plot(res["_ends"], smooth, label=f"seed {res['seed']}")
    ax.axhline(475, color="grey", ls="--", lw=0.8)
    ax.axhline(195, color="grey", ls=":", lw=0.8)
    ax.set(xlabel="env steps", ylabel="return (mean of last 20 episodes)",
           title=f"coax A2C recipe with a2c_jax, CartPole-v1 ({tag})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--max-steps", type=int, default=50_000)
    parser.add_argument("--objective", choices=["vanilla", "ppo"], default="vanilla")
    parser.add_argument("--value-loss", choices=["mse", "huber"], default="huber",
                        help="SimpleTD's loss, and so the advantage -B dL/dv(S): huber (the "
                             "default of a2c_jax and coax) clips G - v(S) to [-1, 1], mse does not")
    parser.add_argument("--truncation-aware", action="store_true",
                        help="bootstrap time-limit truncations instead of the seed's done-or-truncated")
    parser.add_argument("--entropy", type=float, default=0.0, metavar="BETA",
                        help="add an EntropyRegularizer with this beta to the policy objective")
    parser.add_argument("--out", type=Path, default=Path("runs/recipe"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.max_steps < 1:
        parser.error("--max-steps must be >= 1")
    if args.entropy < 0:
        parser.error("--entropy must be >= 0")

    results = []
    for seed in args.seeds:
        res = run(seed, args.max_steps, args.objective, progress=not args.no_progress,
                  value_loss=args.value_loss, truncation_aware=args.truncation_aware,
                  entropy=args.entropy)
        results.append(res)
        print(f"seed {seed}: {res['env_steps']} steps in {res['wall_s']} s "
              f"({res['steps_per_s']:.0f} steps/s), best avg20 {res['best_avg20']}, "
              f"avg20>=195 at {res['step_avg20_195']}, avg20>=475 at {res['step_avg20_475']}, "
              f"greedy eval {res['eval_greedy_return']:.1f}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    tag = args.objective + ("" if args.value_loss == "huber" else f"_{args.value_loss}") + (
        "_trunc" if args.truncation_aware else "") + (
        f"_ent{args.entropy:g}" if args.entropy > 0 else "")
    png = args.out / f"recipe_{tag}.png"
    plot(results, png, tag)
    summary = [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]
    (args.out / f"recipe_{tag}.json").write_text(json.dumps(summary, indent=2))
    print(f"learning curve: {png}")
    print("RESULT " + json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
