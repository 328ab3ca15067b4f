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


def _index(x, k: int) -> Any:
    if isinstance(x, dict):
        return {key: _index(v, k) for key, v in x.items()}
    if isinstance(x, tuple):
        return tuple(_index(v, k) for v in x)
    return np.asarray(x)[k]


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
        # per env, the (s, a, r, logp, w, idx) of the episode under way
        self._traces: dict[int, deque] = {}
        self._ready: deque = deque()  # finished transitions, unbatched field tuples
        self._num_envs: int | None = None  # None: one env, scalar adds; K: batched adds
        self._idx = 0

    def reset(self) -> None:
        """Forgets the episodes under way and every transition not yet popped."""
        self._traces.clear()
        self._ready.clear()
        self._num_envs = None

    def __bool__(self) -> bool:
        return bool(self._ready)

    def add(self, s, a, r, done, logp=0.0, w=1.0, *, truncated=None, s_next=None,
            mask=None) -> None:
        """Records one step ``(s, a, r)`` of the episode under way, or one step of a vector env.

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
            mask: vector envs only: ``[K]`` bools, ``False`` where the step is to be ignored.

        Vector envs: when ``r`` has shape ``[K]``, every argument carries a leading axis ``[K]``
        (scalars ``logp``/``w`` are broadcast) and each env is traced separately. With
        gymnasium 1.x's default next-step autoreset, ``s_next`` of an env that just ended is its
        final observation, and the *following* step only resets it: pass ``mask=~ended`` there::

            S_next, R, term, trunc, _ = envs.step(A)
            tracer.add(S, A, R, term, logP, truncated=trunc, s_next=S_next, mask=~ended)
            ended = term | trunc

        Raises:
            ValueError: a non-finite reward, ``truncated`` without ``s_next``, or a batch whose
                size differs from the first batched add.
        """
        if np.ndim(r) == 0:
            if self._num_envs is not None:
                raise ValueError(f"this tracer traces {self._num_envs} envs: add batches of "
                                 f"{self._num_envs}, or reset() it first")
            if mask is not None:
                raise ValueError("mask is for batched adds (vector envs) only")
            self._add_one(0, s, a, r, done, logp, w, truncated, s_next)
            return
        K = int(np.shape(r)[0])
        if self._num_envs is None and not self._traces:
            self._num_envs = K
        if self._num_envs != K:
            raise ValueError(f"batched add of {K} envs; this tracer traces "
                             f"{self._num_envs or 'a single'} env(s)")
        done = np.broadcast_to(np.asarray(done, bool), (K,))
        logp = np.broadcast_to(np.asarray(logp, np.float64), (K,))
        w = np.broadcast_to(np.asarray(w, np.float64), (K,))
        trunc = None if truncated is None else np.broadcast_to(np.asarray(truncated, bool), (K,))
        keep = np.ones(K, bool) if mask is None else np.broadcast_to(np.asarray(mask, bool), (K,))
        for k in np.flatnonzero(keep):
            self._add_one(int(k), _index(s, k), _index(a, k), r[k], done[k], logp[k], w[k],
                          None if trunc is None else trunc[k],
                          None if s_next is None else _index(s_next, k))

    def _add_one(self, env, s, a, r, done, logp, w, truncated, s_next) -> None:
        r = float(r)
        if not math.isfinite(r):
            raise ValueError(f"reward must be finite, got {r}")
        terminated = bool(done)
        truncated = bool(truncated) and not terminated
        if truncated and s_next is None:
            raise ValueError("truncated=True needs s_next, the final observation, to bootstrap from")
        trace = self._traces.get(env)
        if trace is None:
            trace = self._traces[env] = deque()
        trace.append((_copy_obs(s), _as_action(a), r, float(logp), float(w), self._idx))
        self._idx += 1
        if len(trace) > self.n:  # s_{t+n} is known and is not the end of the episode
            self._emit_front(trace)
        if terminated or truncated:
            self._end_episode(trace, bootstrap=truncated, s_final=s_next)

    def _emit_front(self, trace: deque) -> None:
        s, a, r, logp, w, idx = trace.popleft()
        g = self.gamma
        rn = r + sum(g ** (k + 1) * step[2]
                     for k, step in enumerate(itertools.islice(trace, self.n - 1)))
        s_n, a_n, _, logp_n, _, _ = trace[self.n - 1]
        self._ready.append((s, a, logp, rn, g ** self.n, s_n, a_n, logp_n, w, idx))

    def _end_episode(self, trace: deque, bootstrap: bool, s_final) -> None:
        steps = list(trace)
        trace.clear()
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
                S=s[None], A=a[None], logP=np.array([logp], f32),
                Rn=np.array([rn], f32), In=np.array([i_n], f32), S_next=s_next[None],
                A_next=a_next[None], logP_next=np.array([logp_next], f32),
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
