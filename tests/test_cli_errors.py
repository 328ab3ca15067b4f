"""Bad input to `a2c-jax` and damaged checkpoints: one-line errors, never tracebacks or silent loads."""

import os
import pickle
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
    ckpt = tmp_path / "checkpoint.pkl"
    save_checkpoint(ckpt, {})
    assert cli.main(["eval", str(tmp_path)]) == 2
    one_line_error(capsys, "checkpoint.pkl is incomplete: it has no 'env_id' entry")
    assert cli.main(["train", "--env", "CartPole-v1", "--out", str(tmp_path), "--resume"]) == 2
    one_line_error(capsys, "checkpoint.pkl is incomplete: it has no 'env_id' entry")
    with pytest.raises(CheckpointError, match="no 'env_id' entry"):
        Trainer.load(ckpt)
    # the jit engine's load reads the same helper's state
    save_checkpoint(ckpt, {"engine": "jit"})
    assert cli.main(["eval", str(tmp_path)]) == 2
    one_line_error(capsys, "checkpoint.pkl is incomplete: it has no 'env_id' entry")
    assert cli.main(["train", "--env", "CartPole-v1", "--engine", "jit", "--out", str(tmp_path),
                     "--resume"]) == 2
    one_line_error(capsys, "checkpoint.pkl is incomplete: it has no 'env_id' entry")


def test_nested_missing_or_mismatched_entries_are_refused(tmp_path):
    trainer = small_trainer()
    saved = pickle.dumps(_checkpoint._to_host(trainer.state_dict()))
    trainer.close()
    ckpt = tmp_path / "c.pkl"
    for mutate, message in [
        (lambda st: st["keys"].pop("act"), "no 'keys/act' entry"),
        (lambda st: st.pop("train_seconds"), "no 'train_seconds' entry"),
        (lambda st: st.__setitem__("keys", 3), "its 'keys' entry is of type int, not dict"),
        (lambda st: st["config"].__setitem__("bogus", 1), "has an invalid config"),
        (lambda st: st.__setitem__("seed", -1), "has an invalid seed -1"),
        (lambda st: st.__setitem__("learner", st["learner"]._replace(
            v_params=st["learner"].pi_params)), "the saved learner state"),
    ]:
        st = pickle.loads(saved)
        mutate(st)
        save_checkpoint(ckpt, st)
        with pytest.raises(CheckpointError, match=message):
            Trainer.load(ckpt)


def test_loaded_state_is_a_dict_pytree(tmp_path):
    save_checkpoint(tmp_path / "a.pkl", {"x": np.arange(3), "y": {"z": np.ones(2)}})
    a, b = load_checkpoint(tmp_path / "a.pkl"), load_checkpoint(tmp_path / "a.pkl")
    assert a == {"x": a["x"], "y": a["y"]} and isinstance(a, dict)
    total = jax.tree.map(lambda x, y: x + y, a, b)
    np.testing.assert_array_equal(total["x"], 2 * np.arange(3))
    save_checkpoint(tmp_path / "b.pkl", total)  # a loaded state saves again as a plain dict
    assert type(pickle.loads(_payload(tmp_path / "b.pkl"))) is dict


# ---- defect 5: checksums, old format, durability ----------------------------------------------------

def _payload(path):
    data = path.read_bytes()
    return data[data.index(b"\n", len(_checkpoint._MAGIC_LINE)) + 1:]


def test_a_flipped_bit_in_the_payload_is_refused(tmp_path):
    """A saved 0 whose byte flips would come back as 2.0: the checksum refuses the file."""
    path = tmp_path / "c.pkl"
    save_checkpoint(path, {"x": np.zeros(16)})
    data = bytearray(path.read_bytes())
    i = data.rindex(bytes(8)) + 7  # the exponent byte of the last zero
    data[i] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="is damaged: checksum mismatch"):
        load_checkpoint(path)


def test_every_single_bit_flip_is_refused(tmp_path):
    """Whatever bit of a checkpoint flips (magic, header or payload), it is refused."""
    path = tmp_path / "c.pkl"
    save_checkpoint(path, {"x": np.arange(4.0), "n": 7})
    good = path.read_bytes()
    for i in range(len(good)):
        for bit in range(8):
            bad = bytearray(good)
            bad[i] ^= 1 << bit
            path.write_bytes(bytes(bad))
            with pytest.raises(CheckpointError):
                load_checkpoint(path)


def test_truncated_and_future_files_are_refused(tmp_path):
    path = tmp_path / "c.pkl"
    save_checkpoint(path, {"x": np.arange(100)})
    good = path.read_bytes()
    path.write_bytes(good[:-10])
    with pytest.raises(CheckpointError, match="is damaged: .* payload bytes"):
        load_checkpoint(path)
    path.write_bytes(good.replace(b'"format_version":2', b'"format_version":3'))
    with pytest.raises(CheckpointError, match="has checkpoint format 3, this a2c_jax reads "
                                              "formats 1 and 2"):
        load_checkpoint(path)


def test_damaged_checkpoint_on_the_command_line(tmp_path, capsys):
    trainer = small_trainer()
    trainer.save(tmp_path / "checkpoint.pkl")
    trainer.close()
    path = tmp_path / "checkpoint.pkl"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert cli.main(["eval", str(tmp_path), "--episodes", "1"]) == 2
    one_line_error(capsys, "checkpoint.pkl is damaged: checksum mismatch")
    assert cli.main(["train", "--env", "CartPole-v1", "--out", str(tmp_path), "--resume"]) == 2
    one_line_error(capsys, "checkpoint.pkl is damaged: checksum mismatch")


def _write_v1(path, state):
    """A checkpoint as format 1 wrote it: a bare pickle, no checksum."""
    payload = {"magic": "a2c_jax-checkpoint", "format_version": 1,
               "state": _checkpoint._to_host(state)}
    path.write_bytes(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))


def test_format_1_files_without_a_checksum_still_load(tmp_path):
    path = tmp_path / "old.pkl"
    _write_v1(path, {"x": np.arange(3)})
    np.testing.assert_array_equal(load_checkpoint(path)["x"], np.arange(3))
    trainer = small_trainer(seed=5)
    trainer.run(16, progress=False)
    _write_v1(path, trainer.state_dict())
    resumed = Trainer.load(path)
    assert resumed.env_steps == trainer.env_steps and resumed.seed == 5
    jax.tree.map(np.testing.assert_array_equal, resumed.pi.params, trainer.pi.params)
    resumed.close()
    trainer.close()
    path.write_bytes(pickle.dumps({"magic": "a2c_jax-checkpoint", "format_version": 7,
                                   "state": {}}))
    with pytest.raises(CheckpointError, match="has checkpoint format 7"):
        load_checkpoint(path)


def test_save_fsyncs_the_file_and_its_directory(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(_checkpoint.os, "fsync", fsync)
    save_checkpoint(tmp_path / "c.pkl", {"x": 1})
    assert synced == [False, True]  # the temporary file, then the directory after the rename
    assert [p.name for p in tmp_path.iterdir()] == ["c.pkl"]
