"""Bad input to `a2c-jax` and damaged checkpoints: one-line errors, never tracebacks or silent loads."""

import copy
import json
import os
import pickle
import re
import stat
import subprocess
import sys

import gymnasium
import jax
import numpy as np
import pytest

from a2c_jax import cli
from a2c_jax.training import Trainer, preset
from a2c_jax.training._trainer import build_functions, check_spaces
from a2c_jax.utils import CheckpointError, _checkpoint, load_checkpoint, save_checkpoint
from a2c_jax.utils._checkpoint import to_json


def one_line_error(capsys, message):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("a2c-jax: error:"), err
    assert message in err[0], err[0]
    return err[0]


def small_trainer(seed=0):
    return Trainer("CartPole-v1", preset("CartPole-v1", "a2c").replace(num_envs=2, hidden=(8,)),
                   seed=seed)


class _MultiDiscreteActions(gymnasium.Env):
    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gymnasium.spaces.MultiDiscrete([2, 3])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        return np.zeros(3, np.float32), 0.0, True, False, {}


@pytest.fixture
def multidiscrete_env():
    env_id = "A2cJaxTestMultiDiscrete-v0"
    gymnasium.register(env_id, entry_point=_MultiDiscreteActions)
    yield env_id
    del gymnasium.registry[env_id]


# ---- defects 1, 2 and 4: options and envs refused up front ---------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--seed", "-1"], "--seed must be between 0 and 4294967295, got -1"),
    (["--seed", str(2**32)], "--seed must be between 0 and 4294967295, got 4294967296"),
    (["--seed", str(2**32 - 2), "--num-seeds", "3", "--engine", "jit"],
     "uses seeds up to 4294967296; the largest is 4294967295"),
    (["--checkpoint-every", "-1"], "--checkpoint-every must be >= 0 (0: only at the end), got -1"),
])
def test_bad_options_are_one_line(argv, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--env", "CartPole-v1", "--steps", "8", "--no-progress",
                     "--out", str(out), *argv]) == 2
    one_line_error(capsys, message)
    assert not out.exists()  # refused before anything was made


def test_tuple_observations_are_refused_by_name(tmp_path, capsys):
    """Blackjack-v1's Tuple observations: refused up front, naming the space and what works."""
    for engine in ("loop", "jit"):  # jit: Blackjack has no JAX-native version either
        assert cli.main(["train", "--env", "Blackjack-v1", "--engine", engine, "--no-progress",
                         "--out", str(tmp_path / engine)]) == 2
        line = capsys.readouterr().err.strip().splitlines()
        assert len(line) == 1 and line[0].startswith("a2c-jax: error:")
    assert cli.main(["train", "--env", "Blackjack-v1", "--out", str(tmp_path / "b")]) == 2
    line = one_line_error(capsys, "Blackjack-v1 has the observation space Tuple(")
    assert "observations: Box, Discrete or MultiBinary; actions: Box or Discrete" in line
    with pytest.raises(TypeError, match="observation space Tuple"):
        build_functions(gymnasium.make("Blackjack-v1"), preset("CartPole-v1", "a2c"), 0)


def test_unsupported_action_space_is_refused_by_name(multidiscrete_env, tmp_path, capsys):
    env = gymnasium.make(multidiscrete_env)
    with pytest.raises(TypeError, match=r"action space MultiDiscrete\(\[2 3\]\)"):
        check_spaces(env)
    with pytest.raises(TypeError, match="action space MultiDiscrete"):
        build_functions(env, preset("CartPole-v1", "a2c"), 0)
    assert cli.main(["train", "--env", multidiscrete_env, "--out", str(tmp_path)]) == 2
    one_line_error(capsys, f"{multidiscrete_env} has the action space MultiDiscrete([2 3])")


def test_supported_spaces_pass():
    for env_id in ("CartPole-v1", "Pendulum-v1", "FrozenLake-v1"):  # Box/Discrete observations
        check_spaces(gymnasium.make(env_id))


def test_a_subprocess_gets_one_line_and_status_2(tmp_path):
    """The installed command itself: exit status 2, one stderr line, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "a2c_jax", "train", "--env", "CartPole-v1",
                           "--seed", "-1", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "a2c-jax: error: --seed must be between 0 and 4294967295, got -1"]


# ---- defect 3: incomplete checkpoints --------------------------------------------------------------

def test_incomplete_checkpoint_names_the_missing_entry(tmp_path, capsys):
    ckpt = tmp_path / "checkpoint"
    save_checkpoint(ckpt, {})
    assert cli.main(["eval", str(tmp_path)]) == 2
    one_line_error(capsys, "checkpoint is incomplete: it has no 'env_id' entry")
    assert cli.main(["train", "--env", "CartPole-v1", "--out", str(tmp_path), "--resume"]) == 2
    one_line_error(capsys, "checkpoint is incomplete: it has no 'env_id' entry")
    with pytest.raises(CheckpointError, match="no 'env_id' entry"):
        Trainer.load(ckpt)
    # the jit engine's load reads the same helper's state
    save_checkpoint(ckpt, {"engine": "jit"})
    assert cli.main(["eval", str(tmp_path)]) == 2
    one_line_error(capsys, "checkpoint is incomplete: it has no 'env_id' entry")
    assert cli.main(["train", "--env", "CartPole-v1", "--engine", "jit", "--out", str(tmp_path),
                     "--resume"]) == 2
    one_line_error(capsys, "checkpoint is incomplete: it has no 'env_id' entry")


def _save_state(path, st):
    """A Trainer.state_dict() written as Trainer.save writes it (its envs in the process file)."""
    st = dict(st)
    local = st.pop("envs", None)
    save_checkpoint(path, st, per_process=None if local is None else {"envs": local})


def test_nested_missing_or_mismatched_entries_are_refused(tmp_path):
    trainer = small_trainer()
    trainer.run(8, progress=False)
    saved = trainer.state_dict()  # plain data: JSON-able values and numpy arrays
    trainer.close()
    ckpt = tmp_path / "c"
    layer = ("envs", "snapshot", "envs", 0, 0)

    def at(st, keys):
        for k in keys:
            st = st[k]
        return st

    for mutate, message in [
        (lambda st: st["keys"].pop("act"), "no 'keys/act' entry"),
        (lambda st: st.pop("train_seconds"), "no 'train_seconds' entry"),
        (lambda st: st.__setitem__("keys", 3), "its 'keys' entry is of type int, not dict"),
        (lambda st: st["config"].__setitem__("bogus", 1), "has an invalid config"),
        (lambda st: st.__setitem__("seed", -1), "has an invalid seed -1"),
        (lambda st: st["learner"].__setitem__("v_params", st["learner"]["pi_params"]),
         "the saved learner state"),
        (lambda st: st["learner"]["pi_opt"].clear(), "the saved learner state"),
        (lambda st: st.__setitem__("env_steps", "8"), "its 'env_steps' entry is not an int"),
        (lambda st: st["envs"].__setitem__("obs", to_json(np.zeros((3, 4), np.float32))),
         "its 'obs' is not float32[2, 4]"),
        (lambda st: at(st, layer).__setitem__("type", "Other"),
         "the saved env layer is a Other, make_vector_env builds a TimeLimit"),
        (lambda st: at(st, layer)["attributes"].__setitem__("step", 3),
         "defines step as a method or property"),
        (lambda st: st["envs"].pop("snapshot"), "no 'envs/snapshot' entry"),
    ]:
        st = copy.deepcopy(saved)
        mutate(st)
        _save_state(ckpt, st)
        with pytest.raises(CheckpointError, match=re.escape(message) if "[" in message else message):
            Trainer.load(ckpt)


def test_loaded_state_is_a_dict_pytree(tmp_path):
    save_checkpoint(tmp_path / "a", {"x": np.arange(3), "y": {"z": np.ones(2)}})
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "a")
    assert isinstance(a, dict) and sorted(a) == ["x", "y"] and sorted(a["y"]) == ["z"]
    total = jax.tree.map(lambda x, y: x + y, a, b)
    np.testing.assert_array_equal(total["x"], 2 * np.arange(3))
    np.testing.assert_array_equal(total["y"]["z"], 2 * np.ones(2))
    save_checkpoint(tmp_path / "b", total)  # a loaded state saves again, with its values
    again = load_checkpoint(tmp_path / "b")
    assert type(again) is _checkpoint.CheckpointState
    np.testing.assert_array_equal(again["x"], 2 * np.arange(3))
    np.testing.assert_array_equal(again["y"]["z"], 2 * np.ones(2))


# ---- defect 5: checksums, old format, durability ----------------------------------------------------

def _files(path):
    return sorted(p for p in path.rglob("*") if p.is_file())


def test_a_flipped_bit_in_an_array_file_is_refused(tmp_path):
    """A saved 0 whose bit flips would come back as another number: the checksum refuses it."""
    path = tmp_path / "c"
    save_checkpoint(path, {"x": np.zeros(16)})
    for file in _files(path / "arrays"):
        good = file.read_bytes()
        bad = bytearray(good)
        bad[len(bad) // 2] ^= 0x40
        file.write_bytes(bytes(bad))
        with pytest.raises(CheckpointError, match="has changed \\(checksum mismatch\\)"):
            load_checkpoint(path)
        file.write_bytes(good)
    np.testing.assert_array_equal(load_checkpoint(path)["x"], np.zeros(16))


def test_every_single_bit_flip_is_refused(tmp_path):
    """Whatever bit of state.json flips, and one bit of every byte of every other file (the
    manifest and orbax's files), the checkpoint is refused."""
    path = tmp_path / "c"
    save_checkpoint(path, {"x": np.arange(4.0), "n": 7})
    for file in _files(path):
        good = file.read_bytes()
        every_bit = file.name == "state.json"
        for i in range(len(good)):
            for bit in range(8) if every_bit else [i % 8]:
                bad = bytearray(good)
                bad[i] ^= 1 << bit
                file.write_bytes(bytes(bad))
                with pytest.raises(CheckpointError):
                    load_checkpoint(path)
        file.write_bytes(good)
    assert load_checkpoint(path)["n"] == 7


def test_truncated_and_future_checkpoints_are_refused(tmp_path):
    path = tmp_path / "c"
    save_checkpoint(path, {"x": np.arange(100)})
    state = path / "state.json"
    good = state.read_bytes()
    state.write_bytes(good[:-10])
    with pytest.raises(CheckpointError, match="state.json has .* bytes, its manifest.json says .* "
                                              "\\(truncated or extended\\)"):
        load_checkpoint(path)
    state.write_bytes(good)
    manifest = path / "manifest.json"
    future = json.loads(manifest.read_bytes())
    future["format_version"] = 4
    manifest.write_bytes(_checkpoint.dump_json(future, canonical=True))
    with pytest.raises(CheckpointError, match="has checkpoint format 4; this a2c_jax reads "
                                              "format 3"):
        load_checkpoint(path)


def test_damaged_checkpoint_on_the_command_line(tmp_path, capsys):
    trainer = small_trainer()
    trainer.save(tmp_path / "checkpoint")
    trainer.close()
    file = max(_files(tmp_path / "checkpoint" / "arrays"), key=lambda p: p.stat().st_size)
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))
    assert cli.main(["eval", str(tmp_path), "--episodes", "1"]) == 2
    one_line_error(capsys, "has changed (checksum mismatch)")
    assert cli.main(["train", "--env", "CartPole-v1", "--out", str(tmp_path), "--resume"]) == 2
    one_line_error(capsys, "has changed (checksum mismatch)")


def test_format_1_and_2_pickles_are_refused_unread(tmp_path, capsys):
    """checkpoint.pkl of an older a2c_jax (format 1: a bare pickle; format 2: a header and a
    pickle) is refused with the reason, and never unpickled."""
    marker = tmp_path / "unpickled"
    payload = pickle.dumps({"magic": "a2c_jax-checkpoint", "format_version": 1,
                            "state": _Touch(marker)})
    header = b'{"format_version":2,"payload":"pickle"}\n'
    for data in (payload, b"a2c_jax-checkpoint\n" + header + payload):
        (tmp_path / "checkpoint.pkl").write_bytes(data)
        with pytest.raises(CheckpointError, match="a pickle \\(format 1 or 2\\).* loading one "
                                                  "can run code from the file: retrain"):
            load_checkpoint(tmp_path / "checkpoint.pkl")
        assert cli.main(["eval", str(tmp_path)]) == 2
        one_line_error(capsys, "no checkpoint at")
        assert cli.main(["train", "--env", "CartPole-v1", "--out", str(tmp_path),
                         "--resume"]) == 2
        one_line_error(capsys, "checkpoint.pkl is a checkpoint of an older a2c_jax")
    assert not marker.exists()


class _Touch:
    """Unpickling creates ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_save_fsyncs_the_files_and_directories(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(_checkpoint.os, "fsync", fsync)
    save_checkpoint(tmp_path / "c", {"x": np.arange(3)})
    files = len(_files(tmp_path / "c"))
    assert synced.count(False) == files  # every file, the manifest too
    assert synced[-1] is True  # the parent directory, after the rename
    assert [p.name for p in tmp_path.iterdir()] == ["c"]
