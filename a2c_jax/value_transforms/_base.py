"""Invertible value transforms ``y = f(x)``: ``V`` then learns ``f(v)`` and reports ``f⁻¹(·)``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import chex
import jax.numpy as jnp

Transform = Callable[[chex.Array], chex.Array]


class ValueTransform:
    """A pair of pure, jittable functions: ``transform_func`` and its inverse ``inverse_func``.

    It unpacks as ``(transform, inverse)``, so it is accepted wherever a pair is, and coax-style
    objects (anything with ``transform_func`` and ``inverse_func``) are accepted by
    :class:`~a2c_jax.V` as well.

    Args:
        transform_func: ``x -> y``, from values to the space the value function learns in.
        inverse_func: ``y -> x``.
    """

    def __init__(self, transform_func: Transform, inverse_func: Transform) -> None:
        if not (callable(transform_func) and callable(inverse_func)):
            raise TypeError("a value transform needs two callables, (transform, inverse); got "
                            f"{transform_func!r} and {inverse_func!r}")
        self.transform_func = transform_func
        self.inverse_func = inverse_func

    def __iter__(self) -> Iterator[Transform]:
        return iter((self.transform_func, self.inverse_func))

    def __getitem__(self, i: int) -> Transform:
        return (self.transform_func, self.inverse_func)[i]

    def __len__(self) -> int:
        return 2

    @classmethod
    def coerce(cls, value_transform: Any) -> ValueTransform | None:
        """``None``, a ``ValueTransform``, a coax-style object or a ``(transform, inverse)`` pair,
        as a ``ValueTransform`` (``None`` stays ``None``).

        Raises:
            TypeError: anything else, or members that are not callable.
        """
        if value_transform is None or isinstance(value_transform, ValueTransform):
            return value_transform
        # Any: a member may be missing or not callable; the constructor raises on either
        fwd: Any = getattr(value_transform, "transform_func", None)
        inv: Any = getattr(value_transform, "inverse_func", None)
        if fwd is not None or inv is not None:
            return cls(fwd, inv)
        if isinstance(value_transform, (tuple, list)) and len(value_transform) == 2:
            return cls(*value_transform)
        raise TypeError("value_transform must be a pair (transform, inverse) of functions or an "
                        "object with transform_func and inverse_func (e.g. "
                        f"a2c_jax.value_transforms.LogTransform()), got {value_transform!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LogTransform(ValueTransform):
    """The invertible log transform ``y = λ sign(x) log(1 + |x| / λ)`` (coax's).

    Its inverse is ``x = λ sign(y) (exp(|y| / λ) - 1)``. It is the identity to first order near
    zero and logarithmic for ``|x| >> λ``, so a value function need not output large returns
    directly (cf. the ``h`` transform of Pohlen et al., 2018, "Observe and Look Further").

    Args:
        scale: the crossover scale ``λ > 0``.
    """

    def __init__(self, scale: float = 1.0) -> None:
        scale = float(scale)
        if not 0 < scale < float("inf"):
            raise ValueError(f"LogTransform's scale must be finite and > 0, got {scale}")
        self.scale = scale

        def transform(x: chex.Array) -> chex.Array:
            return jnp.sign(x) * scale * jnp.log1p(jnp.abs(x) / scale)

        def inverse(y: chex.Array) -> chex.Array:
            return jnp.sign(y) * scale * jnp.expm1(jnp.abs(y) / scale)

        super().__init__(transform, inverse)

    def __repr__(self) -> str:
        return f"LogTransform(scale={self.scale})"
