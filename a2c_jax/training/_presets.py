"""Training presets: rl-baselines3-zoo's A2C settings, and PPO for Pendulum."""

from __future__ import annotations

import dataclasses
from typing import Any

from ._keys import KEYS, checked_fields, unknown_key_message


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs besides the env id, the seed and the step budget.

    Defaults are Stable-Baselines3's A2C defaults: 8 envs, 5-step rollouts, gamma 0.99, GAE λ 1
    (plain n-step returns), RMSprop(7e-4, decay 0.99, eps 1e-5), value-loss weight 0.5,
    gradient clipping at 0.5, two 64x64 tanh networks. Unlike SB3, actor and critic have
    separate optimizers (each clipped separately), so ``vf_coef`` only scales the critic's loss,
    which RMSprop and Adam largely normalise away.

    ``shared_backbone=True`` (``a2c-jax train --shared-backbone``) is seed 000's layout instead:
    one ``hidden`` MLP torso shared by the policy and value heads, and one optimizer (clipped at
    ``max_grad_norm`` over all parameters) on ``policy loss - ent_coef * entropy + vf_coef *
    value loss`` (:class:`a2c_jax.ActorCritic`); the torso gets the sum of both gradients. The
    value loss is the same ``½ (G - v)²`` as in the separate layout; SB3's is ``F.mse_loss``,
    without the ½, so SB3's ``vf_coef=0.5`` weighs the value gradient as ``vf_coef=1.0`` does here.

    Every key is checked when a config is made or replaced: a value of the wrong type or out of
    range raises ``ValueError`` naming the key (the rules: ``a2c_jax.training._keys.RULES``).
    Values are stored canonically (Python ints and floats, ``hidden`` as a tuple, ``env_kwargs``
    as sorted ``(name, value)`` pairs), so a config is hashable and survives a checkpoint's JSON.
    """

    algo: str = "a2c"                  # "a2c" (VanillaPG) or "ppo" (PPOClip)
    num_envs: int = 8
    n_steps: int = 5                   # rollout length per env
    gamma: float = 0.99
    gae_lambda: float = 1.0
    learning_rate: float = 7e-4
    optimizer: str = "rmsprop"         # "rmsprop" or "adam"
    ent_coef: float = 0.0
    vf_coef: float = 0.5               # value-loss weight
    max_grad_norm: float = 0.5
    normalize_advantage: bool = False
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    shared_backbone: bool = False      # one torso for pi and v, one optimizer (ActorCritic)
    total_steps: int = 500_000
    # PPO only
    n_epochs: int = 1
    batch_size: int = 0                # 0: the whole rollout in one batch
    clip_epsilon: float = 0.2
    reward_scale: float = 1.0
    eval_episodes: int = 10
    # running normalisation of observations and rewards (SB3's VecNormalize): the statistics are
    # updated from training rollouts only, saved with the checkpoint and applied at evaluation
    normalize_obs: bool = False
    normalize_reward: bool = False     # by the running std of the discounted return
    clip_obs: float = 10.0             # normalised observations are clipped to [-clip, clip]
    clip_reward: float = 10.0
    # keyword arguments of gymnasium.make for every env of the run, training and evaluation:
    # (name, value) pairs sorted by name (a dict is accepted and stored so; lists become tuples)
    env_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        for name, value in checked_fields(self).items():  # canonical values: int, float, tuples
            object.__setattr__(self, name, value)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (checked as the constructor checks them).

        Raises:
            TypeError: an unknown key (the message names the closest valid ones).
            ValueError: a value of the wrong type or out of range (the message names the key).
        """
        for key in changes:
            if key not in KEYS:
                raise TypeError(unknown_key_message(key))
        return dataclasses.replace(self, **changes)


PRESETS: dict[tuple[str, str], TrainConfig] = {
    # rl-baselines3-zoo hyperparams/a2c.yml
    ("CartPole-v1", "a2c"): TrainConfig(num_envs=8, ent_coef=0.0, total_steps=500_000),
    ("Acrobot-v1", "a2c"): TrainConfig(num_envs=16, ent_coef=0.0, total_steps=500_000),
    ("LunarLander-v3", "a2c"): TrainConfig(num_envs=8, gamma=0.995, n_steps=5,
                                           learning_rate=8.3e-4, ent_coef=1e-5,
                                           total_steps=200_000),
    # PPO, rl-baselines3-zoo's Pendulum settings without gSDE; rewards scaled by 0.1
    ("Pendulum-v1", "ppo"): TrainConfig(algo="ppo", num_envs=4, n_steps=1024, gamma=0.9,
                                        gae_lambda=0.95, learning_rate=1e-3, optimizer="adam",
                                        n_epochs=10, batch_size=64, normalize_advantage=True,
                                        clip_epsilon=0.2, reward_scale=0.1, vf_coef=1.0,
                                        total_steps=300_000),
    # rl-baselines3-zoo hyperparams/ppo.yml, LunarLander (16 envs, 1M steps)
    ("LunarLander-v3", "ppo"): TrainConfig(algo="ppo", num_envs=16, n_steps=1024, gamma=0.999,
                                           gae_lambda=0.98, learning_rate=3e-4, optimizer="adam",
                                           n_epochs=4, batch_size=64, ent_coef=0.01,
                                           normalize_advantage=True, clip_epsilon=0.2,
                                           vf_coef=1.0, total_steps=1_000_000),
    ("CartPole-v1", "ppo"): TrainConfig(algo="ppo", num_envs=8, n_steps=32, gamma=0.98,
                                        gae_lambda=0.8, learning_rate=1e-3, optimizer="adam",
                                        n_epochs=20, batch_size=256, normalize_advantage=True,
                                        clip_epsilon=0.2, vf_coef=1.0, total_steps=100_000),
    # rl-baselines3-zoo's settings for the continuous-control envs. Where the zoo has
    # `normalize: true` both observations and rewards are normalised (SB3's VecNormalize, with
    # the algorithm's gamma). Not reproduced here: gSDE (`use_sde`, `sde_sample_freq`), which
    # a2c_jax does not implement (the Gaussian policy explores with a state-independent std,
    # from log-std 0), the zoo's `log_std_init` and `ortho_init=False`, and linear learning-rate
    # schedules (`lin_X`: a constant X here). vf_coef is the zoo's doubled: SB3's value loss is
    # F.mse_loss, without the 1/2 of ours (see TrainConfig).
    # hyperparams/ppo.yml; the zoo's batch_size 256 exceeds the 8-step rollout of 1 env, so SB3
    # takes the whole rollout as one minibatch: batch_size 0 here
    ("MountainCarContinuous-v0", "ppo"): TrainConfig(
        algo="ppo", num_envs=1, n_steps=8, gamma=0.9999, gae_lambda=0.9, learning_rate=7.77e-5,
        optimizer="adam", n_epochs=10, batch_size=0, ent_coef=0.00429, clip_epsilon=0.1,
        max_grad_norm=5.0, vf_coef=0.38, normalize_advantage=True, normalize_obs=True,
        normalize_reward=True, total_steps=20_000),
    # hyperparams/ppo.yml: the zoo does not normalise LunarLanderContinuous for PPO
    ("LunarLanderContinuous-v3", "ppo"): TrainConfig(
        algo="ppo", num_envs=16, n_steps=1024, gamma=0.999, gae_lambda=0.98, learning_rate=3e-4,
        optimizer="adam", n_epochs=4, batch_size=64, ent_coef=0.01, normalize_advantage=True,
        clip_epsilon=0.2, vf_coef=1.0, total_steps=1_000_000),
    # hyperparams/a2c.yml (RMSprop, no advantage normalisation: TrainConfig's A2C defaults)
    ("MountainCarContinuous-v0", "a2c"): TrainConfig(
        num_envs=4, n_steps=100, ent_coef=0.0, vf_coef=1.0, normalize_obs=True,
        normalize_reward=True, total_steps=100_000),
    ("Pendulum-v1", "a2c"): TrainConfig(
        num_envs=8, n_steps=8, gamma=0.9, gae_lambda=0.9, learning_rate=7e-4, ent_coef=0.0,
        vf_coef=0.8, max_grad_norm=0.5, normalize_obs=True, normalize_reward=True,
        total_steps=1_000_000),
    ("LunarLanderContinuous-v3", "a2c"): TrainConfig(
        num_envs=4, n_steps=8, gamma=0.99, gae_lambda=0.9, learning_rate=7e-4, ent_coef=0.0,
        vf_coef=0.8, max_grad_norm=0.5, normalize_obs=True, normalize_reward=True,
        total_steps=5_000_000),
}


def preset(env_id: str, algo: str) -> TrainConfig:
    """The preset for ``(env_id, algo)``, or SB3's defaults for the algorithm."""
    if (env_id, algo) in PRESETS:
        return PRESETS[(env_id, algo)]
    if algo == "ppo":
        return TrainConfig(algo="ppo", n_steps=256, gae_lambda=0.95, optimizer="adam",
                           learning_rate=3e-4, n_epochs=10, batch_size=64,
                           normalize_advantage=True, vf_coef=1.0)
    return TrainConfig()
