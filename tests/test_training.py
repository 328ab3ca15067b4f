"""The vector-env trainer and the `a2c-jax` command: resumption, outputs, and bad input."""

import json

import jax
import numpy as np
import pytest

from a2c_jax import cli
from a2c_jax.training import Trainer, preset
from a2c_jax.utils import CheckpointError, load_checkpoint, save_checkpoint


def small(env_id="CartPole-v1", algo="a2c"):
    return preset(env_id, algo).replace(num_envs=4, hidden=(16,))


def assert_same_params(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def test_resumed_run_ends_with_the_same_parameters(tmp_path):
    """Stop at 200 steps, save, load, continue to 400: bitwise the uninterrupted run's params."""
    whole = Trainer("CartPole-v1", small(), seed=3)
    whole.run(400, progress=False)
    first = Trainer("CartPole-v1", small(), seed=3)
    first.run(200, progress=False)
    first.save(tmp_path / "ckpt.pkl")
    resumed = Trainer.load(tmp_path / "ckpt.pkl")
    resumed.run(400, progress=False)
    assert resumed.env_steps == whole.env_steps == 400
    assert_same_params(resumed.pi.params, whole.pi.params)
    assert_same_params(resumed.v.params, whole.v.params)
    assert_same_params(resumed.state, whole.state)  # optimizer states included
    assert resumed.returns == whole.returns


def test_ppo_preset_on_box_actions_runs():
    """PPO with a squashed Gaussian on Pendulum: rollouts, minibatch epochs, finite params."""
    cfg = small("Pendulum-v1", "ppo").replace(n_steps=64, batch_size=64, n_epochs=2)
    tr = Trainer("Pendulum-v1", cfg, seed=0)
    tr.run(512, progress=False)
    assert tr.env_steps == 512 and tr.updates == 2
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(tr.pi.params))
    assert np.isfinite(tr.evaluate(episodes=1))


def test_checkpoint_is_atomic_and_versioned(tmp_path):
    """A checkpoint round-trips; garbage and other versions raise CheckpointError; no temp files."""
    path = tmp_path / "c"
    save_checkpoint(path, {"x": np.arange(3), "y": jax.numpy.ones(2)})
    state = load_checkpoint(path)
    np.testing.assert_array_equal(state["x"], np.arange(3))
    assert isinstance(state["y"], np.ndarray)
    save_checkpoint(path, {"x": np.arange(4)})  # replaced whole
    assert list(load_checkpoint(path)) == ["x"]
    assert [p.name for p in tmp_path.iterdir()] == ["c"]
    (path / "state.json").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="state.json has 16 bytes"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing")


def test_cli_train_writes_its_outputs_and_resumes(tmp_path):
    """`train` writes summary.json (API.md's fields), a PNG, TensorBoard events and a checkpoint;
    a run stopped at 200 and resumed to 400 ends like a straight run to 400."""
    common = ["--env", "CartPole-v1", "--num-envs", "4", "--seed", "1", "--no-progress"]
    assert cli.main(["train", *common, "--steps", "400", "--out", str(tmp_path / "a")]) == 0
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    for key in ("env", "algo", "engine", "seed", "env_steps", "wall_s", "steps_per_s",
                "solved_at_step", "final_mean_return", "eval_mean_return"):
        assert key in summary
    assert summary["env_steps"] == 400 and summary["algo"] == "a2c"
    assert summary["steps_per_s"] == pytest.approx(400 / summary["wall_s"], rel=1e-2)
    assert (tmp_path / "a" / "learning_curve.png").stat().st_size > 0
    assert any((tmp_path / "a" / "tensorboard").iterdir())
    assert cli.main(["train", *common, "--steps", "200", "--out", str(tmp_path / "b")]) == 0
    assert cli.main(["train", *common, "--steps", "400", "--out", str(tmp_path / "b"),
                     "--resume"]) == 0
    a = load_checkpoint(tmp_path / "a" / "checkpoint")
    b = load_checkpoint(tmp_path / "b" / "checkpoint")
    assert_same_params(a["learner"], b["learner"])
    assert cli.main(["eval", str(tmp_path / "a"), "--episodes", "1"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["train", "--env", "CartPol-v1"], "unknown env 'CartPol-v1'; did you mean CartPole-v1"),
    (["train", "--env", "CartPole-v1", "--steps", "-1"], "--steps must be >= 0"),
    (["train", "--env", "CartPole-v1", "--out", "/proc/a2c-jax-test"], "cannot write to --out"),
    (["eval", "/nonexistent-dir"], "no checkpoint at"),
])
def test_cli_bad_input_is_one_line(argv, message, capsys):
    """Bad input: exit status 2 and a single 'a2c-jax: error: ...' line, no traceback."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("a2c-jax: error:") and message in err[0]


def test_cli_corrupt_checkpoint(tmp_path, capsys):
    """A corrupt checkpoint on --resume or eval: one line, exit status 2."""
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "manifest.json").write_bytes(b"\x80garbage")
    assert cli.main(["eval", str(tmp_path)]) == 2
    assert cli.main(["train", "--env", "CartPole-v1", "--out", str(tmp_path), "--resume"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all("manifest.json is not valid JSON" in ln for ln in lines)


def test_truncations_bootstrap_from_final_observations():
    """Same-step autoreset: a truncated step's final observation is kept for its bootstrap value,
    distinct from the next episode's first observation that the rollout continues from."""
    import gymnasium

    env_id = "A2CJaxShortCartPole-v1"
    if env_id not in gymnasium.registry:
        gymnasium.register(env_id, entry_point="gymnasium.envs.classic_control:CartPoleEnv",
                           max_episode_steps=6)
    tr = Trainer(env_id, small().replace(n_steps=20), seed=0)
    rollout = tr._rollout()
    S, term, trunc, finals = rollout.S, rollout.terminated, rollout.truncated, rollout.final_S
    hits = np.argwhere(trunc > 0)
    assert len(hits) > 0
    for t, k in hits:
        assert np.any(finals[t, k] != 0)
        if t + 1 < len(S):
            assert not np.array_equal(finals[t, k], S[t + 1, k])  # the reset obs follows
    assert np.all(finals[(trunc == 0) & (term == 0)] == 0)  # only ended steps have a final obs
    tr._update(rollout)  # and the update accepts it
    tr.close()


def test_async_vector_envs_run():
    """--async-envs: gymnasium's AsyncVectorEnv drives the same rollout and update."""
    tr = Trainer("CartPole-v1", small(), seed=0, asynchronous=True)
    tr.run(80, progress=False)
    assert tr.env_steps == 80 and tr.updates == 4
    tr.close()


def test_evaluate_greedy_matches_a_manual_loop(pi):
    """evaluate_greedy equals a hand-written loop over pi.mode with the same episode seeds."""
    import gymnasium

    from a2c_jax.utils import evaluate_greedy

    env = gymnasium.make("CartPole-v1")
    total = 0.0
    for ep in range(3):
        s, _ = env.reset(seed=40 + ep)
        done = False
        while not done:
            s, r, te, tr, _ = env.step(pi.mode(s))
            total += r
            done = te or tr
    assert evaluate_greedy(pi, "CartPole-v1", 3, first_seed=40) == pytest.approx(total / 3)
    with pytest.raises(ValueError, match="episodes"):
        evaluate_greedy(pi, "CartPole-v1", 0)


# ---- --shared-backbone: one torso, one optimizer (ActorCritic) ------------------------------------


def _torso(params):
    return {k: np.array(p["w"]) for k, p in params.items() if k.startswith("torso")}


def test_shared_backbone_trains_one_torso_and_resumes(tmp_path):
    """shared_backbone in the loop engine: pi and v are built on one torso, start equal, and after
    training (ActorCritic updates) still hold the same, moved torso while both heads moved; a run
    saved at 200 steps and resumed to 400 ends bitwise like the uninterrupted one (the
    ActorCritic's optimizer state is in the checkpoint)."""
    cfg = small().replace(shared_backbone=True)
    whole = Trainer("CartPole-v1", cfg, seed=3)
    assert whole.ac is not None
    start = _torso(whole.pi.params)
    assert start and start.keys() == _torso(whole.v.params).keys()
    assert_same_params(start, _torso(whole.v.params))
    heads = np.array(whole.pi.params["pi_out"]["w"]), np.array(whole.v.params["v_out"]["w"])
    whole.run(400, progress=False)
    assert_same_params(_torso(whole.pi.params), _torso(whole.v.params))
    assert all(not np.array_equal(_torso(whole.pi.params)[k], start[k]) for k in start)
    assert not np.array_equal(whole.pi.params["pi_out"]["w"], heads[0])
    assert not np.array_equal(whole.v.params["v_out"]["w"], heads[1])
    first = Trainer("CartPole-v1", cfg, seed=3)
    first.run(200, progress=False)
    first.save(tmp_path / "ckpt.pkl")
    resumed = Trainer.load(tmp_path / "ckpt.pkl")
    resumed.run(400, progress=False)
    assert resumed.config.shared_backbone
    assert_same_params(resumed.pi.params, whole.pi.params)
    assert_same_params(resumed.v.params, whole.v.params)
    assert_same_params(resumed.state.pi_opt, whole.state.pi_opt)  # ActorCritic's one state
    assert resumed.state.v_opt == ()
    for tr in (whole, first, resumed):
        tr.close()


def test_cli_shared_backbone_writes_a_summary_and_guards_resume(tmp_path, capsys):
    """`train --shared-backbone` (loop engine): summary.json with the flag in its config, metrics
    under ActorCritic's names; --shared-backbone on a run trained with separate networks is
    refused in one line."""
    common = ["--env", "CartPole-v1", "--num-envs", "4", "--seed", "1", "--no-progress"]
    out = tmp_path / "shared"
    assert cli.main(["train", *common, "--steps", "200", "--shared-backbone",
                     "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["shared_backbone"] is True and summary["env_steps"] == 200
    ckpt = load_checkpoint(out / "checkpoint")
    learner = ckpt["learner"]  # LearnerState's fields as a dict
    assert_same_params(_torso(learner["pi_params"]), _torso(learner["v_params"]))
    assert "v_opt" not in learner  # one optimizer state (ActorCritic's), in pi_opt
    assert cli.main(["train", *common, "--steps", "0", "--out", str(tmp_path / "sep")]) == 0
    capsys.readouterr()
    assert cli.main(["train", *common, "--steps", "200", "--out", str(tmp_path / "sep"),
                     "--resume", "--shared-backbone"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trained with separate networks; drop --shared-backbone" in err[0]
