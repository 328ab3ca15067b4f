"""The command line: ``a2c-jax train`` and ``a2c-jax eval`` (also ``python -m a2c_jax``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    t.add_argument("--env", required=True,
                   help="a gymnasium env id, e.g. CartPole-v1, or MODULE:ID (MODULE is imported "
                        "first and registers ID: your own env)")
    t.add_argument("--algo", choices=["a2c", "ppo"], default=None,
                   help="default: the env's preset (a2c, or ppo for Pendulum-v1)")
    t.add_argument("--steps", type=int, default=None,
                   help="the run's total env steps (default: the preset's; with --resume, the "
                        "run's own total)")
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
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a hyperparameter (any key of summary.json's config, e.g. gamma=0.98, "
                        "hidden=128,128); repeatable; overrides --config and the preset")
    t.add_argument("--config", type=Path, default=None, metavar="FILE.yaml",
                   help="hyperparameters from a YAML mapping of keys to values")
    t.add_argument("--env-kwargs", action="append", default=[], metavar="NAME=VALUE|JSON",
                   help="keyword arguments of gymnasium.make for every env (training and "
                        "evaluation): NAME=VALUE (VALUE read as JSON if it parses) or a JSON "
                        "object; repeatable")
    t.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="--engine jit: train every combination of the values of the swept keys "
                        "(repeatable, one per key) times --num-seeds seeds in one compiled "
                        "program; only traced hyperparameters (learning_rate, ent_coef, vf_coef, "
                        "max_grad_norm, clip_epsilon, gamma, gae_lambda, reward_scale)")
    t.add_argument("--out", type=Path, default=None, help="output directory (default runs/ENV-ALGO-SEED)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint/")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the run already in OUT (its summary, plot, checkpoint and "
                        "TensorBoard files; nothing else)")
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
    e.add_argument("--env", default=None, metavar="MODULE:ID",
                   help="the run's env when it is your own, as MODULE:ID: MODULE is imported "
                        "(a2c_jax never imports a module a checkpoint names)")
    e.add_argument("--gif", type=Path, default=None, metavar="FILE",
                   help="also write one greedy episode as an animated GIF")
    e.add_argument("--run", type=int, default=0,
                   help="which run of an --engine jit checkpoint with --num-seeds or --sweep "
                        "(default 0)")
    x = sub.add_parser("export", help="write a run's trained policy alone, for a2c_jax.load_policy")
    x.add_argument("dir", type=Path, help="a run's --out directory (it reads DIR/checkpoint/)")
    x.add_argument("--out", type=Path, required=True, help="the policy directory to write")
    x.add_argument("--env", default=None, metavar="MODULE:ID",
                   help="the run's env when it is your own, as MODULE:ID: MODULE is imported "
                        "(a2c_jax never imports a module a checkpoint names)")
    x.add_argument("--run", type=int, default=0,
                   help="which run of an --engine jit checkpoint with --num-seeds (default 0)")
    return p


def _check_env(env_id: str) -> None:
    from .training._config import check_env_id

    try:
        check_env_id(env_id)
    except ValueError as err:
        raise UsageError(str(err)) from None


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
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the run in --out, --overwrite replaces it: give one "
                         "of them")
    overrides = _overrides(args)
    if args.engine == "jit" and overrides.get("env_kwargs", ((),))[0]:
        raise UsageError("env_kwargs are for --engine loop (gymnax's JAX-native envs take no "
                         "gymnasium keyword arguments)")
    import time

    from .training import drive

    multi = _start_processes(args)
    algo, config, seed, out, ckpt = _run_settings(args, "-jit" if args.engine == "jit" else "",
                                                  overrides)
    t0 = time.perf_counter()
    if args.resume:
        trainer = _load(args, ckpt)
        try:
            _check_resumed(args, trainer, ckpt, overrides)
        except UsageError:
            _close(trainer)
            raise
        steps = _resume_steps(trainer, overrides, out)
        if steps is None:
            return 0
    else:
        trainer = _new(args, config, seed)
        steps = config.total_steps
        if args.overwrite and _writes_outputs():  # once the new run is built
            with _alone():
                _replace_previous_run(out, True)
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
    from .training._sweep import SweepError, from_options

    try:
        sweep = from_options(args.sweep, config, args.engine, args.set)
    except SweepError as err:
        raise UsageError(err.option_message) from None
    if args.engine == "loop":
        from .training import Trainer

        return Trainer(args.env, config, seed, asynchronous=args.async_envs)
    from .training._jit import EngineError, JitTrainer

    try:
        return JitTrainer(args.env, config, seed, num_seeds=args.num_seeds or 1,
                          devices=_devices(args), sweep=sweep)
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


def _close(trainer: Trainer | JitTrainer) -> None:
    close = getattr(trainer, "close", None)
    if close is not None:  # the loop engine's envs
        close()


def _resume_steps(trainer: Trainer | JitTrainer, overrides: dict[str, tuple[Any, str]],
                  out: Path) -> int | None:
    """The total env steps a resumed run trains to: ``--steps`` (or ``--set total_steps``), else
    the run's own total; ``None`` (with one line printed, the envs closed) when the run has them
    already. A new total is kept in the run's config, so the next ``--resume`` continues to it."""
    saved = trainer.config.total_steps
    steps = overrides["total_steps"][0] if "total_steps" in overrides else saved
    if steps <= trainer.env_steps:
        _close(trainer)
        if "total_steps" in overrides:
            print(f"{out} already has {trainer.env_steps:,} env steps, {overrides['total_steps'][1]}"
                  f" asks for {steps:,}; nothing to do (give --steps N above "
                  f"{trainer.env_steps:,} to continue further)")
        else:
            print(f"{out} already has {trainer.env_steps:,} of its {saved:,} env steps; nothing "
                  f"to do (give --steps N to continue further)")
        return None
    if steps != saved:
        # the config is read-only for users (the jit engine compiles from it); total_steps is read
        # by no compiled program, so the engine's own copy is updated here
        trainer._config = trainer.config.replace(total_steps=steps)
    return steps


def _show(key: str, value: Any) -> str:
    """A config value as ``--set`` spells it."""
    if key == "env_kwargs":
        return json.dumps(dict(value))
    if key == "hidden":
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _check_resumed(args: argparse.Namespace, trainer: Trainer | JitTrainer, ckpt: Path,
                   overrides: dict[str, tuple[Any, str]]) -> None:
    """A resumed run keeps its own settings: an option given that contradicts them is an error
    (``--steps``/``total_steps`` aside: it is how far to train)."""
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
    from .training._sweep import SweepError, check_resumed

    try:  # a resumed sweep keeps its grid; --sweep may repeat it, not change it
        check_resumed(args.sweep, getattr(trainer, "sweep", None), trainer.config, ckpt,
                      args.engine)
    except SweepError as err:
        raise UsageError(err.option_message) from None
    for key, (value, source) in overrides.items():
        saved_value = getattr(trainer.config, key)
        if key != "total_steps" and value != saved_value:
            raise UsageError(f"{ckpt} was trained with {key}={_show(key, saved_value)}, "
                             f"{source} gives {key}={_show(key, value)}; drop it to resume the "
                             "run, or choose another --out")


def _overrides(args: argparse.Namespace) -> dict[str, tuple[Any, str]]:
    """The config keys the command sets, each ``(checked value, the option that gave it)``:
    ``--config`` < ``--set`` < the dedicated flags (``--algo``, ``--num-envs``, ``--steps``,
    ``--shared-backbone``, ``--env-kwargs``); a flag and a ``--set`` of the same key must agree."""
    from .training._config import load_config_file, parse_assignments, parse_env_kwargs
    from .training._keys import check_value

    out: dict[str, tuple[Any, str]] = {}
    try:
        if args.config is not None:
            out.update((k, (v, f"--config {args.config}"))
                       for k, v in load_config_file(args.config).items())
        sets = parse_assignments(args.set)
        out.update((k, (v, "--set")) for k, v in sets.items())
        flags = {"algo": (args.algo, "--algo"), "num_envs": (args.num_envs, "--num-envs"),
                 "total_steps": (args.steps, "--steps"),
                 "shared_backbone": (args.shared_backbone or None, "--shared-backbone"),
                 "env_kwargs": (parse_env_kwargs(args.env_kwargs) if args.env_kwargs else None,
                                "--env-kwargs")}
        for key, (value, flag) in flags.items():
            if value is None:
                continue
            value = check_value(key, value)
            if key in sets and sets[key] != value:
                raise UsageError(f"--set {key}={_show(key, sets[key])} contradicts {flag} "
                                 f"{_show(key, value)}: give one of them")
            out[key] = (value, flag)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return out


def _run_settings(args: argparse.Namespace, suffix: str, overrides: dict[str, tuple[Any, str]],
                  ) -> tuple[str, TrainConfig, int, Path, Path]:
    """``(algo, config, seed, out, checkpoint)`` of a new run from the command's options (the
    preset of the env and algorithm, then ``overrides``); the output directory is checked for
    writing and, for a new run, for a previous run (see ``--overwrite``)."""
    algo, config = _algo_and_config(args.env, overrides)
    seed = 0 if args.seed is None else args.seed
    name = args.env.rpartition(":")[2]   # MODULE:ID: the id alone
    out = args.out or Path("runs") / f"{name}-{algo}-{seed}{suffix}"
    _check_out(out)
    if not args.resume and not args.overwrite:
        # every process refuses a used --out alike (nothing is removed without --overwrite)
        _replace_previous_run(out, False, remove=False)
    elif not args.resume and _writes_outputs():
        with _alone():
            _replace_previous_run(out, True, remove=False)  # checked now, removed later
    return algo, config, seed, out, out / CHECKPOINT


def _alone() -> contextlib.AbstractContextManager[None]:
    """Around a step only process 0 takes: over several processes, its failure ends the run at
    once, in one line (the others would otherwise wait for it in their next collective)."""
    from .training._distributed import abort_on_lost_process

    return abort_on_lost_process()


def _writes_outputs() -> bool:
    """Whether this process writes the run's outputs (over several processes, process 0)."""
    from .training._distributed import is_main

    return is_main()


def _algo_and_config(env_id: str,
                     overrides: dict[str, tuple[Any, str]]) -> tuple[str, TrainConfig]:
    """The algorithm (given, or by the action space: a2c for Discrete, ppo for Box) and the
    preset of ``(env_id, algo)`` with ``overrides`` applied (checked)."""
    import gymnasium

    from .training import preset
    from .training._trainer import check_spaces

    env_kwargs = dict(overrides["env_kwargs"][0]) if "env_kwargs" in overrides else {}
    shown = f" with env_kwargs {_show('env_kwargs', env_kwargs)}" if env_kwargs else ""
    try:
        probe = gymnasium.make(env_id, **env_kwargs)
    except (gymnasium.error.Error, TypeError, ValueError) as err:
        # e.g. a missing optional dependency, or a keyword argument the env does not take
        raise UsageError(f"cannot make {env_id}{shown}: {err}") from None
    try:
        check_spaces(probe, env_id)
    except TypeError as err:
        raise UsageError(str(err)) from None
    finally:
        probe.close()
    space = probe.action_space
    algo = overrides["algo"][0] if "algo" in overrides else (
        "a2c" if isinstance(space, gymnasium.spaces.Discrete) else "ppo")
    try:
        config = preset(env_id, algo).replace(**{k: v for k, (v, _) in overrides.items()})
    except ValueError as err:
        raise UsageError(str(err)) from None
    if config.normalize_obs and not isinstance(probe.observation_space, gymnasium.spaces.Box):
        raise UsageError(f"normalize_obs needs a Box observation space; {env_id}'s is "
                         f"{probe.observation_space} (one-hot and discrete observations are not "
                         "normalised): --set normalize_obs=false")
    return algo, config


#: what a run writes in its --out: the files and directories --overwrite may remove
_RUN_FILES = ("summary.json", "learning_curve.png", "sweep.md", "sweep.png")


def _replace_previous_run(out: Path, overwrite: bool, remove: bool = True) -> None:
    """Refuses an ``out`` that holds another run (its ``summary.json``, ``checkpoint/`` or
    TensorBoard event files) unless ``overwrite``; then removes that run's outputs (unless not
    ``remove``: only the checks), and nothing else (a checkpoint holding files its manifest does
    not list is refused, untouched)."""
    if (out / "tensorboard").is_symlink():
        raise UsageError(f"{out / 'tensorboard'} is a symbolic link: a2c_jax writes a real "
                         "directory there and does not follow a link to replace what it holds "
                         "(move it away, or choose another --out)")
    events = sorted((out / "tensorboard").glob("**/events.out.tfevents.*"))
    ckpt = out / CHECKPOINT
    found = [name for name in _RUN_FILES[:1] if (out / name).exists()]
    found += [f"{CHECKPOINT}/"] if ckpt.exists() or ckpt.is_symlink() else []
    found += ["TensorBoard event files"] if events else []
    if not found:
        return
    if not overwrite:
        raise UsageError(f"{out} already holds a run ({', '.join(found)}): continue it with "
                         "--resume, replace it with --overwrite, or choose another --out")
    checkpoint_files = _checkpoint_files(ckpt) if ckpt.exists() or ckpt.is_symlink() else []
    if not remove:
        return
    for path in [*(out / name for name in _RUN_FILES), *checkpoint_files, *events]:
        path.unlink(missing_ok=True)
    for directory in [ckpt, *{e.parent for e in events}, out / "tensorboard"]:
        _remove_empty_dirs(directory)


def _checkpoint_files(ckpt: Path) -> list[Path]:
    """The files of the a2c_jax checkpoint ``ckpt`` (those its manifest lists, and the manifest),
    or ``UsageError`` when it holds anything else."""
    from .utils._checkpoint import MANIFEST

    def refuse(why: str) -> UsageError:
        return UsageError(f"{ckpt} {why}: not removing it (move it away, or choose another --out)")

    if ckpt.is_symlink() or not ckpt.is_dir():
        raise refuse("is not a checkpoint directory")
    try:
        listed = json.loads((ckpt / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        listed = None
    if not isinstance(listed, dict):
        if not any(ckpt.iterdir()):
            return []
        raise refuse("has no readable a2c_jax manifest")
    files = [ckpt / MANIFEST, *(ckpt / name for name in listed)]
    known = {f.resolve() for f in files}
    if any(ckpt.resolve() not in f.parents for f in known):
        raise refuse("has a manifest that lists files outside it")
    others = [p for p in ckpt.rglob("*") if not p.is_dir() and p.resolve() not in known]
    if others:
        raise refuse(f"holds files its manifest does not list ({others[0].relative_to(ckpt)})")
    return files


def _remove_empty_dirs(top: Path) -> None:
    """Removes ``top`` and the directories under it that are (then) empty, deepest first."""
    if not top.is_dir() or top.is_symlink():
        return
    for d in sorted((p for p in top.rglob("*") if p.is_dir() and not p.is_symlink()),
                    key=lambda p: len(p.parts), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    if not any(top.iterdir()):
        top.rmdir()


def _load_saved(path: Path, env_id: str | None = None) -> Trainer | JitTrainer:
    """The run saved at ``path``, of whichever engine wrote it (the jit engine's on one device:
    evaluating and exporting need no mesh). ``env_id`` (``--env``, for the user's own env as
    ``module:id``) is checked, its module imported, and must be the run's."""
    from .training import Trainer
    from .utils import CheckpointError, load_checkpoint

    if env_id is not None:
        _check_env(env_id)
    try:
        saved = load_checkpoint(path).get("env_id")
        if env_id is not None and saved != env_id:
            raise UsageError(f"{path} is a run on {saved}, not --env {env_id}")
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
    from .training._config import make_env
    from .training._driver import eval_seed
    from .utils import evaluate_greedy

    trainer = _load_saved(args.dir / CHECKPOINT, args.env)
    _close(trainer)  # the loop engine's training envs: evaluation makes its own
    _check_run(trainer, args.run)
    seed = _run_seed(trainer, args.run)
    # the run's policy (with its observation normalisation) in an env made with its env_kwargs
    env = make_env(trainer.env_id, trainer.config)
    try:
        mean = evaluate_greedy(trainer.policy(args.run), env, args.episodes,
                               first_seed=eval_seed(seed))
    finally:
        env.close()
    engine = ""
    if trainer.engine == "jit":
        engine = f" (--engine jit, run {args.run}, seed {seed})" if args.run else \
            f" (--engine jit, seed {seed})"
    print(f"{trainer.env_id}{engine}: mean greedy return over {args.episodes} episodes: "
          f"{mean:.2f}")
    if args.gif is not None:
        _write_gif(trainer, args.gif, args.run)
    return 0


def _run_seed(trainer: Trainer | JitTrainer, run: int) -> int:
    """The seed of run ``run`` (of ``--num-seeds``, or of a sweep's configs x seeds)."""
    run_seed = getattr(trainer, "run_seed", None)
    return int(run_seed(run)) if run_seed is not None else trainer.seed + run


def _write_gif(trainer: Trainer | JitTrainer, path: Path, run: int = 0) -> None:
    """One greedy episode of run ``run`` (reproducible: the env's generator seeded with the run's
    first evaluation seed, after which generate_gif's own reset starts the episode) as an
    animated GIF, in gymnasium's env (the jit engine's: the gymnasium twin of its gymnax env)."""
    import gymnasium

    from .training._config import make_env
    from .training._driver import eval_seed
    from .utils import generate_gif

    try:
        env = make_env(trainer.env_id, trainer.config, render_mode="rgb_array")
    except (gymnasium.error.Error, TypeError, ValueError) as err:
        raise UsageError(f"cannot make {trainer.env_id} to render it: {err}") from None
    try:
        modes = env.metadata.get("render_modes", [])
        if "rgb_array" not in modes:
            raise UsageError(f"{trainer.env_id} cannot render frames for --gif (its render "
                             f"modes: {', '.join(modes) or 'none'})")
        # seeds the env's generator; the GIF resets again
        env.reset(seed=eval_seed(_run_seed(trainer, run)))
        try:
            generate_gif(env, path, policy=trainer.policy(run).mode)
        except OSError as err:
            raise UsageError(f"cannot write --gif {str(path)!r}: {err.strerror or err}") from None
    finally:
        env.close()
    print(f"wrote one greedy episode of {trainer.env_id} to {path}")


def _check_run(trainer: Trainer | JitTrainer, run: int) -> None:
    runs = getattr(trainer, "num_runs", trainer.num_seeds)   # a sweep's: configs x seeds
    if not 0 <= run < runs:
        raise UsageError(f"--run must be between 0 and {runs - 1} (the checkpoint holds {runs} "
                         f"run(s)), got {run}")


def export(args: argparse.Namespace) -> int:
    """``a2c-jax export DIR --out PATH``: the policy of DIR's checkpoint, alone (see
    :func:`a2c_jax.load_policy`)."""
    from .training import Trainer
    from .utils import CheckpointError

    trainer = _load_saved(args.dir / CHECKPOINT, args.env)
    try:
        _check_run(trainer, args.run)
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
          f"{trainer.engine}, seed {_run_seed(trainer, args.run)}, {trainer.env_steps:,} env steps) to "
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
