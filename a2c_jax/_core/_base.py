"""The shared machinery of the function approximators :class:`V` and :class:`Policy`."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

import gymnasium
import haiku as hk
import jax
import numpy as np

from ..utils._dispatch import prefer_synchronous_cpu_dispatch
from ..utils._sync import first_differing_module
from ..utils._trees import (
    check_state_dict_keys,
    conform_tree,
    copy_tree,
    tree_from_state_dict,
    tree_signature,
    tree_to_state_dict,
)
from ._spaces import Preprocessor, batch_one, check_batch, default_preprocessor, example_batch

RUN_ONCE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def raw_key(seed: int, stream: int) -> jax.Array:
    """A PRNG key (raw ``uint32[2]``, as ``jax.random.PRNGKey`` makes) for stream ``stream`` of a seed.

    Drawn with numpy's ``SeedSequence``: no eager JAX op, so nothing to compile at construction.
    """
    return jax.device_put(np.random.SeedSequence([seed, stream]).generate_state(2, np.uint32))


def _seed(random_seed: int | None) -> int:
    if random_seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_seed, bool) or not isinstance(random_seed, (int, np.integer)):
        raise TypeError(f"random_seed must be an int or None, got {random_seed!r}")
    return int(random_seed) % 2**32


def _check_signature(func: Callable) -> None:
    """Raises ``TypeError`` unless ``func`` can be called as ``func(S, is_training)``.

    Without this check a one-argument ``func(S)`` fails deep inside ``jax.jit`` with an error
    about ``static_argnums``, which names neither ``func`` nor the missing argument.
    """
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to check
        return
    try:
        sig.bind(None, None)
    except TypeError:
        name = getattr(func, "__name__", repr(func))
        raise TypeError(f"func must be callable as func(S, is_training) (coax's signature); "
                        f"{name}{sig} is not. Add the is_training argument, e.g. "
                        f"def {name}(S, is_training): ...") from None


@jax.jit
def _interpolate(own: Any, other: Any, tau: jax.Array) -> Any:
    # tau is traced: one compiled program for every tau
    return jax.tree.map(lambda a, b: ((1 - tau) * a + tau * b).astype(a.dtype), own, other)


def _observation_space(env: Any) -> gymnasium.Space:
    space = getattr(env, "observation_space", None)
    if not isinstance(space, gymnasium.Space):
        raise TypeError(f"env must be a gymnasium environment with an observation_space, got {env!r}")
    return space


class BaseFunc:
    """A Haiku function turned into an object that holds its parameters.

    ``func(S, is_training)`` is transformed with ``hk.transform_with_state``, initialised on a
    deterministic example batch, and its output checked by :meth:`_check_output`. Functions that
    draw no random numbers (:attr:`uses_rng` is False) are applied with ``rng=None``, so the
    compiled steps carry no key splits for them. The pure core is :meth:`init` and :meth:`apply`
    (coax's name for the latter: :meth:`function`); the object's methods call a few cached jitted
    functions built on them.
    """

    _params_signature: tuple | None = None  # see the params setter

    def __init__(self, func: Callable, env: Any, observation_preprocessor: Preprocessor | None,
                 random_seed: int | None):
        if not callable(func):
            raise TypeError(f"func must be a callable Haiku function, got {func!r}")
        _check_signature(func)
        prefer_synchronous_cpu_dispatch()  # before the first computation; see its docstring
        self.observation_space = _observation_space(env)
        self.observation_preprocessor = (observation_preprocessor
                                         or default_preprocessor(self.observation_space))
        self.random_seed = _seed(random_seed)
        self._transformed = hk.transform_with_state(func)
        self._example = example_batch(self.observation_space, 1)  # raw observations, numpy
        init_key, self._key = raw_key(self.random_seed, 0), raw_key(self.random_seed, 1)
        # one jitted call (eager init would compile every random op separately), compiled with
        # JAX's default options and not RUN_ONCE: a lower backend optimisation level rounds the
        # initialisers' float maths differently (by an ulp), and init(key) under a caller's
        # jit/vmap must give exactly these params
        self._params, self._function_state = jax.jit(self.init)(init_key)
        # shape-only evaluation with a batch of two catches outputs that drop or mix the batch axis
        out_shape, _ = jax.eval_shape(
            lambda p, st, k, S: self.apply(p, st, k, S, False),
            self._params, self._function_state, init_key, example_batch(self.observation_space, 2))
        self._check_output(out_shape, 2)
        self.uses_rng = self._needs_rng()

    def _needs_rng(self) -> bool:
        """Whether ``func`` draws random numbers (``hk.next_rng_key``, dropout) when applied."""
        for is_training in (True, False):
            try:
                jax.eval_shape(lambda p, st, S: self.apply(p, st, None, S, is_training),
                               self._params, self._function_state, self._example)
            except ValueError:
                return True
        return False

    # ---- the pure core ------------------------------------------------------------------------

    def init(self, rng: jax.Array) -> tuple[hk.Params, hk.State]:
        """Pure: fresh ``(params, function_state)`` for the PRNG key ``rng``.

        Haiku's ``init`` of ``func`` on a deterministic example batch of one observation of the
        observation space (preprocessed), in training mode: what the constructor runs, under
        ``jax.jit`` with JAX's default compiler options. So ``f.init(raw_key(f.random_seed, 0))``
        gives ``f``'s initial :attr:`params` and :attr:`function_state` bit for bit when it is
        compiled the same way: inside a ``jax.jit``, alone or ``jax.vmap``-ped over a batch of
        keys. Eagerly too when the initialisers only draw random numbers; a function whose init
        computes state from the example's forward pass (batch norm) can differ in the last bit
        eagerly, as XLA rounds a fused computation differently. Jittable and vmappable; reads
        nothing of ``self`` that changes (not the current params).

        Args:
            rng: a PRNG key (e.g. ``jax.random.PRNGKey(0)`` or :func:`raw_key`).

        Returns:
            ``(params, function_state)``, Haiku dicts.
        """
        return self._transformed.init(rng, self.observation_preprocessor(self._example), True)

    def apply(self, params: hk.Params, function_state: hk.State, rng: jax.Array | None, S: Any,
              is_training: bool) -> tuple[Any, hk.State]:
        """Pure: ``(output, new_function_state)`` for a batch ``S`` of raw observations.

        The observation preprocessor is applied first. Jittable and vmappable; ``is_training``
        must be static under ``jit``. ``rng`` may be ``None`` when :attr:`uses_rng` is False.
        """
        return self._transformed.apply(params, function_state, rng,
                                       self.observation_preprocessor(S), is_training)

    def function(self, params: hk.Params, state: hk.State, rng: jax.Array | None, S: Any,
                 is_training: bool) -> tuple[Any, hk.State]:
        """coax's name for :meth:`apply` (the same pure batched apply)."""
        return self.apply(params, state, rng, S, is_training)

    def _check_output(self, output: Any, batch_size: int) -> None:
        raise NotImplementedError

    # ---- state --------------------------------------------------------------------------------

    @property
    def params(self) -> hk.Params:
        """The Haiku parameters (the live arrays: keep a snapshot with :meth:`copy`).

        Setting checks the tree structure and every leaf's shape; a leaf of another float dtype
        is converted to the current one, a leaf of another kind (e.g. integers) raises.
        """
        return self._params

    @params.setter
    def params(self, new_params: hk.Params) -> None:
        # fast path (the recipe sets params after every update): the same structure, shapes and
        # dtypes as held, which never change over the object's life (conform_tree keeps them)
        if self._params_signature is None:
            self._params_signature = tree_signature(self._params)
        sig = tree_signature(new_params)
        if sig is None or sig != self._params_signature:
            new_params = conform_tree(new_params, self._params, f"{type(self).__name__}.params")
        self._params = new_params

    @property
    def function_state(self) -> hk.State:
        """The Haiku state (e.g. batch-norm statistics). Setting checks structure and shapes."""
        return self._function_state

    @function_state.setter
    def function_state(self, new_state: hk.State) -> None:
        self._function_state = conform_tree(new_state, self._function_state,
                                            f"{type(self).__name__}.function_state")

    def state_dict(self) -> dict[str, Any]:
        """Everything that changes while training, as plain nested dicts of arrays.

        ``{"params": ..., "function_state": ..., "rng": ...}``: the Haiku params and state (dicts
        of module name to dicts of arrays) and the PRNG key this object samples with (a raw
        ``uint32[2]``). The live arrays, not copies (an update never deletes arrays that are still
        referenced elsewhere, so holding them is safe); nothing in it needs pickle. Restore with
        :meth:`load_state_dict`.
        """
        return {"params": tree_to_state_dict(self._params),
                "function_state": tree_to_state_dict(self._function_state), "rng": self._key}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores what :meth:`state_dict` returned (arrays may be numpy, e.g. from a file).

        Every entry must match the current one in tree structure, shape and dtype exactly (nothing
        is broadcast or cast); on an error nothing is changed.

        Raises:
            ValueError: a key is missing or unexpected, or a shape differs (the message names the
                entry, e.g. ``state_dict['params']['torso/linear']['w']``).
            TypeError: an entry is of another type or dtype.
        """
        what = f"{type(self).__name__}.load_state_dict: state_dict"
        check_state_dict_keys(state_dict, ("params", "function_state", "rng"), what)
        params = tree_from_state_dict(self._params, state_dict["params"], f"{what}['params']")
        state = tree_from_state_dict(self._function_state, state_dict["function_state"],
                                     f"{what}['function_state']")
        key = tree_from_state_dict(self._key, state_dict["rng"], f"{what}['rng']")
        self._params, self._function_state, self._key = params, state, key

    def copy(self, deep: bool = True) -> BaseFunc:
        """A copy with its own parameter arrays (safe to update one without touching the other)."""
        new = copy.copy(self)
        if deep:
            new._params = copy_tree(self._params)
            new._function_state = copy_tree(self._function_state)
            new._key = self._key.copy()
        return new

    def soft_update(self, other: BaseFunc, tau: float) -> None:
        """Moves the parameters and function state towards ``other``'s, in place (coax's).

        ``params <- (1 - tau) * params + tau * other.params`` (and the same for
        :attr:`function_state`): ``tau = 1`` copies ``other``, ``tau = 0`` changes nothing. A
        target network ``v_targ = v.copy()`` follows ``v`` with ``v_targ.soft_update(v, tau=0.01)``.
        One compiled call; ``tau`` is traced, so changing it does not recompile.

        Raises:
            TypeError: ``other`` is not an approximator of the same kind (``V`` or ``Policy``).
            ValueError: ``tau`` is not in ``[0, 1]``, or a module differs between the two in name,
                structure or shape (the message names it).
        """
        if not isinstance(other, BaseFunc) or type(other) is not type(self):
            raise TypeError(f"{type(self).__name__}.soft_update needs another "
                            f"{type(self).__name__}, got {type(other).__name__}")
        tau = float(tau)
        if not 0.0 <= tau <= 1.0:
            raise ValueError(f"soft_update: tau must be in [0, 1], got {tau}")
        for what, own, theirs in (("params", self._params, other._params),
                                  ("function_state", self._function_state, other._function_state)):
            # the scripts soft-update after every step: compare signatures (as the params setter
            # does) and search for the differing module only when they differ
            if tree_signature(own) == tree_signature(theirs):
                continue
            found = first_differing_module((own, theirs), sorted(set(own) | set(theirs)),
                                           scope=False, dtypes=False)
            if found is not None:
                name = found[0]
                raise ValueError(
                    f"soft_update: module {name!r} differs between the two {type(self).__name__}s' "
                    f"{what} (present in {'both' if name in own and name in theirs else 'one'}; "
                    "structure or shapes differ): soft updates need approximators of one function")
        self._params, self._function_state = _interpolate(
            (self._params, self._function_state), (other._params, other._function_state),
            np.float32(tau))

    # ---- helpers for subclasses ------------------------------------------------------------

    def _batch_one(self, s: Any) -> Any:
        return batch_one(self.observation_space, s)

    def _check_batch(self, S: Any) -> Any:
        return check_batch(self.observation_space, S)

    def __repr__(self) -> str:
        n = sum(int(np.prod(np.shape(x))) for x in jax.tree.leaves(self._params))
        return f"{type(self).__name__}(observation_space={self.observation_space}, num_params={n})"
