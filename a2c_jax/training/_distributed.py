"""Training over several processes with JAX's multi-controller runtime (``jax.distributed``).

Every process runs the same program on its own share of the global envs: the parameters are
replicated over one mesh of all processes' devices, the rollouts are sharded over it by env, and
the compiled update averages the gradients with one all-reduce (gloo on the CPU, NCCL on GPUs).
:func:`initialize` starts the runtime from the command line's ``--coordinator``,
``--num-processes`` and ``--process-id`` (or from a cluster's variables, e.g. Slurm's, which
:func:`jax.distributed.initialize` detects); :func:`is_main` tells the process that writes the
run's outputs; :func:`abort_on_lost_process` turns a peer's death into one line and a bounded exit.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import jax

__all__ = ["DistributedError", "abort_on_lost_process", "check_same", "cluster_detected",
           "exit_after", "initialize", "is_main", "local_env_slice", "parse_coordinator",
           "process_count", "process_index"]

#: seconds a process waits for the others to join (and for the coordinator to answer)
JOIN_TIMEOUT_S = 60
#: seconds without a heartbeat after which the coordination service declares a process dead
HEARTBEAT_TIMEOUT_S = 20


class DistributedError(Exception):
    """A multi-process run that cannot start or cannot go on; the message is one line."""


def parse_coordinator(address: str) -> tuple[str, int]:
    """``(host, port)`` of ``HOST:PORT``; anything else is refused with the reason."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DistributedError(f"--coordinator must be HOST:PORT (a port in 1..65535), got "
                               f"{address!r}")
    return host, int(port)


def cluster_detected() -> bool:
    """Whether the environment describes a multi-process job that
    :func:`jax.distributed.initialize` can set itself up from (Slurm or Open MPI, more than one
    task)."""
    # SLURM_STEP_NUM_TASKS: set by srun for the tasks it starts (not in a bare salloc shell)
    for var in ("SLURM_STEP_NUM_TASKS", "OMPI_COMM_WORLD_SIZE"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 1:
            return True
    return False


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, timeout_s: int = JOIN_TIMEOUT_S) -> None:
    """Joins the multi-process run (before any other JAX call of the process).

    With all three of ``coordinator``, ``num_processes`` and ``process_id``: that run. With none:
    the run a cluster's variables describe (:func:`cluster_detected`). On the CPU the collectives
    go through gloo. A process that cannot join within ``timeout_s`` (an unreachable coordinator,
    a missing process, a ``process_id`` taken twice) gets a :class:`DistributedError`.
    """
    given = [coordinator is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise DistributedError("--coordinator, --num-processes and --process-id go together "
                               "(or none of them, on a cluster JAX detects)")
    if all(given):
        assert num_processes is not None and process_id is not None and coordinator is not None
        parse_coordinator(coordinator)
        if num_processes < 1:
            raise DistributedError(f"--num-processes must be >= 1, got {num_processes}")
        if not 0 <= process_id < num_processes:
            raise DistributedError(f"--process-id must be between 0 and {num_processes - 1} "
                                   f"(--num-processes {num_processes}), got {process_id}")
    elif not cluster_detected():
        raise DistributedError("no --coordinator/--num-processes/--process-id given and no "
                               "multi-process cluster job (Slurm, Open MPI) detected")
    if coordinator is not None:
        _check_coordinator(coordinator, process_id, timeout_s)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    who = f"process {process_id if process_id is not None else '?'}"
    hint = ("does every process have the same --num-processes and its own --process-id, and "
            "are they all started?")
    # the runtime ends the process itself (a multi-line abort) when joining times out: this
    # process reports it in one line first
    watchdog = exit_after(timeout_s, 2, f"a2c-jax: error: {who} could not join the "
                          f"{num_processes or '?'}-process run within {timeout_s} s; {hint}")
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id,
                                   initialization_timeout=timeout_s + 30,
                                   heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S)
    except Exception as err:  # the runtime's errors are long multi-line reports
        raise DistributedError(f"{who} could not join the run: {_first_line(err)}; {hint}") from None
    finally:
        watchdog.cancel()


def _check_coordinator(coordinator: str, process_id: int | None, timeout_s: float) -> None:
    """Process 0 must be able to listen on the coordinator's port; the others must reach it
    within ``timeout_s`` (one line either way, instead of the runtime's abort)."""
    import socket
    import time

    host, port = parse_coordinator(coordinator)
    if process_id == 0:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("", port))
            except OSError as err:
                raise DistributedError(
                    f"process 0 cannot listen on port {port} of --coordinator {coordinator}: "
                    f"{err.strerror or err} (another run, or a second --process-id 0?)") from None
        return
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=2).close()
            return
        except OSError as err:
            if time.monotonic() >= deadline:
                raise DistributedError(
                    f"process {process_id} cannot reach the coordinator {coordinator} within "
                    f"{timeout_s} s: {err.strerror or err} (is process 0 started, and the address "
                    "reachable from here?)") from None
            time.sleep(0.5)


def check_same(settings: dict[str, Any]) -> None:
    """Every process must run with the same ``settings`` (e.g. the command's options): compared
    across processes in one all-gather; a difference is a :class:`DistributedError` naming the
    first process that differs, raised in every process."""
    import hashlib
    import json

    import numpy as np
    from jax.experimental import multihost_utils

    text = json.dumps(settings, sort_keys=True, default=str)
    digest = np.frombuffer(hashlib.sha256(text.encode()).digest()[:8], np.int64)
    every = np.asarray(multihost_utils.process_allgather(digest)).reshape(-1)
    differ = [i for i, d in enumerate(every) if d != every[0]]
    if differ:
        raise DistributedError(f"process {differ[0]} was started with other settings than process "
                               f"0 (every process must run the same command but --process-id); "
                               f"this process's: {text}")


def process_index() -> int:
    return jax.process_index()


def process_count() -> int:
    return jax.process_count()


def is_main() -> bool:
    """Whether this process writes the run's outputs (summary, plots, TensorBoard): process 0."""
    return jax.process_index() == 0


def local_env_slice(num_envs: int, devices: list[jax.Device]) -> slice:
    """The global envs this process steps: the blocks of ``num_envs`` (split evenly over
    ``devices``, in order) that belong to its own devices, which must be one contiguous run."""
    if num_envs % len(devices):
        raise DistributedError(f"num_envs ({num_envs}) must be a multiple of the number of "
                               f"devices ({len(devices)}) to split the envs over them")
    per = num_envs // len(devices)
    mine = [i for i, d in enumerate(devices) if d.process_index == jax.process_index()]
    if not mine:
        raise DistributedError(f"none of the {len(devices)} devices is this process's "
                               f"(process {jax.process_index()})")
    if mine != list(range(mine[0], mine[-1] + 1)):
        raise DistributedError("each process's devices must be consecutive in the device list")
    return slice(mine[0] * per, (mine[-1] + 1) * per)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


@contextmanager
def abort_on_lost_process(report: Callable[[str], Any] | None = None) -> Iterator[None]:
    """Inside a multi-process run: a collective that fails because a process died ends this one
    within a bounded time, with one line, instead of an exception trace or a wait for the
    runtime's shutdown barrier. Outside one (a single process) it does nothing."""
    if jax.process_count() == 1:
        yield
        return
    try:
        yield
    except KeyboardInterrupt:
        raise
    except Exception as err:
        # any error ends this process at once: returning normally would wait at the runtime's
        # shutdown barrier while the others wait in the next collective
        me, n = jax.process_index(), jax.process_count()
        if _is_collective_failure(err):
            # the collective's error names the peer's address, not its index; of two, the other
            lost = f"process {1 - me}" if n == 2 else "another process"
            line = (f"a2c-jax: error: process {me} of {n} lost {lost} of the run "
                    f"({_first_line(err)}); stopping")
        else:
            line = (f"a2c-jax: error: process {me} of {n} failed: {type(err).__name__}: "
                    f"{_first_line(err)}; stopping the run")
        (report or (lambda s: print(s, file=sys.stderr, flush=True)))(line)
        _hard_exit(1)


def _is_collective_failure(err: BaseException) -> bool:
    text = f"{type(err).__name__} {err}".lower()
    return any(s in text for s in ("gloo", "connection closed", "connection reset", "nccl",
                                   "heartbeat", "unavailable", "barrier", "coordination"))


def _hard_exit(status: int, line: str | None = None) -> None:
    """Ends the process now (after printing ``line``): the runtime's orderly shutdown would wait
    for a lost process at its shutdown barrier (minutes) and then abort with a multi-line report."""
    if line:
        print(line, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def exit_after(seconds: float, status: int = 1, line: str | None = None) -> threading.Timer:
    """A daemon timer that ends the process after ``seconds`` (printing ``line``) unless
    cancelled: a bound on a wait for other processes."""
    timer = threading.Timer(seconds, _hard_exit, (status, line))
    timer.daemon = True
    timer.start()
    return timer
