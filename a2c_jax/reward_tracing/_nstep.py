"""n-step and Monte Carlo reward tracers: turn a stream of steps into bootstrapped transitions."""

from __future__ import annotations

import itertools
import math
from collections import deque
from typing import Any

import numpy as np

from ._transition import TransitionBatch


class TracerNotReadyError(RuntimeError):
    """Raised by ``pop()``/``flush()`` when no transition is ready (check ``bool(tracer)`` first)."""


def _check_gamma(gamma) -> float:
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.floating, np.integer)):
        raise TypeError(f"gamma must be a number in [0, 1], got {gamma!r}")
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
    return float(gamma)


def _as_action(a):
    if isinstance(a, (int, np.integer)) and not isinstance(a, bool):
        return np.int32(a)
    return np.array(a)


def _copy_obs(s) -> Any:
    if isinstance(s, dict):
        return {k: _copy_obs(v) for k, v in s.items()}
    if isinstance(s, tuple):
        return tuple(_copy_obs(v) for v in s)
    return np.array(s)


def _batch(xs: list) -> Any:
    first = xs[0]
    if isinstance(first, dict):
        return {k: _batch([x[k] for x in xs]) for k in first}
    if isinstance(first, tuple):
        return tuple(_batch([x[i] for x in xs]) for i in range(len(first)))
    return np.stack(xs)


class NStep:
    """Traces n-step bootstrapped transitions: ``Rn = Σ_{k<n} γ^k r_{t+k}``, ``In = γ^n`` or 0.

    Args:
        n: the number of rewards summed before bootstrapping, ``n >= 1``.
        gamma: the discount factor in ``[0, 1]``.

    Feed it one step at a time with :meth:`add`, then take the ready transitions::

        tracer.add(s, a, r, done, logp)          # the seed's form: done = "the episode ended"
        while tracer:
            buffer.add(tracer.pop())

    The seed's form treats every episode end as terminal (``In = 0``). The truncation-aware form
    passes gymnasium's two flags and the final observation, and bootstraps a time-limit cut::

        s_next, r, terminated, truncated, info = env.step(a)
        tracer.add(s, a, r, terminated, logp, truncated=truncated, s_next=s_next)

    There, a transition ``k`` steps before a truncation gets ``In = γ^k`` and ``S_next = s_next``.
    See :class:`TransitionBatch` for every field.
    """

    def __init__(self, n: int, gamma: float):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"n must be an int >= 1, got {n!r}")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self._setup(int(n), gamma)

    def _setup(self, n: float, gamma: float) -> None:
        self.n = n
        self.gamma = _check_gamma(gamma)
        self._trace: deque = deque()  # (s, a, r, logp, w, idx) of the episode under way
        self._ready: deque = deque()  # finished transitions, unbatched field tuples
        self._idx = 0

    def reset(self) -> None:
        """Forgets the episode under way and every transition not yet popped."""
        self._trace.clear()
        self._ready.clear()

    def __bool__(self) -> bool:
        return bool(self._ready)

    def add(self, s, a, r, done, logp=0.0, w=1.0, *, truncated=None, s_next=None) -> None:
        """Records one step ``(s, a, r)`` of the episode under way.

        Args:
            s: the observation the action was taken in.
            a: the action.
            r: the reward that followed (a finite scalar).
            done: with ``truncated`` left ``None`` (the seed's form), whether the episode ended
                for any reason, treated as terminal. With ``truncated`` given, whether it
                *terminated* (gymnasium's ``terminated``).
            logp: ``log π(a|s)``, stored for objectives such as PPO-clip.
            w: a sample weight.
            truncated: gymnasium's ``truncated``: a time limit cut the episode.
            s_next: the observation after this step. Required when the episode was truncated
                (it is the state to bootstrap from); optional otherwise.

        Raises:
            ValueError: a non-finite reward, or ``truncated`` without ``s_next``.
        """
        r = float(r)
        if not math.isfinite(r):
            raise ValueError(f"reward must be finite, got {r}")
        terminated = bool(done)
        truncated = bool(truncated) and not terminated
        if truncated and s_next is None:
            raise ValueError("truncated=True needs s_next, the final observation, to bootstrap from")
        self._trace.append((_copy_obs(s), _as_action(a), r, float(logp), float(w), self._idx))
        self._idx += 1
        if len(self._trace) > self.n:  # s_{t+n} is known and is not the end of the episode
            self._emit_front()
        if terminated or truncated:
            self._end_episode(bootstrap=truncated, s_final=s_next)

    def _emit_front(self) -> None:
        s, a, r, logp, w, idx = self._trace.popleft()
        g = self.gamma
        rn = r + sum(g ** (k + 1) * step[2]
                     for k, step in enumerate(itertools.islice(self._trace, self.n - 1)))
        s_n, a_n, _, logp_n, _, _ = self._trace[self.n - 1]
        self._ready.append((s, a, logp, rn, g ** self.n, s_n, a_n, logp_n, w, idx))

    def _end_episode(self, bootstrap: bool, s_final) -> None:
        steps = list(self._trace)
        self._trace.clear()
        m, g = len(steps), self.gamma
        s_last, a_last, _, logp_last, _, _ = steps[-1]
        s_next = s_last if s_final is None else _copy_obs(s_final)
        returns = [0.0] * m
        acc = 0.0
        for i in range(m - 1, -1, -1):  # G_i = r_i + γ G_{i+1}; every one of them is within n
            acc = steps[i][2] + g * acc
            returns[i] = acc
        for i, (s, a, _, logp, w, idx) in enumerate(steps):
            i_n = g ** (m - i) if bootstrap else 0.0
            self._ready.append((s, a, logp, returns[i], i_n, s_next, a_last, logp_last, w, idx))

    def pop(self) -> TransitionBatch:
        """The oldest ready transition, as a :class:`TransitionBatch` of batch size 1.

        Raises:
            TracerNotReadyError: nothing is ready.
        """
        if not self._ready:
            raise TracerNotReadyError("no transition is ready: check `while tracer:` before pop()")
        return self._to_batch([self._ready.popleft()])

    def flush(self) -> TransitionBatch:
        """Every ready transition, oldest first, in one :class:`TransitionBatch`.

        Raises:
            TracerNotReadyError: nothing is ready.
        """
        if not self._ready:
            raise TracerNotReadyError("no transition is ready to flush")
        items = list(self._ready)
        self._ready.clear()
        return self._to_batch(items)

    @staticmethod
    def _to_batch(items: list) -> TransitionBatch:
        if len(items) == 1 and isinstance(items[0][0], np.ndarray):  # the per-step fast path
            s, a, logp, rn, i_n, s_next, a_next, logp_next, w, idx = items[0]
            f32 = np.float32
            return TransitionBatch(
                S=s[None], A=np.expand_dims(a, 0), logP=np.array([logp], f32),
                Rn=np.array([rn], f32), In=np.array([i_n], f32), S_next=s_next[None],
                A_next=np.expand_dims(a_next, 0), logP_next=np.array([logp_next], f32),
                W=np.array([w], f32), idx=np.array([idx], np.int32))
        S, A, logP, Rn, In, S_next, A_next, logP_next, W, idx = zip(*items)
        f32 = np.float32
        return TransitionBatch(
            S=_batch(S), A=_batch(A), logP=np.array(logP, f32), Rn=np.array(Rn, f32),
            In=np.array(In, f32), S_next=_batch(S_next), A_next=_batch(A_next),
            logP_next=np.array(logP_next, f32), W=np.array(W, f32), idx=np.array(idx, np.int32))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, gamma={self.gamma})"


class MonteCarlo(NStep):
    """Traces full discounted returns ``Rn = Σ_k γ^k r_{t+k}`` to the end of the episode.

    Transitions become ready when the episode ends. With the seed's form (or a termination)
    ``In = 0``; with the truncation-aware form (see :class:`NStep`) a truncated episode bootstraps
    from ``s_next`` with ``In = γ^k``. An ``NStep`` whose ``n`` exceeds the episode length.
    """

    def __init__(self, gamma: float):
        self._setup(math.inf, gamma)

    def __repr__(self) -> str:
        return f"MonteCarlo(gamma={self.gamma})"
