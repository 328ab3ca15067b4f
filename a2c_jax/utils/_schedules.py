"""Schedules of a hyperparameter over the step counter."""

from __future__ import annotations

import math
from numbers import Real

import numpy as np


class StepwiseLinearFunction:
    """A piecewise-linear function through the given points, flat outside them (coax's).

    ``f(x) = y_0`` for ``x <= x_0``, ``y_{k-1}`` for ``x >= x_{k-1}``, and in between the
    straight line between the two neighbouring points. A typical use, an exploration schedule
    over the global step counter ``T``::

        epsilon = StepwiseLinearFunction((0, 1.0), (1_000_000, 0.1), (2_000_000, 0.01))
        pi.epsilon = epsilon(env.T)

    Args:
        *steps: two or more ``(x, y)`` pairs with strictly increasing ``x``: ``x`` an int (as
            coax; a real number is accepted too) and ``y`` a real number.

    Raises:
        TypeError: fewer than two steps, or a step that is not a pair of real numbers.
        ValueError: the ``x`` are not strictly increasing, or a value is not finite.
    """

    def __init__(self, *steps: tuple[float, float]):
        if len(steps) < 2:
            raise TypeError(f"StepwiseLinearFunction needs at least two (x, y) steps, got "
                            f"{len(steps)}")
        for s in steps:
            if not (isinstance(s, (tuple, list)) and len(s) == 2
                    and all(isinstance(v, Real) and not isinstance(v, bool) for v in s)):
                raise TypeError(f"each step must be a pair (x, y) of real numbers, got {s!r}")
            if not all(math.isfinite(v) for v in s):
                raise ValueError(f"each step must be finite, got {s!r}")
        xs = [s[0] for s in steps]
        bad = [(a, b) for a, b in zip(xs, xs[1:]) if not a < b]
        if bad:
            raise ValueError(f"the steps' x must be strictly increasing, got {xs} "
                             f"({bad[0][0]} then {bad[0][1]})")
        self.steps = tuple((s[0], s[1]) for s in steps)
        self._x = np.asarray(xs, np.float64)
        self._y = np.asarray([s[1] for s in steps], np.float64)

    def __call__(self, x: float | np.ndarray) -> float | np.ndarray:
        """The value at ``x`` (a number: a float; an array: an array of the same shape)."""
        out = np.interp(x, self._x, self._y)
        return float(out) if np.ndim(out) == 0 else out

    def __repr__(self) -> str:
        return f"StepwiseLinearFunction{self.steps!r}"
