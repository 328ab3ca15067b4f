"""Checkpoints that never run code from the file: round trips of both engines, envs saved as plain
data, refusals (tampered, truncated, foreign, pickles anywhere, old .pkl files), atomic writes
(a crash between the renames, kill -9 during writes) and the command line's one-line errors."""

import contextlib
import copy
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import assert_bitwise

from a2c_jax import cli
from a2c_jax.training import JitTrainer, Trainer, make_vector_env, preset
from a2c_jax.utils import CheckpointError, _checkpoint, load_checkpoint, save_checkpoint
from a2c_jax.utils._checkpoint import dump_json, from_json, parse_json
from a2c_jax.utils._env_state import restore_vector_env, snapshot_vector_env

ROOT = Path(__file__).resolve().parents[1]


def small(env_id="CartPole-v1", algo="a2c", **changes):
    return preset(env_id, algo).replace(**{"num_envs": 2, "hidden": (8,), **changes})


def files(path):
    return sorted(p for p in Path(path).rglob("*") if p.is_file())


class Touch:
    """A pickle that creates ``path`` when it is loaded (the marker of code run from a file)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def rewrite_manifest(directory):
    """The manifest recomputed over the files as they are now: what an attacker who edits the
    files would also do."""
    manifest = json.loads((directory / "manifest.json").read_bytes())
    manifest["files"] = {
        p.relative_to(directory).as_posix(): {"bytes": p.stat().st_size,
                                              "sha256": _checkpoint._sha256(p)}
        for p in files(directory) if p.name != "manifest.json" or p.parent != directory}
    (directory / "manifest.json").write_bytes(dump_json(manifest, canonical=True))


@pytest.fixture(scope="module")
def loop_checkpoint(tmp_path_factory):
    """A loop-engine run of 40 steps, saved; the trainer stays open for comparisons."""
    path = tmp_path_factory.mktemp("loop") / "checkpoint"
    trainer = Trainer("CartPole-v1", small(), seed=4)
    trainer.run(40, progress=False)
    trainer.save(path)
    yield trainer, path
    trainer.close()


# ---- round trips -----------------------------------------------------------------------------------

def test_the_package_never_unpickles():
    """No pickle.load(s) anywhere in the package (the load path reads JSON and orbax only)."""
    hits = [str(p) for p in (ROOT / "a2c_jax").rglob("*.py")
            if "pickle.load" in p.read_text() or "import pickle" in p.read_text()]
    assert hits == []


def test_loop_checkpoint_layout_and_round_trip(loop_checkpoint):
    trainer, path = loop_checkpoint
    names = {p.relative_to(path).as_posix() for p in files(path)}
    assert {"manifest.json", "state.json", "envs.process-0.json"} <= names
    assert all(n.startswith("arrays/") for n in names - {"manifest.json", "state.json",
                                                         "envs.process-0.json"})
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["kind"] == "checkpoint" and manifest["format_version"] == 3
    assert set(manifest["files"]) == names - {"manifest.json"}
    resumed = Trainer.load(path)
    try:
        assert_bitwise(jax.device_get(resumed.state), jax.device_get(trainer.state))
        assert_bitwise(np.asarray(resumed._act_key), np.asarray(trainer._act_key))
        assert_bitwise(np.asarray(resumed._key), np.asarray(trainer._key))
        assert_bitwise(resumed.obs, trainer.obs)
        assert_bitwise((resumed.ep_return, resumed.ep_length),
                       (trainer.ep_return, trainer.ep_length))
        assert (resumed.returns, resumed.ends, list(resumed.recent), resumed.env_steps,
                resumed.updates, resumed.train_seconds) == (
                    trainer.returns, trainer.ends, list(trainer.recent), trainer.env_steps,
                    trainer.updates, trainer.train_seconds)
        assert_bitwise(resumed.curves(), trainer.curves())
        # the restored envs step as the saved ones would have: compare on copies of the trainer's
        saved = make_vector_env("CartPole-v1", 2)
        restore_vector_env(saved, snapshot_vector_env(trainer.envs)[0], "test")
        for _ in range(30):
            a = np.array([0, 1])
            assert_bitwise(resumed.envs.step(a)[:4], saved.step(a)[:4])
        saved.close()
    finally:
        resumed.close()


@pytest.mark.slow  # over 1.5 s (see tests/conftest.py)
def test_jit_checkpoint_round_trip(tmp_path):
    """The jit engine's state and gymnax's env parameters (changed ones too) come back exactly."""
    jt = JitTrainer("CartPole-v1", small(num_envs=4), seed=5, num_seeds=2)
    jt.env_params = jt.env_params.replace(gravity=9.0)
    jt.history = {"mean100": [np.ones((2, 3), np.float32)]}
    jt.save(tmp_path / "checkpoint")
    back = JitTrainer.load(tmp_path / "checkpoint")
    assert_bitwise(jax.device_get(back.state), jax.device_get(jt.state))
    assert back.env_params == jt.env_params and back.env_params.gravity == 9.0
    assert back.num_seeds == 2 and back.seed == 5
    assert_bitwise(back.curves(), jt.curves())
    with pytest.raises(CheckpointError, match="written by --engine jit"):
        Trainer.load(tmp_path / "checkpoint")


def test_generic_state_round_trips_exactly(tmp_path):
    state = {"f32": np.float32(1.5), "nan": float("nan"), "inf": [float("-inf"), 1.0],
             "tuple": (1, "a", None, True), "empty": np.zeros((0, 3), np.float32),
             "int64": np.arange(5, dtype=np.int64), "bool": np.array([True, False]),
             "big": 2**80, "nested": {"a": {"b": np.ones((2, 2), np.float16)}},
             "text": np.array([b"SF", b"HG"]), "keys": {1: "one", (2, 3): "pair"}}
    save_checkpoint(tmp_path / "c", state)
    back = load_checkpoint(tmp_path / "c")
    assert np.isnan(back.pop("nan")) and back["f32"].dtype == np.float32
    assert back["tuple"] == (1, "a", None, True) and back["big"] == 2**80
    assert back["keys"] == {1: "one", (2, 3): "pair"}
    assert_bitwise({k: v for k, v in back.items() if k != "keys"},
                   {k: v for k, v in state.items() if k not in ("nan", "keys")})
    with pytest.raises(TypeError, match=r"state\['x'\]: a object cannot be saved"):
        save_checkpoint(tmp_path / "d", {"x": object()})


@pytest.mark.parametrize("text, problem", [
    ('{"a": NaN}', "NaN is not allowed"), ('{"a": 1, "a": 2}', "duplicate keys"),
    ("[" * 100_000, "not valid JSON"),
])
def test_json_is_strict(text, problem):
    with pytest.raises(CheckpointError, match=problem):
        parse_json(text.encode(), "x")


@pytest.mark.parametrize("encoded, problem", [
    ({"$ndarray": {"dtype": "object", "shape": [1], "data": [1]}}, "unsupported dtype 'object'"),
    ({"$ndarray": {"dtype": "int32", "shape": [2], "data": [1]}}, "needs 2 values"),
    ({"$ndarray": {"dtype": "int32", "shape": [1], "data": [1.5]}}, "is not a int32 value"),
    ({"$ndarray": {"dtype": "uint8", "shape": [1], "data": [300]}}, "do not fit uint8"),
    ({"$generator": {"bit_generator": "Evil", "state": {}}}, "unsupported bit generator"),
    ({"$generator": {"bit_generator": "PCG64", "state": {"x": 1}}}, "invalid PCG64 state"),
    ({"$pickle": "gASV"}, "unknown tag '\\$pickle'"),
    ({"$array": "a00000"}, "does not hold"),
])
def test_malformed_encodings_are_refused(encoded, problem):
    with pytest.raises(CheckpointError, match=problem):
        from_json(encoded)


# ---- envs as plain data ----------------------------------------------------------------------------

@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0",
                                    "FrozenLake-v1"])
def test_env_snapshot_continues_bitwise(env_id):
    """Saved through JSON and set onto fresh envs, the envs continue exactly: observations,
    rewards, ends, autoresets and the envs' own random numbers."""
    a = make_vector_env(env_id, 3)
    a.reset(seed=1)
    space = copy.deepcopy(a.action_space)  # draws the actions
    space.seed(0)
    a.action_space.seed(5)  # a seeded space of the envs: its random state is saved too
    a.action_space.sample()
    for _ in range(9):
        a.step(space.sample())
    snapshot, reason = snapshot_vector_env(a)
    assert reason is None
    snapshot = parse_json(dump_json(snapshot), "test")
    b = make_vector_env(env_id, 3)
    b.reset(seed=123)
    restore_vector_env(b, snapshot, "test")
    for _ in range(200):  # several episodes: autoresets draw from the restored generators
        act = space.sample()
        assert_bitwise(a.step(act)[:4], b.step(act)[:4])
    assert_bitwise(a.action_space.sample(), b.action_space.sample())  # seeded spaces too
    a.close()
    b.close()


def test_env_snapshot_refusals():
    envs = make_vector_env("CartPole-v1", 2)
    envs.reset(seed=0)
    snapshot, _ = snapshot_vector_env(envs)
    with pytest.raises(CheckpointError, match="2 saved envs, 3 built"):
        restore_vector_env(make_vector_env("CartPole-v1", 3), snapshot, "ck")
    with pytest.raises(CheckpointError, match="SyncVectorEnv._observations: the saved ndarray "
                                              "cannot replace the fresh env's ndarray"):
        restore_vector_env(make_vector_env("Pendulum-v1", 2), snapshot, "ck")
    bad = json.loads(json.dumps(snapshot))
    bad["envs"][1][1]["type"] = "PassiveEnvChecker"
    with pytest.raises(CheckpointError, match="envs\\[1\\].OrderEnforcing: the saved env layer is a "
                                              "PassiveEnvChecker, make_vector_env builds a "
                                              "OrderEnforcing"):
        restore_vector_env(envs, bad, "ck")
    bad = json.loads(json.dumps(snapshot))
    bad["envs"][0][-1]["attributes"]["observation_space"] = 1
    with pytest.raises(CheckpointError, match="cannot replace the fresh env's Box"):
        restore_vector_env(envs, bad, "ck")
    bad = json.loads(json.dumps(snapshot))
    bad["envs"][0][-1]["attributes"]["__class__"] = 1
    with pytest.raises(CheckpointError, match="not an attribute a snapshot may set"):
        restore_vector_env(envs, bad, "ck")
    envs.close()


@pytest.mark.slow  # over 1.5 s (see tests/conftest.py)
def test_envs_that_hold_objects_fall_back_to_a_reset_with_warnings(tmp_path):
    """LunarLander's Box2D world is not plain data: saving warns, loading resets the envs (seeded
    by seed + env_steps) and says so."""
    trainer = Trainer("LunarLander-v3", small("LunarLander-v3"), seed=2)
    trainer.run(20, progress=False)
    assert trainer.ep_length.min() > 0   # episodes under way, whose partial returns must not carry
    with pytest.warns(UserWarning, match="b2World.*resumed from this checkpoint resets its envs"):
        trainer.save(tmp_path / "checkpoint")
    trainer.close()
    with pytest.warns(UserWarning, match=r"its envs are reset \(seed 22\) instead of continuing"):
        resumed = Trainer.load(tmp_path / "checkpoint")
    fresh = make_vector_env("LunarLander-v3", 2)
    assert_bitwise(resumed.obs, fresh.reset(seed=22)[0])
    assert resumed.env_steps == 20
    # the reset envs start new episodes: no partial return or length carried over
    assert not resumed.ep_return.any() and not resumed.ep_length.any()
    resumed.close()
    fresh.close()


# ---- refusals --------------------------------------------------------------------------------------

@pytest.mark.slow  # over 1.5 s (see tests/conftest.py)
def test_a_pickle_at_any_file_is_refused_and_never_run(loop_checkpoint, tmp_path):
    """Each file in turn (the manifest, the JSON, orbax's files) replaced by a pickle that would
    create a marker: refused, and the marker never appears; also when the manifest is rewritten
    to match (the attacker edits it too), and for exported policies."""
    trainer, original = loop_checkpoint
    marker = tmp_path / "code-ran"
    payload = pickle.dumps(Touch(marker))
    trainer.export(tmp_path / "policy")
    for kind, source, load in (("c", original, Trainer.load),
                               ("p", tmp_path / "policy", _load_policy)):
        for i, victim in enumerate(files(source)):
            for rewrite in (False, True):
                path = tmp_path / f"{kind}{i}{rewrite}"
                _copy(source, path)
                target = path / victim.relative_to(source)
                target.write_bytes(payload)
                if not rewrite:
                    with pytest.raises(CheckpointError, match="manifest.json is not valid JSON|"
                                                              "checksum mismatch|bytes, its"):
                        load(path)
                elif target.name != "manifest.json":
                    rewrite_manifest(path)
                    # past the manifest: parsed as JSON or read by orbax, never unpickled (a
                    # file that nothing reads, e.g. orbax's commit marker, even loads)
                    with contextlib.suppress(CheckpointError):
                        load(path)
                assert not marker.exists(), victim
    assert pickle.loads(payload) is not None and marker.exists()  # the payload does work


def _load_policy(path):
    import a2c_jax

    return a2c_jax.load_policy(path)


def _copy(source, target):
    import shutil

    shutil.copytree(source, target)


@pytest.mark.parametrize("damage, problem", [
    (lambda d: (d / "state.json").unlink(), "state.json is missing"),
    (lambda d: (d / "extra.txt").write_text("hi"), "unexpected file extra.txt"),
    (lambda d: (d / "arrays" / "extra").write_text("hi"), "unexpected file arrays/extra"),
    (lambda d: _truncate(d / "envs.process-0.json"), "envs.process-0.json has .* bytes, its "
                                                      "manifest.json says .* \\(truncated"),
    (lambda d: _flip(max(files(d / "arrays"), key=lambda p: p.stat().st_size)),
     "has changed \\(checksum mismatch\\)"),
    (lambda d: (d / "manifest.json").write_text(
        (d / "manifest.json").read_text().replace(",", ", ", 1)), "has been edited"),
    (lambda d: (d / "manifest.json").unlink(), "is not an a2c_jax checkpoint: it has no "
                                               "manifest.json"),
    (lambda d: os.symlink("/etc/passwd", d / "link"), "link is a symbolic link"),
])
def test_tampered_checkpoints_are_refused_with_the_problem(loop_checkpoint, tmp_path, damage,
                                                             problem):
    _, original = loop_checkpoint
    path = tmp_path / "c"
    _copy(original, path)
    damage(path)
    with pytest.raises(CheckpointError, match=problem):
        Trainer.load(path)


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-5])


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x10
    path.write_bytes(bytes(data))


def test_foreign_directories_and_files_are_refused(loop_checkpoint, tmp_path):
    _, original = loop_checkpoint
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="has no manifest.json"):
        load_checkpoint(tmp_path / "empty")
    import orbax.checkpoint as ocp

    ocp.PyTreeCheckpointer().save((tmp_path / "orbax").resolve(), {"x": np.ones(3)})
    with pytest.raises(CheckpointError, match="has no manifest.json"):
        load_checkpoint(tmp_path / "orbax")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.json").write_text('{"format": "something else"}')
    with pytest.raises(CheckpointError, match="manifest.json is of another format"):
        load_checkpoint(tmp_path / "other")
    (tmp_path / "file").write_text("{}")
    with pytest.raises(CheckpointError, match="is a file, not an a2c_jax checkpoint"):
        load_checkpoint(tmp_path / "file")
    with pytest.raises(CheckpointError, match="is a training checkpoint, not an exported policy"):
        _load_policy(original)


def test_old_pickle_checkpoints_are_refused_with_the_reason(tmp_path):
    marker = tmp_path / "code-ran"
    (tmp_path / "checkpoint.pkl").write_bytes(pickle.dumps(Touch(marker)))
    message = ("is a checkpoint of an older a2c_jax, a pickle \\(format 1 or 2\\); this version "
               "refuses pickles, unread, because loading one can run code from the file: retrain, "
               "or convert it with the a2c_jax that wrote it")
    for path in (tmp_path / "checkpoint.pkl", tmp_path / "checkpoint"):
        with pytest.raises(CheckpointError, match=message):
            Trainer.load(path)
    assert not marker.exists()


def test_save_replaces_only_checkpoints(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="exists and is not an a2c_jax checkpoint"):
        save_checkpoint(tmp_path / "notes", {"x": 1})
    (tmp_path / "file").write_text("mine")
    with pytest.raises(CheckpointError, match="is not a checkpoint directory"):
        save_checkpoint(tmp_path / "file", {"x": 1})
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
    assert (tmp_path / "file").read_text() == "mine"
    # an export never replaces a run's checkpoint, nor a save an exported policy
    save_checkpoint(tmp_path / "run", {"x": 1})
    with pytest.raises(CheckpointError, match="is a training checkpoint: not replacing it with an "
                                              "exported policy"):
        save_checkpoint(tmp_path / "run", {"x": 2}, kind="policy")
    assert load_checkpoint(tmp_path / "run")["x"] == 1


def test_a_state_nested_too_deeply_is_refused_in_one_error(tmp_path):
    save_checkpoint(tmp_path / "c", {"x": 1})
    body = json.loads((tmp_path / "c" / "state.json").read_bytes())
    body["state"]["x"] = 12345678
    # 900 levels: JSON parses them, a recursive decoder would not
    text = dump_json(body).replace(b"12345678", b"[" * 900 + b"]" * 900)
    (tmp_path / "c" / "state.json").write_bytes(text)
    rewrite_manifest(tmp_path / "c")
    with pytest.raises(CheckpointError, match="nested too deeply|too deep"):
        load_checkpoint(tmp_path / "c")


# ---- atomic writes ---------------------------------------------------------------------------------

def test_a_crash_between_the_renames_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint"
    save_checkpoint(path, {"step": 1, "x": np.full(3, 1.0)})
    real = os.rename

    def crash_before_the_new_one_is_in_place(src, dst):
        if Path(dst) == path:
            raise KeyboardInterrupt  # the process dies after moving the old checkpoint aside
        real(src, dst)

    monkeypatch.setattr(_checkpoint.os, "rename", crash_before_the_new_one_is_in_place)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2, "x": np.full(3, 2.0)})
    monkeypatch.undo()
    assert not path.exists()
    with pytest.warns(UserWarning, match="a save was interrupted between its two renames"):
        assert load_checkpoint(path)["step"] == 1
    save_checkpoint(path, {"step": 3, "x": np.full(3, 3.0)})
    assert load_checkpoint(path)["step"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"]  # nothing left behind


_SAVER = """
import sys, numpy as np
from a2c_jax.utils import save_checkpoint
path, step = sys.argv[1], int(sys.argv[2])
big = np.random.default_rng(0).random((64, 1024))
while True:
    save_checkpoint(path, {"step": step, "x": np.full(1000, float(step)), "big": big + step})
    print(step, flush=True)
    step += 1
"""


@pytest.mark.slow  # over 1.5 s (see tests/conftest.py)
def test_kill_9_during_writes_leaves_a_loadable_checkpoint(tmp_path):
    """A process that saves in a loop, killed (SIGKILL) at random moments: the checkpoint always
    loads whole, as one of the saves."""
    path = tmp_path / "checkpoint"
    rng = random.Random(0)
    step = 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path), str(step)],
                                stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "JAX_PLATFORMS": "cpu"})
        assert proc.stdout is not None
        proc.stdout.readline()  # one save done
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fallback to .checkpoint.previous warns
            state = load_checkpoint(path)
        assert state["step"] >= step
        np.testing.assert_array_equal(state["x"], np.full(1000, float(state["step"])))
        step = state["step"] + 1


# ---- the command line ------------------------------------------------------------------------------

@pytest.mark.slow  # over 1.5 s (see tests/conftest.py)
@pytest.mark.parametrize("command", ["eval", "resume", "export"])
def test_tampered_checkpoint_is_one_line_on_the_command_line(loop_checkpoint, tmp_path, command):
    _, original = loop_checkpoint
    _copy(original, tmp_path / "checkpoint")
    (tmp_path / "checkpoint" / "state.json").write_bytes(pickle.dumps(Touch(tmp_path / "ran")))
    argv = {"eval": ["eval", str(tmp_path)],
            "resume": ["train", "--env", "CartPole-v1", "--out", str(tmp_path), "--resume"],
            "export": ["export", str(tmp_path), "--out", str(tmp_path / "policy")]}[command]
    proc = subprocess.run([sys.executable, "-m", "a2c_jax", *argv], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("a2c-jax: error: "), proc.stderr
    assert "checkpoint is damaged: state.json has" in lines[0]
    assert not (tmp_path / "ran").exists() and not (tmp_path / "policy").exists()


def test_cli_eval_and_export_of_a_missing_run(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"a2c-jax: error: no checkpoint at {tmp_path / 'checkpoint'}"]



class _TwoProcesses:
    """This process plays process ``me`` of 2 in a shared save; the all-gathers answer with the
    flags ``others`` says the other process reports at each step (1: done, 0: failed)."""

    def __init__(self, monkeypatch, me, others):
        from jax.experimental import multihost_utils

        self.me, self.others, self.step = me, list(others), 0
        monkeypatch.setattr(jax, "process_count", lambda: 2)
        monkeypatch.setattr(jax, "process_index", lambda: me)
        monkeypatch.setattr(multihost_utils, "broadcast_one_to_all",
                            lambda x: np.arange(8, dtype=np.uint8))
        monkeypatch.setattr(multihost_utils, "process_allgather", self.allgather)

    def allgather(self, flag):
        mine, theirs = int(np.asarray(flag).reshape(-1)[0]), self.others[self.step]
        self.step += 1
        return np.asarray([[mine], [theirs]] if self.me == 0 else [[theirs], [mine]], np.int32)


def test_in_a_shared_save_each_process_writes_its_own_files(tmp_path, monkeypatch):
    """Process 1's part of a two-process save: it writes only its own envs file, into the staging
    directory process 0 created (whose name both derive from process 0's token)."""
    path = tmp_path / "checkpoint"
    staging = tmp_path / f".checkpoint.tmp-{bytes(range(8)).hex()}"
    staging.mkdir()  # process 0's part
    _TwoProcesses(monkeypatch, me=1, others=[1, 1, 1, 1])
    save_checkpoint(path, {"w": np.ones(3)}, per_process={"envs": {"k": 1}})
    assert [p.name for p in staging.iterdir()] == ["envs.process-1.json"]
    assert json.loads((staging / "envs.process-1.json").read_bytes()) == {"k": 1}
    assert not path.exists()  # process 0 writes the rest and swaps it into place


def test_a_shared_save_fails_everywhere_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint"
    save_checkpoint(path, {"w": np.zeros(2)})
    before = load_checkpoint(path)["w"]
    # process 0, whose partner could not write its files: no swap, the staging directory removed
    with monkeypatch.context() as m:
        _TwoProcesses(m, me=0, others=[1, 1, 0, 1])
        with pytest.raises(CheckpointError, match=r"^process 1 could not write its files into the "
                                                  r"checkpoint .*checkpoint$"):
            save_checkpoint(path, {"w": np.ones(2)}, per_process={"envs": {"k": 0}})
    assert not list(tmp_path.glob(".checkpoint.tmp-*"))
    np.testing.assert_array_equal(load_checkpoint(path)["w"], before)
    # process 1, when process 0 could not stage the directory
    with monkeypatch.context() as m:
        _TwoProcesses(m, me=1, others=[1, 0])
        with pytest.raises(CheckpointError, match=r"^process 0 could not stage the checkpoint"):
            save_checkpoint(path, {"w": np.ones(2)}, per_process={"envs": {"k": 1}})
    # process 0, whose partner's entries could not be encoded: nothing is staged at all
    with monkeypatch.context() as m:
        _TwoProcesses(m, me=0, others=[0])
        with pytest.raises(CheckpointError, match=r"^process 1 could not encode its part of"):
            save_checkpoint(path, {"w": np.ones(2)}, per_process={"envs": {"k": 0}})
    # and the one whose entries fail (NaN is not JSON) raises its own error after telling the other
    with monkeypatch.context() as m:
        _TwoProcesses(m, me=1, others=[1])
        with pytest.raises(ValueError, match="Out of range float"):
            save_checkpoint(path, {"w": np.ones(2)}, per_process={"envs": {"k": float("nan")}})
    assert not list(tmp_path.glob(".checkpoint.tmp-*"))
    np.testing.assert_array_equal(load_checkpoint(path)["w"], before)


def test_a_module_named_by_a_checkpoint_is_never_imported(loop_checkpoint, tmp_path, monkeypatch,
                                                          capsys):
    """A checkpoint (here a forged one, with a consistent manifest) naming a ``module:id`` env: a2c_jax
    does not import the module (importing runs its code) unless the user names it with --env."""
    trainer, _ = loop_checkpoint
    (tmp_path / "forged_envs.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_name('IMPORTED').write_text('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    state = trainer.state_dict()
    local = state.pop("envs")
    state["env_id"] = "forged_envs:CartPole-v1"
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoint", state, per_process={"envs": local})
    for command in (["eval", str(run)], ["export", str(run), "--out", str(tmp_path / "p")]):
        assert cli.main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "a2c-jax: error:" in err, err
        assert "module 'forged_envs' is not imported, and a2c_jax does not import a module a " \
               "checkpoint names" in err and "--env forged_envs:CartPole-v1" in err, err
    with pytest.raises(CheckpointError, match="forged_envs' is not imported"):
        Trainer.load(run / "checkpoint")
    assert not (tmp_path / "IMPORTED").exists()
    # the user names it: then, and only then, it is imported (and the run evaluates)
    assert cli.main(["eval", str(run), "--episodes", "1", "--env", "forged_envs:CartPole-v1"]) == 0
    assert (tmp_path / "IMPORTED").read_text() == "ran"
    assert cli.main(["eval", str(run), "--env", "CartPole-v1"]) == 2
    assert "is a run on forged_envs:CartPole-v1, not --env CartPole-v1" in capsys.readouterr().err
