"""Your own env end to end through the command line: `--env my_envs:Reach-v0` (gymnasium's
`module:id`, the module in tests/fixtures) trained, resumed, evaluated with a GIF and exported;
its state in the checkpoint; asynchronous workers that import the module; a GIF of a jit run."""

import json
import os
import warnings
from pathlib import Path

import gymnasium
import jax
import numpy as np
import pytest
from PIL import Image

import a2c_jax
from a2c_jax import cli
from a2c_jax.training import Trainer, preset
from a2c_jax.utils import load_checkpoint

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ENV = "my_envs:Reach-v0"


@pytest.fixture(autouse=True)
def my_envs_importable(monkeypatch):
    """tests/fixtures on the path, for this process and the processes it starts."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(FIXTURES), *filter(None, [os.environ.get("PYTHONPATH")])]))


def train(out, *argv):
    return cli.main(["train", "--env", ENV, "--no-progress", "--num-envs", "2", "--set",
                     "hidden=8", "--env-kwargs", "speed=0.2", "--out", str(out), *argv])


def test_train_resume_eval_gif_export(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the env's state is saved: no "envs are reset" warning
        assert train(a, "--steps", "200") == 0
        assert train(b, "--steps", "100") == 0
        summary = json.loads((b / "summary.json").read_text())
        assert summary["env"] == ENV and summary["env_steps"] == 100
        assert summary["config"]["env_kwargs"] == [["speed", 0.2]]
        assert summary["config"]["total_steps"] == 100
        capsys.readouterr()
        assert train(b, "--resume") == 0  # the run's own total: nothing to do
        assert capsys.readouterr().out.strip() == (
            f"{b} already has 100 of its 100 env steps; nothing to do (give --steps N to "
            "continue further)")
        assert train(b, "--resume", "--steps", "200") == 0
    # resumed from the saved env state, the run ends exactly as the uninterrupted one
    ca, cb = load_checkpoint(a / "checkpoint"), load_checkpoint(b / "checkpoint")
    leaves_a, leaves_b = jax.tree.leaves(ca["learner"]), jax.tree.leaves(cb["learner"])
    assert len(leaves_a) == len(leaves_b) > 0
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(x, y)
    assert cb["config"]["total_steps"] == 200   # kept: the next --resume continues to 200
    capsys.readouterr()
    assert train(b, "--resume") == 0
    assert "already has 200 of its 200 env steps" in capsys.readouterr().out

    loaded = Trainer.load(b / "checkpoint")  # in a fresh process, this imports my_envs
    try:
        assert loaded.env_id == ENV and loaded.config.env_kwargs == (("speed", 0.2),)
        assert loaded.envs.envs[0].unwrapped.speed == 0.2  # --env-kwargs reached the envs
    finally:
        loaded.close()

    gif = tmp_path / "episode.gif"
    assert cli.main(["eval", str(b), "--episodes", "2", "--gif", str(gif)]) == 0
    out = capsys.readouterr().out
    assert f"wrote one greedy episode of {ENV} to {gif}" in out
    # the evaluation plays in envs made with the run's env_kwargs: a plain loop as the reference
    env, pi, total = gymnasium.make(ENV, speed=0.2), loaded.policy(0), 0.0
    for episode in range(2):
        s, _ = env.reset(seed=1_000_000 + episode)   # run 0's evaluation episodes
        done = False
        while not done:
            s, r, terminated, truncated, _ = env.step(pi.mode(s))
            total += r
            done = terminated or truncated
    assert f"{ENV}: mean greedy return over 2 episodes: {total / 2:.2f}" in out
    with Image.open(gif) as im:
        assert im.n_frames > 1 and im.size == (64, 8)   # Reach.render's frames

    # a new run in a's --out: refused, then replaced with --overwrite (the user's file kept)
    (a / "notes.txt").write_text("mine")
    assert train(a, "--steps", "10") == 2
    assert "already holds a run" in capsys.readouterr().err
    old_events = sorted((a / "tensorboard").glob("*/events.*"))
    assert train(a, "--steps", "10", "--overwrite") == 0
    assert json.loads((a / "summary.json").read_text())["env_steps"] == 10
    assert (a / "notes.txt").read_text() == "mine"
    events = sorted((a / "tensorboard").glob("*/events.*"))
    assert len(old_events) == len(events) == 1 and not old_events[0].exists()

    policy = tmp_path / "policy"
    assert cli.main(["export", str(b), "--out", str(policy)]) == 0
    pi = a2c_jax.load_policy(str(policy))
    s = np.array([0.1, -0.5], np.float32)
    trainer = Trainer.load(b / "checkpoint")
    try:
        assert pi.mode(s) == trainer.policy(0).mode(s)
    finally:
        trainer.close()


def test_unknown_module_or_id_is_one_line(tmp_path, capsys):
    for env, message in [
        ("no_such_module:Reach-v0", "cannot import 'no_such_module' for --env "
                                    "no_such_module:Reach-v0: No module named 'no_such_module' "
                                    "(is it on PYTHONPATH?)"),
        ("my_envs:Reech-v0", "unknown env 'Reech-v0' (importing my_envs did not register it); "
                             "did you mean Reach-v0"),
    ]:
        assert cli.main(["train", "--env", env, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"a2c-jax: error: {message}"), err
    assert not (tmp_path / "x").exists()


def test_asynchronous_workers_import_the_module():
    config = preset(ENV, "a2c").replace(num_envs=2, hidden=(8,), env_kwargs={"speed": 0.5})
    trainer = Trainer(ENV, config, seed=0, asynchronous=True)
    try:
        obs, *_ = trainer.envs.step(np.array([0, 2]))   # left and right from x = 0
        np.testing.assert_allclose(obs[:, 0], [-0.5, 0.5])
    finally:
        trainer.close()


class _HoldsAnObject(gymnasium.Env):
    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.thing = object()  # not plain data: the checkpoint cannot hold it
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 0.0, False, False, {}


def test_env_state_that_is_not_plain_data_is_named(tmp_path):
    gymnasium.register("A2cJaxTestHoldsAnObject-v0", entry_point=_HoldsAnObject,
                       max_episode_steps=5)
    try:
        trainer = Trainer("A2cJaxTestHoldsAnObject-v0",
                          preset("x", "a2c").replace(num_envs=2, hidden=(8,)))
        with pytest.warns(UserWarning, match=r"the envs hold state that is not plain data: "
                          r"envs\[0\]\._HoldsAnObject\.thing \(a object\).*resets its envs"):
            trainer.save(tmp_path / "checkpoint")
        trainer.close()
        with pytest.warns(UserWarning, match="its envs are reset"):
            Trainer.load(tmp_path / "checkpoint").close()
    finally:
        del gymnasium.registry["A2cJaxTestHoldsAnObject-v0"]


def test_gif_of_a_jit_checkpoint(tmp_path, capsys):
    pytest.importorskip("gymnax")
    from a2c_jax.training import JitTrainer

    JitTrainer("CartPole-v1", preset("CartPole-v1", "a2c").replace(num_envs=2, hidden=(8,))
               ).save(tmp_path / "checkpoint")
    gif = tmp_path / "cartpole.gif"
    assert cli.main(["eval", str(tmp_path), "--episodes", "1", "--gif", str(gif)]) == 0
    assert f"wrote one greedy episode of CartPole-v1 to {gif}" in capsys.readouterr().out
    with Image.open(gif) as im:
        assert im.n_frames > 1 and im.size == (600, 400)


def test_the_docs_show_this_env():
    """docs/own-env.md trains the fixture's env from the command line: its code block is the file."""
    fixture = (FIXTURES / "my_envs.py").read_text()
    docs = (FIXTURES.parents[1] / "docs" / "own-env.md").read_text()
    section = docs[docs.index("## From the command line"):]
    block = section[section.index("```python\n") + 10:]
    assert block[:block.index("```")] == fixture[fixture.index("import gymnasium"):]
