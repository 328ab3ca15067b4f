"""Exported policies: `Trainer.export` / `JitTrainer.export` / `a2c-jax export` and
`a2c_jax.load_policy` give the trainer's policy back, exactly, without the training run."""

import json

import gymnasium
import haiku as hk
import jax
import numpy as np
import pytest
from conftest import assert_bitwise, func_pi, func_v

import a2c_jax
from a2c_jax import cli
from a2c_jax._export import space_from_json, space_to_json
from a2c_jax.training import JitTrainer, Trainer, preset
from a2c_jax.utils import CheckpointError, load_checkpoint, save_checkpoint


def small(env_id="CartPole-v1", algo="a2c", **changes):
    return preset(env_id, algo).replace(**{"num_envs": 2, "hidden": (8,), **changes})


def observations(space, n=64):
    space = gymnasium.spaces.Box(-2.0, 2.0, space.shape, np.float32) \
        if isinstance(space, gymnasium.spaces.Box) else space
    space.seed(1)
    return np.stack([space.sample() for _ in range(n)]).astype(np.float32)


def assert_same_policy(loaded, reference, S):
    """The same greedy actions, distribution parameters and (same key) sampled actions."""
    for s in S:
        assert_bitwise(np.asarray(loaded.mode(s)), np.asarray(reference.mode(s)))
        assert_bitwise(loaded.dist_params(s), reference.dist_params(s))
    assert_bitwise(loaded.batch(S, return_logp=True), reference.batch(S, return_logp=True))
    assert loaded.action_space == reference.action_space
    assert loaded.observation_space == reference.observation_space


@pytest.mark.slow  # over 1.5 s (see tests/conftest.py)
@pytest.mark.parametrize("env_id, algo, changes", [
    ("CartPole-v1", "a2c", {}),
    ("CartPole-v1", "a2c", {"shared_backbone": True, "activation": "relu"}),
    ("Pendulum-v1", "ppo", {"n_steps": 16, "batch_size": 16}),
])
def test_exported_policy_acts_as_the_trainers(tmp_path, env_id, algo, changes):
    trainer = Trainer(env_id, small(env_id, algo, **changes), seed=3)
    trainer.run(64, progress=False)
    trainer.export(tmp_path / "policy")
    trainer.close()
    pi = a2c_jax.load_policy(tmp_path / "policy")
    assert isinstance(pi, a2c_jax.Policy)
    assert_same_policy(pi, trainer.policy(0), observations(pi.observation_space))
    pi(observations(pi.observation_space)[0])  # samples
    state = load_checkpoint(tmp_path / "policy", kind="policy")
    assert state["network"] == {"kind": "preset", "algo": algo, "hidden": [8],
                                "activation": changes.get("activation", "tanh"),
                                "shared_backbone": changes.get("shared_backbone", False)}
    assert state["env_id"] == env_id and state["engine"] == "loop"
    assert state["env_steps"] == trainer.env_steps >= 64
    assert state["obs_normalization"] is None
    assert {p.name for p in (tmp_path / "policy").iterdir()} == {"manifest.json", "state.json",
                                                                 "arrays"}


@pytest.mark.slow  # over 1.5 s (see tests/conftest.py)
def test_jit_export_of_one_run_of_several(tmp_path):
    jt = JitTrainer("CartPole-v1", small(num_envs=4), seed=7, num_seeds=2)
    jt.export(tmp_path / "policy", run=1)
    pi = a2c_jax.load_policy(tmp_path / "policy")
    assert_same_policy(pi, jt.policy(1), observations(pi.observation_space))
    s = np.ones(4, np.float32)
    assert not np.array_equal(pi.dist_params(s)["logits"], jt.policy(0).dist_params(s)["logits"])
    assert load_checkpoint(tmp_path / "policy", kind="policy")["seed"] == 8
    with pytest.raises(IndexError, match="run 2 out of range"):
        jt.export(tmp_path / "other", run=2)


@pytest.mark.slow  # over 1.5 s (see tests/conftest.py)
def test_own_networks_need_their_function_again(tmp_path):
    trainer = Trainer("CartPole-v1", small(), seed=1, func_pi=func_pi, func_v=func_v)
    trainer.run(32, progress=False)
    trainer.export(tmp_path / "policy")
    trainer.close()
    assert load_checkpoint(tmp_path / "policy", kind="policy")["network"] == {
        "kind": "custom", "algo": "a2c"}
    with pytest.raises(CheckpointError, match="a policy of your own network .* pass that "
                                              "function again, load_policy\\(path, func_pi=...\\)"):
        a2c_jax.load_policy(tmp_path / "policy")
    pi = a2c_jax.load_policy(tmp_path / "policy", func_pi=func_pi)
    assert_same_policy(pi, trainer.policy(0), observations(pi.observation_space))

    def other_pi(S, is_training):
        return {"logits": hk.Linear(2, name="head")(hk.Linear(5, name="body")(S))}

    with pytest.raises(CheckpointError, match="the saved parameters do not fit func_pi \\(pass the "
                                              "function the policy was trained with\\)"):
        a2c_jax.load_policy(tmp_path / "policy", func_pi=other_pi)


def test_a_wrong_func_pi_for_a_preset_policy_is_refused(tmp_path):
    trainer = Trainer("CartPole-v1", small(), seed=1)
    trainer.export(tmp_path / "policy")
    trainer.close()
    with pytest.raises(CheckpointError, match="do not fit func_pi.*'params'"):
        a2c_jax.load_policy(tmp_path / "policy", func_pi=func_pi)


def test_the_normalisation_slot_and_other_formats_are_refused(tmp_path):
    trainer = Trainer("CartPole-v1", small(), seed=1)
    trainer.export(tmp_path / "policy")
    trainer.close()
    state = dict(load_checkpoint(tmp_path / "policy", kind="policy"))
    # the normalisation slot is read now (tests/test_normalize.py): a damaged entry is refused
    for change, problem in [({"obs_normalization": {"mean": np.zeros(4)}},
                             "an invalid obs_normalization entry"),
                            ({"policy_format": 2}, "exported policy of format 2"),
                            ({"network": {"kind": "preset", "hidden": "64"}},
                             "an invalid network description"),
                            ({"action_space": {"type": "Tuple"}},
                             "action_space is not a valid space description")]:
        save_checkpoint(tmp_path / "bad", {**state, **change}, kind="policy")
        with pytest.raises(CheckpointError, match=problem):
            a2c_jax.load_policy(tmp_path / "bad")


@pytest.mark.parametrize("space", [
    gymnasium.spaces.Box(-np.inf, np.inf, (3, 2), np.float32),
    gymnasium.spaces.Box(np.array([-1.0, 0.0]), np.array([2.5, 1e30]), (2,), np.float64),
    gymnasium.spaces.Box(0, 255, (2, 2), np.uint8),
    gymnasium.spaces.Discrete(5, start=-2),
    gymnasium.spaces.MultiBinary(4),
    gymnasium.spaces.MultiBinary([2, 3]),
])
def test_spaces_round_trip_through_json(space):
    d = json.loads(json.dumps(a2c_jax.utils._checkpoint.to_json(space_to_json(space))))
    back = space_from_json(a2c_jax.utils._checkpoint.from_json(d), "test")
    assert back == space and back.dtype == space.dtype


def test_other_spaces_cannot_be_exported():
    with pytest.raises(TypeError, match="Tuple.*cannot be exported"):
        space_to_json(gymnasium.spaces.Tuple([gymnasium.spaces.Discrete(2)]))


@pytest.mark.slow  # over 1.5 s (see tests/conftest.py)
def test_cli_export_writes_a_policy(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--env", "CartPole-v1", "--num-envs", "2", "--steps", "40",
                     "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["export", str(out), "--out", str(tmp_path / "policy")]) == 0
    printed = capsys.readouterr().out
    assert "wrote the policy of CartPole-v1 (a2c, --engine loop, seed 0, 40 env steps)" in printed
    trainer = Trainer.load(out / "checkpoint")
    pi = a2c_jax.load_policy(tmp_path / "policy")
    assert_same_policy(pi, trainer.policy(0), observations(pi.observation_space, 8))
    trainer.close()
    assert cli.main(["export", str(out), "--out", str(tmp_path / "p2"), "--run", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["a2c-jax: error: --run must be between 0 and 0 (the checkpoint holds 1 run(s)), "
                   "got 1"]
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep")
    assert cli.main(["export", str(out), "--out", str(tmp_path / "taken")]) == 2
    assert "exists and is not an a2c_jax checkpoint: not replacing it" in capsys.readouterr().err
    assert jax.tree.leaves(pi.params)
