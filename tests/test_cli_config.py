"""Hyperparameters from the command line (`--set`, `--config`, `--env-kwargs`), `TrainConfig`'s
checks, `--overwrite` and `--steps`/`--resume`."""

import dataclasses
import json
import re
from pathlib import Path

import pytest

from a2c_jax import cli
from a2c_jax.training import TrainConfig, Trainer, preset
from a2c_jax.training._config import load_config_file, parse_env_kwargs, value_from_text
from a2c_jax.training._keys import KEYS, RULES
from a2c_jax.utils._checkpoint import from_json, to_json

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def one_line_error(capsys, message):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0] == f"a2c-jax: error: {message}", err[0]


def train(out, *argv):
    return cli.main(["train", "--env", "CartPole-v1", "--no-progress", "--out", str(out), *argv])


# ---- the keys and their checks, in Python --------------------------------------------------------

def test_every_field_has_a_rule_and_a_row_in_the_docs():
    assert tuple(f.name for f in dataclasses.fields(TrainConfig)) == KEYS
    rows = dict(re.findall(r"^\| `(\w+)` \| (.+) \|$", DOCS.read_text(), re.M))
    assert list(rows) == list(KEYS)  # docs/cli.md's table: every key, in field order
    kinds = {bool: "bool", int: "int", float: "number", str: "text", "sizes": "ints",
             "kwargs": "mapping"}
    for key, rule in RULES.items():
        assert rows[key] == f"{kinds[rule.kind]} | {rule.rule} | {rule.meaning}", key


@pytest.mark.parametrize("changes, message", [
    ({"gamma": 2}, "gamma must be between 0 and 1, got 2.0"),
    ({"gae_lambda": -0.1}, "gae_lambda must be between 0 and 1, got -0.1"),
    ({"n_steps": 0}, "n_steps must be >= 1, got 0"),
    ({"num_envs": 0}, "num_envs must be >= 1, got 0"),
    ({"n_steps": 0.5}, "n_steps must be an int >= 1, got 0.5"),
    ({"learning_rate": 0}, "learning_rate must be > 0, got 0.0"),
    ({"learning_rate": -1e-3}, "learning_rate must be > 0, got -0.001"),
    ({"ent_coef": -0.01}, "ent_coef must be >= 0, got -0.01"),
    ({"vf_coef": -1}, "vf_coef must be >= 0, got -1.0"),
    ({"max_grad_norm": 0}, "max_grad_norm must be > 0 (inf: no clipping), got 0.0"),
    ({"n_epochs": 0}, "n_epochs must be >= 1, got 0"),
    ({"batch_size": -1}, "batch_size must be >= 0, got -1"),
    ({"clip_epsilon": 0}, "clip_epsilon must be > 0, got 0.0"),
    ({"reward_scale": 0}, "reward_scale must be > 0, got 0.0"),
    ({"clip_obs": 0}, "clip_obs must be > 0 (inf: no clipping), got 0.0"),
    ({"clip_reward": -1}, "clip_reward must be > 0 (inf: no clipping), got -1.0"),
    ({"hidden": ()}, "hidden must be one or more ints >= 1, e.g. 64,64, got ()"),
    ({"hidden": (64, 0)}, "hidden must be one or more ints >= 1, e.g. 64,64, got (64, 0)"),
    ({"activation": "gelu"}, "activation must be one of tanh, relu, got 'gelu'"),
    ({"optimizer": "sgd"}, "optimizer must be one of rmsprop, adam, got 'sgd'"),
    ({"algo": "dqn"}, "algo must be one of a2c, ppo, got 'dqn'"),
    ({"total_steps": -1}, "total_steps must be >= 0, got -1"),
    ({"eval_episodes": 0}, "eval_episodes must be >= 1, got 0"),
    ({"normalize_obs": "maybe"}, "normalize_obs must be true or false, got 'maybe'"),
    ({"num_envs": True}, "num_envs must be an int >= 1, got True"),
    ({"gamma": float("nan")}, "gamma must be a number between 0 and 1, got nan"),
    ({"env_kwargs": {"a": object}}, "env_kwargs['a'] must be a number, string, bool, null or a "
                                    "list of those, got <class 'object'>"),
    ({"env_kwargs": {"not a name": 1}}, "env_kwargs: 'not a name' is not a keyword argument name"),
])
def test_config_refuses_bad_values_naming_the_key(changes, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        TrainConfig(**changes)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        TrainConfig().replace(**changes)


def test_config_values_are_canonical_hashable_and_survive_a_checkpoint():
    c = TrainConfig(hidden=[32, 16], gamma=1, env_kwargs={"speed": 0.2, "map": ["SF", "FG"]})
    assert c.hidden == (32, 16) and type(c.gamma) is float
    assert c.env_kwargs == (("map", ("SF", "FG")), ("speed", 0.2))  # sorted pairs, lists as tuples
    assert hash(c) == hash(TrainConfig(hidden=(32, 16), gamma=1.0,
                                       env_kwargs=(("speed", 0.2), ("map", ("SF", "FG")))))
    saved = from_json(json.loads(json.dumps(to_json(dataclasses.asdict(c)))))
    assert TrainConfig(**saved) == c
    # summary.json's JSON (tuples as lists) reads back too
    assert TrainConfig(**json.loads(json.dumps(dataclasses.asdict(c)))) == c
    with pytest.raises(TypeError, match=r"^unknown TrainConfig key 'gama'; did you mean gamma\?$"):
        c.replace(gama=0.9)
    inf = TrainConfig(max_grad_norm=float("inf"))  # no clipping
    assert inf.max_grad_norm == float("inf")


@pytest.mark.parametrize("key, text, value", [
    ("gamma", "0.98", 0.98), ("learning_rate", "3e-4", 3e-4), ("total_steps", "1e6", 1_000_000),
    ("total_steps", "1_000", 1000), ("normalize_obs", "True", True), ("normalize_obs", "no", False),
    ("hidden", "128,128", (128, 128)), ("hidden", "[64, 32]", (64, 32)), ("hidden", "8", (8,)),
    ("activation", "relu", "relu"), ("env_kwargs", '{"b": 1, "a": [1, 2]}', (("a", (1, 2)), ("b", 1))),
])
def test_values_from_text(key, text, value):
    got = value_from_text(key, text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("key, text, message", [
    ("n_steps", "0.5", "n_steps must be an int >= 1, got '0.5'"),
    ("normalize_obs", "maybe", "normalize_obs must be true or false, got 'maybe'"),
    ("gamma", "high", "gamma must be a number between 0 and 1, got 'high'"),
    ("hidden", "64,x", "hidden must be one or more ints >= 1, e.g. 64,64, got '64,x'"),
    ("gama", "0.9", "unknown TrainConfig key 'gama'; did you mean gamma?"),
    ("learnin_rate", "1", "unknown TrainConfig key 'learnin_rate'; did you mean learning_rate?"),
])
def test_bad_text_names_the_key(key, text, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        value_from_text(key, text)


def test_config_files(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("gamma: 0.9\nlearning_rate: 1e-3\nhidden: [32, 32]\nnormalize_obs: true\n"
                 "env_kwargs: {speed: 0.5}\n")
    assert load_config_file(f) == {"gamma": 0.9, "learning_rate": 1e-3, "hidden": (32, 32),
                                   "normalize_obs": True, "env_kwargs": (("speed", 0.5),)}
    (tmp_path / "empty.yaml").write_text("")
    assert load_config_file(tmp_path / "empty.yaml") == {}
    for text, message in [
        ("- 1\n- 2\n", "must hold a mapping of TrainConfig keys to values (e.g. 'gamma: 0.98'), "
                       "not a list"),
        ("gamma: [1\n", "is not valid YAML: expected ',' or ']', but got '<stream end>' at line 2"),
        ("gama: 0.9\n", ": unknown TrainConfig key 'gama'; did you mean gamma?"),
        ("n_steps: 2.5\n", ": n_steps must be an int >= 1, got 2.5"),
        ("x: !!python/object/apply:os.system ['true']\n", "is not valid YAML: "),
    ]:
        f.write_text(text)
        with pytest.raises(ValueError, match=f"^{re.escape(str(f))} ?{re.escape(message)}"):
            load_config_file(f)
    with pytest.raises(ValueError, match="^.*missing.yaml: no such file$"):
        load_config_file(tmp_path / "missing.yaml")


def test_env_kwargs_forms():
    assert parse_env_kwargs(["size=5", "name=left", "flags=[1, 2]", '{"on": true}']) == {
        "flags": (1, 2), "name": "left", "on": True, "size": 5}
    with pytest.raises(ValueError, match="^--env-kwargs gives size twice: 5 and 6$"):
        parse_env_kwargs(["size=5", "size=6"])
    with pytest.raises(ValueError, match="^--env-kwargs takes NAME=VALUE or a JSON object"):
        parse_env_kwargs(["size"])


# ---- the command line ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--set", "gama=0.9"], "unknown TrainConfig key 'gama'; did you mean gamma?"),
    (["--set", "gamma=2"], "gamma must be between 0 and 1, got 2.0"),
    (["--set", "hidden="], "hidden must be one or more ints >= 1, e.g. 64,64, got ()"),
    (["--set", "gamma"], "--set takes KEY=VALUE, got 'gamma'"),
    (["--set", "num_envs=4", "--num-envs", "8"], "--set num_envs=4 contradicts --num-envs 8: "
                                                  "give one of them"),
    (["--set", "algo=ppo", "--algo", "a2c"], "--set algo=ppo contradicts --algo a2c: give one "
                                             "of them"),
    (["--set", "gamma=0.9", "--set", "gamma=0.8"], "--set gives gamma twice: 0.9 and 0.8"),
    (["--env-kwargs", "nope=1"], "cannot make CartPole-v1 with env_kwargs {\"nope\": 1}: "
                                 "CartPoleEnv.__init__() got an unexpected keyword argument 'nope'"),
    (["--engine", "jit", "--env-kwargs", "x=1"], "env_kwargs are for --engine loop (gymnax's "
                                                  "JAX-native envs take no gymnasium keyword "
                                                  "arguments)"),
    (["--resume", "--overwrite"], "--resume continues the run in --out, --overwrite replaces it: "
                                  "give one of them"),
    (["--env", "FrozenLake-v1", "--set", "normalize_obs=true"],
     "normalize_obs needs a Box observation space; FrozenLake-v1's is Discrete(16) (one-hot and "
     "discrete observations are not normalised): --set normalize_obs=false"),
])
def test_bad_settings_are_one_line_and_make_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, *argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"a2c-jax: error: {message}"), err
    assert not out.exists()


def test_bad_config_file_is_one_line(tmp_path, capsys):
    (tmp_path / "list.yaml").write_text("- 1\n")
    assert train(tmp_path / "run", "--config", str(tmp_path / "list.yaml")) == 2
    one_line_error(capsys, f"{tmp_path / 'list.yaml'} must hold a mapping of TrainConfig keys to "
                           "values (e.g. 'gamma: 0.98'), not a list")
    assert train(tmp_path / "run", "--config", str(tmp_path / "none.yaml")) == 2
    one_line_error(capsys, f"{tmp_path / 'none.yaml'}: no such file")


def test_precedence_summary_checkpoint_and_resume(tmp_path, capsys):
    """preset < --config < --set < flags; the resolved config in summary.json and the checkpoint;
    --steps is the run's total (a resume with nothing left to do says so); a resume contradicting
    the saved config is refused. (tests/test_own_env.py resumes to a new total.)"""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("gamma: 0.9\nn_steps: 7\nhidden: [8]\nlearning_rate: 1e-3\nnum_envs: 3\n")
    out = tmp_path / "run"
    assert train(out, "--config", str(cfg), "--set", "n_steps=5", "--set", "ent_coef=0.01",
                 "--num-envs", "2", "--steps", "0") == 0
    expected = preset("CartPole-v1", "a2c").replace(
        gamma=0.9, n_steps=5, hidden=(8,), learning_rate=1e-3, num_envs=2, ent_coef=0.01,
        total_steps=0)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"] == json.loads(json.dumps(dataclasses.asdict(expected)))
    loaded = Trainer.load(out / "checkpoint")
    loaded.close()
    assert loaded.config == expected
    capsys.readouterr()

    # nothing to do: one line, exit 0, nothing rewritten
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert train(out, "--resume") == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f"{out} already has 0 of its 0 env steps; nothing to do (give --steps N to continue "
        "further)")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before

    # a contradicting --set / --config on --resume: refused, naming the key
    assert train(out, "--resume", "--set", "gamma=0.8") == 2
    one_line_error(capsys, f"{out / 'checkpoint'} was trained with gamma=0.9, --set gives "
                           "gamma=0.8; drop it to resume the run, or choose another --out")
    assert train(out, "--resume", "--config", str(cfg)) == 2  # n_steps=7 and num_envs=3 there
    one_line_error(capsys, f"{out / 'checkpoint'} was trained with n_steps=5, --config {cfg} "
                           "gives n_steps=7; drop it to resume the run, or choose another --out")


def test_the_algorithm_given_anywhere_picks_the_preset():
    for source in ("--set", "--config c.yaml", "--algo"):
        algo, config = cli._algo_and_config("CartPole-v1", {"algo": ("ppo", source)})
        assert algo == "ppo" and config == preset("CartPole-v1", "ppo")
    algo, config = cli._algo_and_config("Pendulum-v1", {"n_steps": (64, "--set")})
    assert algo == "ppo" and config == preset("Pendulum-v1", "ppo").replace(n_steps=64)


def _fake_run(out):
    """The files a finished run leaves in its --out (as drive writes them), and a user's own."""
    from a2c_jax.utils import save_checkpoint

    save_checkpoint(out / "checkpoint", {"env_id": "CartPole-v1"})
    (out / "summary.json").write_text("{}")
    (out / "learning_curve.png").write_bytes(b"png")
    tb = out / "tensorboard" / "seed_0"
    tb.mkdir(parents=True)
    (tb / "events.out.tfevents.1.host").write_bytes(b"")
    (out / "notes.txt").write_text("mine")
    (out / "tensorboard" / "mine.txt").write_text("mine too")


def test_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("a directory with other files is no run")
    cli._replace_previous_run(out, overwrite=False)
    _fake_run(out)
    assert train(out, "--steps", "0") == 2
    one_line_error(capsys, f"{out} already holds a run (summary.json, checkpoint/, TensorBoard "
                           "event files): continue it with --resume, replace it with "
                           "--overwrite, or choose another --out")
    for only in ("summary.json", "checkpoint", "tensorboard"):  # any one of them is a run
        one = tmp_path / only
        _fake_run(one)
        for other in {"summary.json", "checkpoint", "tensorboard"} - {only}:
            target = one / other
            if target.is_dir():
                import shutil

                shutil.rmtree(target)
            else:
                target.unlink()
        with pytest.raises(cli.UsageError, match="already holds a run"):
            cli._replace_previous_run(one, overwrite=False)
    # --overwrite removes the previous run's outputs, and only those
    cli._replace_previous_run(out, overwrite=True)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "notes.txt", "tensorboard", "tensorboard/mine.txt"]
    # a checkpoint directory holding a file its manifest does not list is not removed
    _fake_run(tmp_path / "odd")
    (tmp_path / "odd" / "checkpoint" / "extra.bin").write_bytes(b"x")
    with pytest.raises(cli.UsageError, match=re.escape(
            f"{tmp_path / 'odd' / 'checkpoint'} holds files its manifest does not list "
            "(extra.bin): not removing it (move it away, or choose another --out)")):
        cli._replace_previous_run(tmp_path / "odd", overwrite=True)
    assert (tmp_path / "odd" / "summary.json").exists()  # nothing removed
    assert (tmp_path / "odd" / "checkpoint" / "manifest.json").exists()
    # a tensorboard/ that is a link is not followed to remove what its target holds
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "events.out.tfevents.1.host").write_bytes(b"theirs")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "tensorboard").symlink_to(elsewhere)
    with pytest.raises(cli.UsageError, match="tensorboard is a symbolic link"):
        cli._replace_previous_run(linked, overwrite=True)
    assert (elsewhere / "events.out.tfevents.1.host").read_bytes() == b"theirs"


def test_env_kwargs_reach_every_env_of_the_run_and_its_evaluation():
    """gymnasium.make's own keywords pass too (the vector env's disable_env_checker is merged, not
    repeated), and Trainer.evaluate plays in an env made with them: capped at 5 steps, every
    greedy episode returns 5 (an untrained CartPole policy falls after about 9 uncapped)."""
    from a2c_jax.training import Trainer, preset

    config = preset("CartPole-v1", "a2c").replace(
        num_envs=2, hidden=(8,), env_kwargs={"max_episode_steps": 5, "disable_env_checker": True})
    trainer = Trainer("CartPole-v1", config)
    try:
        trainer.run(20, progress=False)
        assert trainer.returns and set(trainer.returns) == {5.0}   # training episodes are capped
        assert trainer.evaluate(3) == 5.0
    finally:
        trainer.close()
