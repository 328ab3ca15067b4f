"""Launching a peer library's interpreter (coax, SB3, PureJaxRL) or our own, and reading its RESULT.

Every benchmark that compares a2c_jax with a peer runs the peer in its own virtualenv (built by
``bash ../shared/anchors/setup.sh <peer>`` under ``/tmp/a2c-anchors/<peer>``) as a subprocess, and
reads the ``RESULT {json}`` lines the peer's script prints. This module is that code, once::

    from _peers import launch, peer_python

    run = launch(peer_python("sb3"), [script, "--seed", "0"], peer="sb3")
    run.result            # the last RESULT line, as a dict
    run.seconds           # the whole command's wall time

A missing interpreter raises :class:`PeerMissingError` naming the ``setup.sh`` command that builds
it; a failed run raises :class:`PeerError` with the command and the tail of its output (or, with
``on_failure="exit"``, exits with that message).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]
#: where ``setup.sh`` builds the peers' virtualenvs (its ``A2C_ANCHORS``)
ANCHORS = Path(os.environ.get("A2C_ANCHORS", "/tmp/a2c-anchors"))
RESULT_PREFIX = "RESULT "
PEERS = ("coax", "sb3", "purejaxrl")


class PeerError(RuntimeError):
    """A launched command failed, or printed no ``RESULT`` line where one was expected."""


class PeerMissingError(PeerError):
    """A peer's interpreter (or the script it should run) is not there."""


def setup_hint(peer: str) -> str:
    """The command that builds ``peer``'s virtualenv, run from the repository root."""
    return f"bash ../shared/anchors/setup.sh {peer}"


def peer_python(peer: str) -> str:
    """The default interpreter of ``peer`` (``/tmp/a2c-anchors/<peer>/bin/python``)."""
    return str(ANCHORS / peer / "bin" / "python")


def missing_message(python: str, peer: str) -> str:
    return (f"{peer}'s python not found at {python}; build it with `{setup_hint(peer)}` "
            f"(from the repository root; a few minutes)")


def require_python(python: str, peer: str) -> str:
    """``python`` if it exists, else :class:`PeerMissingError` naming the ``setup.sh`` command."""
    if not Path(python).exists():
        raise PeerMissingError(missing_message(python, peer))
    return python


def parse_results(text: str) -> list[dict[str, Any]]:
    """Every ``RESULT {json}`` line of ``text``, parsed, in order."""
    return [json.loads(line[len(RESULT_PREFIX):]) for line in text.splitlines()
            if line.startswith(RESULT_PREFIX)]


def cpu_env(force: bool = False) -> dict[str, str]:
    """``JAX_PLATFORMS=cpu`` for a child (``force=False``: unless this process sets another)."""
    return {"JAX_PLATFORMS": "cpu" if force else os.environ.get("JAX_PLATFORMS", "cpu")}


@dataclass
class PeerRun:
    """One finished command: its output, exit status and wall time."""

    cmd: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def results(self) -> list[dict[str, Any]]:
        """Every ``RESULT`` line of stdout, parsed."""
        return parse_results(self.stdout)

    @property
    def result(self) -> dict[str, Any]:
        """The last ``RESULT`` line of stdout, parsed; :class:`PeerError` if there is none."""
        results = self.results
        if not results:
            raise PeerError(f"no RESULT line from: {' '.join(self.cmd)}\n{self.tail()}")
        return results[-1]

    def tail(self, chars: int = 3000) -> str:
        """The end of stderr (of stdout where stderr is empty): what a failure message shows."""
        return (self.stderr or self.stdout)[-chars:]

    def failure(self) -> str:
        return f"failed (rc {self.returncode}): {' '.join(self.cmd)}\n{self.tail()}"


def launch(python: str, args: Sequence[str | os.PathLike[str]], *, peer: str | None = None,
           cwd: str | os.PathLike[str] | None = ROOT, env: Mapping[str, str] | None = None,
           stream: bool = False, echo: Callable[[str], Any] | None = None,
           timeout: float | None = None,
           on_failure: Literal["raise", "exit", "return"] = "raise") -> PeerRun:
    """Runs ``python *args`` and collects its output.

    Args:
        python: the interpreter: a peer's (:func:`peer_python`) or ``sys.executable``.
        args: the script (or ``-m module``) and its arguments.
        peer: the peer's name (``coax``, ``sb3``, ``purejaxrl``): a missing interpreter then
            raises :class:`PeerMissingError` naming ``bash ../shared/anchors/setup.sh <peer>``.
        cwd: the working directory (default: the repository root; ``None``: this one).
        env: variables set over this process's environment (e.g. :func:`cpu_env`).
        stream: echo each line of stdout as it arrives (to ``echo``, default stderr), besides
            collecting it: for long runs whose progress should show.
        timeout: seconds before the command is killed (``subprocess.TimeoutExpired``).
        on_failure: a non-zero exit ``"raise"``s :class:`PeerError`, ``"exit"``s this process
            with the same message, or is ``"return"``ed for the caller to look at.

    Returns:
        The finished :class:`PeerRun`.
    """
    cmd = [str(python), *map(str, args)]
    full_env = {**os.environ, **env} if env is not None else None
    t0 = time.perf_counter()
    try:
        if stream:
            returncode, stdout, stderr = _stream(cmd, cwd, full_env, timeout,
                                                 echo or _echo_stderr)
        else:
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=full_env,
                                  timeout=timeout)
            returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except (FileNotFoundError, PermissionError) as err:
        if peer is not None and not Path(python).exists():
            raise PeerMissingError(missing_message(python, peer)) from None
        raise PeerMissingError(f"cannot run {' '.join(cmd)}: {err}") from None
    run = PeerRun(cmd, returncode, stdout, stderr, time.perf_counter() - t0)
    if not run.ok and on_failure != "return":
        if on_failure == "exit":
            sys.exit(run.failure())
        raise PeerError(run.failure())
    return run


def _echo_stderr(line: str) -> None:
    sys.stderr.write(line)
    sys.stderr.flush()


def _stream(cmd: list[str], cwd: str | os.PathLike[str] | None, env: dict[str, str] | None,
            timeout: float | None, echo: Callable[[str], Any]) -> tuple[int, str, str]:
    """``(returncode, stdout, stderr)``, echoing stdout line by line; stderr read beside it."""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=cwd, env=env, bufsize=1) as proc:
        out, err = proc.stdout, proc.stderr
        assert out is not None and err is not None
        err_chunks: list[str] = []
        reader = threading.Thread(target=lambda: err_chunks.append(err.read()), daemon=True)
        reader.start()
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            proc.kill()

        timer = threading.Timer(timeout, kill) if timeout is not None else None
        if timer is not None:
            timer.start()
        out_lines = []
        try:
            for line in out:
                out_lines.append(line)
                echo(line)
            returncode = proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
        reader.join()
        if killed.is_set():
            raise subprocess.TimeoutExpired(cmd, timeout or 0.0, "".join(out_lines),
                                            "".join(err_chunks))
    return returncode, "".join(out_lines), "".join(err_chunks)
