"""Which user networks learn CartPole under ``--engine jit`` with the zoo A2C settings.

    .venv/bin/python benchmarks/jit_architectures.py [--seeds 8] [--steps 500000]

coax's recipe layout (a 2x64 torso, a value head and a logits head, name-scoped) in six
variants: ReLU or tanh, one torso shared by ``func_pi`` and ``func_v`` (averaged after every
update step) or one each, heads initialised at zero (as in the recipe) or with Haiku's default.
For each, ``--seeds`` runs in one program (``JitTrainer(num_seeds=...)``): how many reach a mean
of the last 100 episodes >= 475, and each run's final mean.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _recipe_nets import recipe_functions  # noqa: E402

from a2c_jax.training import JitTrainer, preset  # noqa: E402

VARIANTS = [("relu", True, True), ("relu", False, True), ("relu", False, False),
            ("tanh", True, True), ("tanh", False, True), ("tanh", True, False)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--steps", type=int, default=500_000)
    args = p.parse_args(argv)
    print(f"CartPole-v1, zoo A2C settings, {args.seeds} seeds x {args.steps} steps each")
    print(f"{'torso':6} {'shared':6} {'heads':7} {'solved':>6}  final mean of the last 100 episodes")
    for activation, shared, zero in VARIANTS:
        func_pi, func_v = recipe_functions(2, activation, shared, zero)
        trainer = JitTrainer("CartPole-v1", preset("CartPole-v1", "a2c"), seed=0,
                             num_seeds=args.seeds, func_pi=func_pi, func_v=func_v)
        trainer.run(args.steps, progress=False)
        runs = trainer.summary()["runs"]
        solved = sum(r["solved_at_step"] is not None for r in runs)
        finals = " ".join(f"{r['final_mean_return']:.0f}" for r in runs)
        print(f"{activation:6} {'yes' if shared else 'no':6} {'zero' if zero else 'default':7} "
              f"{solved:>3}/{args.seeds}  {finals}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
