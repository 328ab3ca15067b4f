"""The batch of transitions that tracers produce, buffers store and updaters consume."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np


class TransitionBatch(NamedTuple):
    """A batch of n-step transitions; a pytree (a ``NamedTuple``), every field with leading axis ``[B]``.

    In rlax's time-indexed names, transition ``t`` with an n-step horizon is::

        S = s_t,  A = a_t,  logP = log π(a_t|s_t),
        Rn = Σ_{k<n} γ^k r_{t+k},
        In = γ^n if s_{t+n} is not terminal, 0 if the episode terminated first,
             γ^k if a time limit truncated it after k < n steps (s_{t+k} is then the last state),
        S_next = s_{t+n} (or that last state), A_next = a_{t+n}, logP_next = log π(a_{t+n}|s_{t+n}),
        W = sample weight, idx = a running transition id.

    The n-step bootstrapped return is ``G = Rn + In * v(S_next)``. When ``In == 0`` the ``*_next``
    fields are placeholders and never contribute.
    """

    S: Any
    A: Any
    logP: Any
    Rn: Any
    In: Any
    S_next: Any
    A_next: Any
    logP_next: Any
    W: Any
    idx: Any

    @property
    def batch_size(self) -> int:
        """The number of transitions, ``len(Rn)``."""
        return int(np.shape(self.Rn)[0])

    @classmethod
    def from_single(cls, s: Any, a: Any, logp: Any, r: Any, done: Any, gamma: float = 0.9,
                    s_next: Any = None, a_next: Any = None, logp_next: Any = None, w: Any = 1.0,
                    idx: Any = None) -> TransitionBatch:
        """A batch of one, built from a single one-step transition.

        ``In = 0`` if ``done`` else ``gamma``; missing ``*_next`` fields copy ``s``, ``a``, ``logp``.
        """
        def one(x: Any, dtype: Any = None) -> np.ndarray:
            return np.asarray(x, dtype)[None]

        return cls(
            S=one(s), A=one(a), logP=one(logp, np.float32), Rn=one(r, np.float32),
            In=one(0.0 if done else gamma, np.float32),
            S_next=one(s if s_next is None else s_next),
            A_next=one(a if a_next is None else a_next),
            logP_next=one(logp if logp_next is None else logp_next, np.float32),
            W=one(w, np.float32), idx=one(0 if idx is None else idx, np.int32),
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={_describe(v)}" for k, v in zip(self._fields, self))
        return f"TransitionBatch({fields})"


def _describe(x: Any) -> str:
    if x is None:
        return "None"
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"{x.dtype}{list(x.shape)}"
    return type(x).__name__
