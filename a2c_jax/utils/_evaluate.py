"""Greedy evaluation of a policy."""

from __future__ import annotations

from typing import Any

import gymnasium


def evaluate_greedy(pi: Any, env: str | gymnasium.Env, episodes: int = 10,
                    first_seed: int = 0) -> float:
    """Mean return of ``pi.mode`` over ``episodes`` fresh episodes.

    Args:
        pi: a :class:`~a2c_jax.Policy`.
        env: a gymnasium env id (a new env is made and closed) or an env.
        episodes: how many episodes, ``>= 1``.
        first_seed: episode ``i`` is reset with seed ``first_seed + i``.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    own = isinstance(env, str)
    e: gymnasium.Env = gymnasium.make(env) if isinstance(env, str) else env
    total = 0.0
    try:
        for ep in range(episodes):
            s, _ = e.reset(seed=first_seed + ep)
            done = False
            while not done:
                s, r, terminated, truncated, _ = e.step(pi.mode(s))
                total += float(r)
                done = terminated or truncated
    finally:
        if own:
            e.close()
    return total / episodes
