"""n-step and Monte Carlo reward tracers: turn a stream of steps into bootstrapped transitions."""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _checks
from ._transition import TransitionBatch


class TracerNotReadyError(RuntimeError):
    """Raised by ``pop()``/``flush()`` when no transition is ready (check ``bool(tracer)`` first)."""


def _check_gamma(gamma: Any) -> float:
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.floating, np.integer)):
        raise TypeError(f"gamma must be a number in [0, 1], got {gamma!r}")
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
    return float(gamma)


def _copy_obs(s: Any) -> Any:
    if isinstance(s, dict):
        return {k: _copy_obs(v) for k, v in s.items()}
    if isinstance(s, tuple):
        return tuple(_copy_obs(v) for v in s)
    return np.array(s)


def _index(x: Any, k: int) -> Any:
    if isinstance(x, dict):
        return {key: _index(v, k) for key, v in x.items()}
    if isinstance(x, tuple):
        return tuple(_index(v, k) for v in x)
    return np.asarray(x)[k]


def _batch(xs: Sequence[Any]) -> Any:
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
        self._clear_mode()
        self._idx = 0

    def _clear_mode(self) -> None:
        # None: nothing added since construction or reset(); 0: one env, scalar rewards;
        # K >= 1: batches of K envs. The first add decides; reset() forgets it.
        self._num_envs: int | None = None
        # the per-env shapes of observations and actions seen so far (None: none yet): every
        # later step must match, or batching them in pop()/flush() would fail far from the cause
        self._obs_sig: Any = None
        self._act_sig: Any = None

    def reset(self) -> None:
        """Forgets the episodes under way, every transition not yet popped, and the env count."""
        self._traces.clear()
        self._ready.clear()
        self._clear_mode()

    def __bool__(self) -> bool:
        return bool(self._ready)

    def add(self, s: Any, a: Any, r: Any, done: Any, logp: Any = 0.0, w: Any = 1.0, *,
            truncated: Any = None, s_next: Any = None, mask: Any = None) -> None:
        """Records one step ``(s, a, r)`` of the episode under way, or one step of a vector env.

        Args:
            s: the observation the action was taken in.
            a: the action.
            r: the reward that followed: a finite real scalar for one env, ``[K]`` for ``K``.
            done: with ``truncated`` left ``None`` (the seed's form), whether the episode ended
                for any reason, treated as terminal. With ``truncated`` given, whether it
                *terminated* (gymnasium's ``terminated``).
            logp: ``log π(a|s)``, stored for objectives such as PPO-clip; finite.
            w: a sample weight; finite.
            truncated: gymnasium's ``truncated``: a time limit cut the episode.
            s_next: the observation after this step. Required when the episode was truncated
                (it is the state to bootstrap from); optional otherwise.
            mask: vector envs only: ``[K]`` bools, ``False`` where the step is to be ignored.

        One env or a batch: **the rank of** ``r`` **alone decides**. A scalar ``r`` (a Python
        or numpy number, a 0-d array) is one step of one env. An ``r`` of shape ``[K]`` is one
        step of each of ``K`` vector envs, so a reward of shape ``[1]`` is a batch of *one* env
        (gymnasium's vector env with ``num_envs=1``): its ``s`` needs shape ``[1, *obs_shape]``,
        and an unbatched ``s`` raises rather than being indexed into — a single env must pass
        its reward as a scalar (``float(r)``). The first add fixes the mode and ``K`` until
        :meth:`reset`, and every observation (and action) must have the per-env shape of the
        first.

        Vector envs: ``s``, ``a``, ``s_next`` (each array of a dict/tuple observation),
        ``done``, ``truncated`` and ``mask`` need the leading axis ``[K]``; ``logp`` and ``w``
        may also be scalars, used for every env. Each env is traced separately. With
        gymnasium 1.x's default next-step autoreset, ``s_next`` of an env that just ended is its
        final observation, and the *following* step only resets it: pass ``mask=~ended`` there
        (the masked envs' values are ignored, so only the others must be finite)::

            S_next, R, term, trunc, _ = envs.step(A)
            tracer.add(S, A, R, term, logP, truncated=trunc, s_next=S_next, mask=~ended)
            ended = term | trunc

        Every input is checked before anything is recorded: an add that raises leaves the
        tracer exactly as it was, for every env of a batch.

        Raises:
            ValueError: a non-finite reward, logp or weight; ``truncated`` without ``s_next``; a
                field whose leading axis is not ``K``, or an ``r`` of rank 2 or more; an
                observation or action whose shape differs from earlier ones; an add whose mode or
                ``K`` differs from the first add's.
        """
        if isinstance(r, (float, int)) or np.ndim(r) == 0:
            if self._num_envs:
                raise ValueError(f"this tracer traces {self._num_envs} envs: add batches of "
                                 f"{self._num_envs}, or reset() it first")
            if mask is not None:
                raise ValueError("mask is for batched adds (vector envs) only")
            step = self._check_one(s, a, r, done, logp, w, truncated, s_next)
            self._num_envs = 0
            self._record(0, step)
            return
        for k, step in self._check_batch(s, a, r, done, logp, w, truncated, s_next, mask):
            self._record(k, step)

    def _check_one(self, s: Any, a: Any, r: Any, done: Any, logp: Any, w: Any, truncated: Any,
                   s_next: Any) -> tuple:
        """One env's step, checked and copied: ``(s, a, r, logp, w, terminated, truncated, s_next)``."""
        r = _checks.real("r", r)
        logp, w = _checks.real("logp", logp), _checks.real("w", w)
        terminated = _checks.flag("done", done)
        truncated = truncated is not None and _checks.flag("truncated", truncated) and not terminated
        if truncated and s_next is None:
            raise ValueError("truncated=True needs s_next, the final observation, to bootstrap from")
        step = (_copy_obs(s), _checks.action(a), r, logp, w, terminated, truncated,
                None if s_next is None else _copy_obs(s_next))
        self._check_shapes(step, self._obs_sig, self._act_sig, "")
        return step

    def _check_batch(self, s: Any, a: Any, r: Any, done: Any, logp: Any, w: Any, truncated: Any,
                     s_next: Any, mask: Any) -> list:
        """Every env's step of a batched add, checked and copied: ``[(env, step), ...]``."""
        r = np.asarray(r)
        if r.ndim != 1 or r.shape[0] == 0:
            raise ValueError(f"r must be a scalar (one env) or have shape [K], K >= 1 (K vector "
                             f"envs), got shape {r.shape}")
        K = r.shape[0]
        if self._num_envs == 0:
            raise ValueError(f"batched add of {K} envs; this tracer traces a single env "
                             f"(scalar rewards): reset() it first")
        if self._num_envs is not None and self._num_envs != K:
            raise ValueError(f"batched add of {K} envs; this tracer traces {self._num_envs} envs")
        hint = (" (a single env passes its reward as a scalar, e.g. float(r))"
                if K == 1 and self._num_envs is None else "")
        s = _checks.rows("s", s, K, hint)
        a = _checks.rows("a", a, K, hint)
        s_next = None if s_next is None else _checks.rows("s_next", s_next, K, hint)
        r = _checks.reals("r", r, K, broadcast=False)
        logp = _checks.reals("logp", logp, K, broadcast=True)
        w = _checks.reals("w", w, K, broadcast=True)
        done = _checks.flags("done", done, K)
        trunc = (np.zeros(K, bool) if truncated is None
                 else _checks.flags("truncated", truncated, K) & ~done)
        keep = np.ones(K, bool) if mask is None else _checks.flags("mask", mask, K)
        envs = np.flatnonzero(keep)
        for name, values in (("r", r), ("logp", logp), ("w", w)):
            _checks.require_finite(name, values, envs)
        if s_next is None and trunc[envs].any():
            k = int(envs[np.argmax(trunc[envs])])
            raise ValueError(f"truncated=True (env {k}) needs s_next, the final observations, to "
                             f"bootstrap from")
        steps, obs_sig, act_sig = [], self._obs_sig, self._act_sig
        for k in envs.tolist():
            step = (_copy_obs(_index(s, k)), _checks.action(_index(a, k)), float(r[k]),
                    float(logp[k]), float(w[k]), bool(done[k]), bool(trunc[k]),
                    None if s_next is None else _copy_obs(_index(s_next, k)))
            obs_sig, act_sig = self._check_shapes(step, obs_sig, act_sig, f" (env {k})")
            steps.append((k, step))
        self._num_envs = K  # nothing below raises: the batch is recorded whole
        return steps

    @staticmethod
    def _check_shapes(step: tuple, obs_sig: Any, act_sig: Any, where: str) -> tuple:
        """Raises if this step's observations or action differ in shape from ``*_sig``."""
        s, a, s_next = step[0], step[1], step[7]
        got_obs, got_act = _checks.signature(s), a.shape
        if obs_sig is None:
            obs_sig, act_sig = got_obs, got_act
        if got_obs != obs_sig:
            raise ValueError(f"s{where} has shape {got_obs}; earlier observations had {obs_sig}: "
                             f"every observation traced must have the same shape (or reset())")
        if s_next is not None and _checks.signature(s_next) != obs_sig:
            raise ValueError(f"s_next{where} has shape {_checks.signature(s_next)}; the "
                             f"observations have {obs_sig}")
        if got_act != act_sig:
            raise ValueError(f"a{where} has shape {got_act}; earlier actions had {act_sig}: every "
                             f"action traced must have the same shape (or reset())")
        return obs_sig, act_sig

    def _record(self, env: int, step: tuple) -> None:
        """Records a checked step (nothing here raises)."""
        s, a, r, logp, w, terminated, truncated, s_next = step
        if self._obs_sig is None:
            self._obs_sig, self._act_sig = _checks.signature(s), a.shape
        trace = self._traces.get(env)
        if trace is None:
            trace = self._traces[env] = deque()
        trace.append((s, a, r, logp, w, self._idx))
        self._idx += 1
        if len(trace) > self.n:  # s_{t+n} is known and is not the end of the episode
            self._emit_front(trace)
        if terminated or truncated:
            self._end_episode(trace, bootstrap=truncated, s_final=s_next)

    def _emit_front(self, trace: deque) -> None:
        s, a, r, logp, w, idx = trace.popleft()
        g = self.gamma
        n = int(self.n)  # finite here: MonteCarlo's infinite n never fills a trace
        rn = r + sum(g ** (k + 1) * step[2]
                     for k, step in enumerate(itertools.islice(trace, n - 1)))
        s_n, a_n, _, logp_n, _, _ = trace[n - 1]
        self._ready.append((s, a, logp, rn, g ** n, s_n, a_n, logp_n, w, idx))

    def _end_episode(self, trace: deque, bootstrap: bool, s_final: Any) -> None:
        steps = list(trace)
        trace.clear()
        m, g = len(steps), self.gamma
        s_last, a_last, _, logp_last, _, _ = steps[-1]
        s_next = s_last if s_final is None else s_final  # copied when it was checked
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
        batch = self._to_batch(list(self._ready))
        self._ready.clear()  # only once the batch exists: nothing is lost if batching raises
        return batch

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
