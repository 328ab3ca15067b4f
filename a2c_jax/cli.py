"""The command line: ``a2c-jax train`` and ``a2c-jax eval`` (also ``python -m a2c_jax``)."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when needed at run time: `a2c-jax --help` stays fast
    import jax

    from .training import JitTrainer, TrainConfig, Trainer

#: the checkpoint directory under a run's --out (format 3: orbax arrays, JSON and a manifest)
CHECKPOINT = "checkpoint"


class UsageError(Exception):
    """A problem with the command's input: reported in one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="a2c-jax", description="Train and evaluate A2C / PPO agents.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an agent on a gymnasium env")
    t.add_argument("--env", required=True, help="a gymnasium env id, e.g. CartPole-v1")
    t.add_argument("--algo", choices=["a2c", "ppo"], default=None,
                   help="default: the env's preset (a2c, or ppo for Pendulum-v1)")
    t.add_argument("--steps", type=int, default=None, help="env steps (default: the preset's)")
    t.add_argument("--seed", type=int, default=None, help="default 0")
    t.add_argument("--num-envs", type=int, default=None, help="parallel envs (default: preset)")
    t.add_argument("--engine", choices=["loop", "jit"], default="loop",
                   help="loop: gymnasium vector envs, one jitted call per step; jit: rollout and "
                        "updates in one compiled program on gymnax's JAX-native envs")
    t.add_argument("--num-seeds", type=int, default=None,
                   help="independent runs trained at once in one program (--engine jit; default 1)")
    t.add_argument("--devices", type=int, default=None,
                   help="shard the envs over the first N devices (--engine jit; default: all)")
    t.add_argument("--async-envs", action="store_true", help="gymnasium AsyncVectorEnv")
    t.add_argument("--shared-backbone", action="store_true",
                   help="one torso for the policy and value heads, trained with one optimizer on "
                        "policy + entropy + vf_coef * value loss (a2c_jax.ActorCritic)")
    t.add_argument("--out", type=Path, default=None, help="output directory (default runs/ENV-ALGO-SEED)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint/")
    t.add_argument("--checkpoint-every", type=int, default=100_000, help="env steps (0: only at the end)")
    t.add_argument("--no-progress", action="store_true")
    d = t.add_argument_group("several processes (jax.distributed; every process runs the same "
                             "command with its own --process-id)")
    d.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="process 0's address and a free port on it")
    d.add_argument("--num-processes", type=int, default=None, metavar="N")
    d.add_argument("--process-id", type=int, default=None, metavar="I", help="0 .. N-1")
    d.add_argument("--join-timeout", type=int, default=60, metavar="S",
                   help="seconds to wait for the other processes to join (default 60)")
    e = sub.add_parser("eval", help="replay a saved policy greedily")
    e.add_argument("dir", type=Path, help="a run's --out directory (it reads DIR/checkpoint/)")
    e.add_argument("--episodes", type=int, default=10)
    x = sub.add_parser("export", help="write a run's trained policy alone, for a2c_jax.load_policy")
    x.add_argument("dir", type=Path, help="a run's --out directory (it reads DIR/checkpoint/)")
    x.add_argument("--out", type=Path, required=True, help="the policy directory to write")
    x.add_argument("--run", type=int, default=0,
                   help="which run of an --engine jit checkpoint with --num-seeds (default 0)")
    return p


def _check_env(env_id: str) -> None:
    import gymnasium

    if env_id not in gymnasium.registry:
        close = difflib.get_close_matches(env_id, list(gymnasium.registry), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UsageError(f"unknown env {env_id!r}{hint}")


def _check_seed(seed: int | None, num_seeds: int) -> None:
    from .training._trainer import MAX_SEED

    if seed is None:
        return
    if not 0 <= seed <= MAX_SEED:
        raise UsageError(f"--seed must be between 0 and {MAX_SEED}, got {seed}")
    if seed + num_seeds - 1 > MAX_SEED:  # run k of --num-seeds uses seed + k
        raise UsageError(f"--seed {seed} with --num-seeds {num_seeds} uses seeds up to "
                         f"{seed + num_seeds - 1}; the largest is {MAX_SEED}")


def _check_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"   # processes of one run may share out
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"cannot write to --out {str(out)!r}: {err.strerror or err}") from None


def train(args: argparse.Namespace) -> int:
    _check_env(args.env)
    if args.steps is not None and args.steps < 0:
        raise UsageError(f"--steps must be >= 0, got {args.steps}")
    if args.num_envs is not None and args.num_envs < 1:
        raise UsageError(f"--num-envs must be >= 1, got {args.num_envs}")
    if args.num_seeds is not None and args.num_seeds < 1:
        raise UsageError(f"--num-seeds must be >= 1, got {args.num_seeds}")
    _check_seed(args.seed, args.num_seeds or 1)
    if args.checkpoint_every < 0:
        raise UsageError(f"--checkpoint-every must be >= 0 (0: only at the end), got "
                         f"{args.checkpoint_every}")
    if args.engine == "loop":
        if args.num_seeds not in (None, 1):
            raise UsageError("--num-seeds needs --engine jit (the loop engine trains one run)")
        if args.devices is not None:
            raise UsageError("--devices needs --engine jit (the loop engine runs on one device)")
    else:
        from .training._jit import EngineError, check_jax_native

        try:
            check_jax_native(args.env)
        except EngineError as err:
            raise UsageError(str(err)) from None
        if args.async_envs:
            raise UsageError("--async-envs is for --engine loop (the jit engine's envs are arrays)")
    import time

    from .training import drive

    multi = _start_processes(args)
    algo, config, steps, seed, out, ckpt = _run_settings(args, "-jit" if args.engine == "jit" else "")
    t0 = time.perf_counter()
    trainer = _load(args, ckpt) if args.resume else _new(args, config, seed)
    if args.resume:
        _check_resumed(args, trainer, ckpt)
    if not multi:
        return drive(trainer, steps, out, ckpt, checkpoint_every=args.checkpoint_every,
                     progress=not args.no_progress, setup_s=time.perf_counter() - t0)
    from .training._distributed import abort_on_lost_process, is_main

    with abort_on_lost_process():
        return drive(trainer, steps, out, ckpt, checkpoint_every=args.checkpoint_every,
                     progress=not args.no_progress and is_main(),
                     setup_s=time.perf_counter() - t0)


def _start_processes(args: argparse.Namespace) -> bool:
    """Joins the multi-process run the options (or a detected cluster job) describe; whether
    there is one."""
    from .training._distributed import DistributedError, cluster_detected, initialize

    given = (args.coordinator, args.num_processes, args.process_id)
    if all(x is None for x in given) and not cluster_detected():
        return False
    if args.devices is not None:
        raise UsageError("--devices is for one process; over several, every process's devices "
                         "take part")
    try:
        if args.join_timeout < 1:
            raise DistributedError(f"--join-timeout must be >= 1, got {args.join_timeout}")
        initialize(*given, timeout_s=args.join_timeout)
        from .training._distributed import check_same

        # a process with another --num-processes joins process 0's run all the same: compared here
        check_same({k: v for k, v in vars(args).items() if k != "process_id"})
    except DistributedError as err:
        raise UsageError(str(err)) from None
    return True


def _devices(args: argparse.Namespace) -> list[jax.Device]:
    import jax

    devices = jax.devices()
    if args.devices is not None:
        if not 1 <= args.devices <= len(devices):
            raise UsageError(f"--devices must be between 1 and the {len(devices)} device(s) "
                             f"JAX sees ({devices[0].platform}), got {args.devices}")
        devices = devices[:args.devices]
    return devices


def _new(args: argparse.Namespace, config: TrainConfig, seed: int) -> Trainer | JitTrainer:
    """A new run of ``args.engine``."""
    if args.engine == "loop":
        from .training import Trainer

        return Trainer(args.env, config, seed, asynchronous=args.async_envs)
    from .training._jit import EngineError, JitTrainer

    try:
        return JitTrainer(args.env, config, seed, num_seeds=args.num_seeds or 1,
                          devices=_devices(args))
    except EngineError as err:
        raise UsageError(str(err)) from None


def _load(args: argparse.Namespace, ckpt: Path) -> Trainer | JitTrainer:
    """The run saved in ``ckpt``, for ``args.engine``."""
    from .utils import CheckpointError

    try:
        if args.engine == "loop":
            from .training import Trainer

            return Trainer.load(ckpt, asynchronous=args.async_envs)
        from .training._jit import EngineError, JitTrainer

        try:
            return JitTrainer.load(ckpt, devices=_devices(args))
        except EngineError as err:
            raise UsageError(str(err)) from None
    except CheckpointError as err:
        raise UsageError(str(err)) from None


def _check_resumed(args: argparse.Namespace, trainer: Trainer | JitTrainer, ckpt: Path) -> None:
    """A resumed run keeps its own settings: an option given that contradicts them is an error."""
    if trainer.env_id != args.env:
        raise UsageError(f"{ckpt} is a run on {trainer.env_id}, not {args.env}")
    saved = {"--seed": trainer.seed, "--algo": trainer.config.algo,
             "--num-envs": trainer.config.num_envs,
             "--num-seeds": getattr(trainer, "num_seeds", 1)}
    given = {"--seed": args.seed, "--algo": args.algo, "--num-envs": args.num_envs,
             "--num-seeds": args.num_seeds}
    for flag, value in given.items():
        if value is not None and value != saved[flag]:
            raise UsageError(f"{ckpt} was trained with {flag} {saved[flag]}; drop {flag} "
                             f"{value} to resume it, or choose another --out")
    if args.shared_backbone and not trainer.config.shared_backbone:
        raise UsageError(f"{ckpt} was trained with separate networks; drop --shared-backbone to "
                         "resume it, or choose another --out")


def _run_settings(args: argparse.Namespace,
                  suffix: str) -> tuple[str, TrainConfig, int, int, Path, Path]:
    """``(algo, config, steps, seed, out, checkpoint)`` of a new run from the command's options;
    the output directory is checked for writing."""
    algo, config = _algo_and_config(args.env, args.algo, args.num_envs)
    if args.shared_backbone:
        config = config.replace(shared_backbone=True)
    steps = config.total_steps if args.steps is None else args.steps
    seed = 0 if args.seed is None else args.seed
    out = args.out or Path("runs") / f"{args.env}-{algo}-{seed}{suffix}"
    _check_out(out)
    return algo, config, steps, seed, out, out / CHECKPOINT


def _algo_and_config(env_id: str, algo: str | None,
                     num_envs: int | None) -> tuple[str, TrainConfig]:
    import gymnasium

    from .training import preset
    from .training._trainer import check_spaces

    try:
        probe = gymnasium.make(env_id)
    except gymnasium.error.Error as err:  # e.g. a missing optional dependency
        raise UsageError(f"cannot make {env_id}: {err}") from None
    try:
        check_spaces(probe, env_id)
    except TypeError as err:
        raise UsageError(str(err)) from None
    finally:
        probe.close()
    space = probe.action_space
    algo = algo or ("a2c" if isinstance(space, gymnasium.spaces.Discrete) else "ppo")
    config = preset(env_id, algo)
    if num_envs is not None:
        config = config.replace(num_envs=num_envs)
    return algo, config


def _load_saved(path: Path) -> Trainer | JitTrainer:
    """The run saved at ``path``, of whichever engine wrote it (the jit engine's on one device:
    evaluating and exporting need no mesh)."""
    from .training import Trainer
    from .utils import CheckpointError, load_checkpoint

    try:
        if load_checkpoint(path).get("engine") != "jit":
            return Trainer.load(path)
        import jax

        from .training._jit import EngineError, JitTrainer

        try:
            return JitTrainer.load(path, devices=jax.devices()[:1])
        except EngineError as err:
            raise UsageError(str(err)) from None
    except CheckpointError as err:
        raise UsageError(str(err)) from None


def evaluate(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {args.episodes}")
    from .training import Trainer

    trainer = _load_saved(args.dir / CHECKPOINT)
    if not isinstance(trainer, Trainer):
        from .utils import evaluate_greedy

        mean = evaluate_greedy(trainer.policy(0), trainer.env_id, args.episodes,
                               first_seed=1_000_000 + 1000 * trainer.seed)
        print(f"{trainer.env_id} (--engine jit, seed {trainer.seed}): mean greedy "
              f"return over {args.episodes} episodes: {mean:.2f}")
        return 0
    try:
        mean = trainer.evaluate(args.episodes)
    finally:
        trainer.close()
    print(f"{trainer.env_id}: mean greedy return over {args.episodes} episodes: {mean:.2f}")
    return 0


def export(args: argparse.Namespace) -> int:
    """``a2c-jax export DIR --out PATH``: the policy of DIR's checkpoint, alone (see
    :func:`a2c_jax.load_policy`)."""
    from .training import Trainer
    from .utils import CheckpointError

    trainer = _load_saved(args.dir / CHECKPOINT)
    try:
        if not 0 <= args.run < trainer.num_seeds:
            raise UsageError(f"--run must be between 0 and {trainer.num_seeds - 1} (the "
                             f"checkpoint holds {trainer.num_seeds} run(s)), got {args.run}")
        if isinstance(trainer, Trainer):
            out = trainer.export(args.out)
        else:
            out = trainer.export(args.out, run=args.run)
    except CheckpointError as err:
        raise UsageError(str(err)) from None
    finally:
        if isinstance(trainer, Trainer):
            trainer.close()
    print(f"wrote the policy of {trainer.env_id} ({trainer.config.algo}, --engine "
          f"{trainer.engine}, seed {trainer.seed + args.run}, {trainer.env_steps:,} env steps) to "
          f"{out}; load it with a2c_jax.load_policy({str(out)!r})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"train": train, "eval": evaluate, "export": export}[args.command](args)
    except UsageError as err:
        print(f"a2c-jax: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
