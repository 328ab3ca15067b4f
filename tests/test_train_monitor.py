"""TrainMonitor on gymnasium 1.x CartPole against counters and averages kept by hand in the test."""

import logging
import struct

import gymnasium
import jax.numpy as jnp
import numpy as np
import pytest

from a2c_jax.utils import Metrics
from a2c_jax.wrappers import TrainMonitor

LOGGER = "a2c_jax.TrainMonitor"


def run_episode(env, seed, policy_rng, before_step=None, after_step=None):
    """Plays one episode with random actions, calling the hooks with the 1-based step number."""
    s, _ = env.reset(seed=seed)
    first, rewards = s, []
    while True:
        if before_step is not None:
            before_step(len(rewards) + 1)
        s, r, terminated, truncated, _ = env.step(int(policy_rng.integers(2)))
        rewards.append(float(r))
        if after_step is not None:
            after_step(len(rewards))
        if terminated or truncated:
            return first, rewards


def read_scalars(path):
    """(tag, step, value) of every scalar in a TensorBoard event file (TFRecord framing)."""
    from tensorboardX.proto import event_pb2

    out, data = [], path.read_bytes()
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
        pos += 12 + length + 4
        for v in event.summary.value:
            out.append((v.tag, event.step, v.simple_value))
    return out


def test_reset_seed_and_options_reproducible():
    """reset(seed=..., options=...) works on gymnasium 1.x and the same seed gives the same obs."""
    env = TrainMonitor(gymnasium.make("CartPole-v1"))
    s1, info = env.reset(seed=123, options={"low": -0.01, "high": 0.01})
    assert isinstance(info, dict)
    assert np.all(np.abs(s1) <= 0.01)  # CartPole honours options low/high
    s2, _ = env.reset(seed=123, options={"low": -0.01, "high": 0.01})
    np.testing.assert_array_equal(s1, s2)
    s3, _ = env.reset(seed=123)
    ref, _ = gymnasium.make("CartPole-v1").reset(seed=123)
    np.testing.assert_array_equal(s3, ref)
    env.close()


def test_counters_and_log_lines(caplog):
    """T, ep, t, G, avg_G match a manual count; one INFO log line per finished episode."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    env = TrainMonitor(gymnasium.make("CartPole-v1"), smoothing=2)
    policy_rng = np.random.default_rng(0)
    returns, T = [], 0
    for ep in range(4):

        def on_step(t, T0=T):
            assert env.t == t and T0 + t == env.T

        _, rewards = run_episode(env, seed=ep, policy_rng=policy_rng, after_step=on_step)
        T += len(rewards)
        returns.append(sum(rewards))
        assert env.ep == ep + 1
        assert env.t == len(rewards)
        assert env.T == T
        assert pytest.approx(sum(rewards)) == env.G
        assert env.avg_G == pytest.approx(np.mean(returns[-2:]))
    lines = [r for r in caplog.records if r.name == LOGGER]
    assert len(lines) == 4
    assert all(r.levelno == logging.INFO for r in lines)
    assert f"T: {T:,}" in lines[-1].getMessage()
    env.close()


def test_avg_g_before_first_episode():
    """avg_G is 0.0 before any episode has finished."""
    env = TrainMonitor(gymnasium.make("CartPole-v1"))
    env.reset(seed=0)
    assert env.avg_G == 0.0 and env.T == 0 and env.ep == 1
    with pytest.raises(ValueError):
        TrainMonitor(gymnasium.make("CartPole-v1"), smoothing=0)


def test_record_metrics_averaged_per_episode(caplog):
    """Metrics (device values) and plain dicts recorded in an episode average to the numpy mean."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    env = TrainMonitor(gymnasium.make("CartPole-v1"))
    rng = np.random.default_rng(1)
    recorded = {"loss": [], "acc": []}

    def on_step(t):
        loss, acc = float(rng.normal()), float(rng.uniform())
        recorded["loss"].append(loss)
        recorded["acc"].append(acc)
        env.record_metrics(Metrics(("loss",), jnp.array([loss], jnp.float32)))
        env.record_metrics({"acc": acc})

    run_episode(env, seed=0, policy_rng=rng, before_step=on_step)
    assert set(env.last_metrics) == {"loss", "acc"}
    assert env.last_metrics["loss"] == pytest.approx(np.mean(recorded["loss"]), rel=1e-5)
    assert env.last_metrics["acc"] == pytest.approx(np.mean(recorded["acc"]), rel=1e-6)
    assert "loss" in caplog.records[-1].getMessage()
    # the next episode starts a fresh average
    recorded = {"loss": [], "acc": []}
    run_episode(env, seed=1, policy_rng=rng, before_step=on_step)
    assert env.last_metrics["loss"] == pytest.approx(np.mean(recorded["loss"]), rel=1e-5)
    with pytest.raises(TypeError):
        env.record_metrics([("loss", 1.0)])
    env.close()


def test_tensorboard_scalars(tmp_path):
    """With tensorboard_dir, event files hold the episode return/length and recorded metrics."""
    env = TrainMonitor(gymnasium.make("CartPole-v1"), tensorboard_dir=tmp_path)
    rng = np.random.default_rng(2)
    returns, T = [], 0
    for ep in range(2):
        _, rewards = run_episode(
            env,
            seed=ep,
            policy_rng=rng,
            before_step=lambda t: env.record_metrics({"train/x": float(t)}),
        )
        T += len(rewards)
        returns.append((T, sum(rewards), np.mean(np.arange(1, len(rewards) + 1))))
    env.close()
    files = [p for p in tmp_path.rglob("*") if p.is_file() and "tfevents" in p.name]
    assert files and all(p.stat().st_size > 0 for p in files)
    scalars = [s for p in files for s in read_scalars(p)]
    by_tag = {}
    for tag, step, value in scalars:
        by_tag.setdefault(tag, []).append((step, value))
    assert {"episode/return", "episode/length", "train/x"} <= set(by_tag)
    assert [(s, pytest.approx(v)) for s, v in by_tag["episode/return"]] == [
        (t, g) for t, g, _ in returns
    ]
    assert [s for s, _ in by_tag["train/x"]] == [t for t, _, _ in returns]
    np.testing.assert_allclose(
        [v for _, v in by_tag["train/x"]], [m for _, _, m in returns], rtol=1e-6
    )


# ---- record_metrics: checked at record time, without reading device values ---------------------


class LazyValue:
    """Stands in for a device array not computed yet: shape and dtype are known, reads are counted.

    ``jax.device_get`` starts a copy with ``copy_to_host_async`` and reads with ``__array__``.
    """

    reads = 0

    def __init__(self, value):
        self._value = np.asarray(value, np.float32)
        self.shape, self.dtype, self.size = self._value.shape, self._value.dtype, self._value.size

    def copy_to_host_async(self):
        LazyValue.reads += 1

    def __array__(self, dtype=None, copy=None):
        LazyValue.reads += 1
        return self._value if dtype is None else self._value.astype(dtype)

    def __float__(self):
        LazyValue.reads += 1
        return float(self._value.reshape(()))


@pytest.mark.parametrize(
    "metrics, exc, match",
    [
        ({"note": "hi"}, TypeError, "'note'.*real number"),
        ({"x": None}, TypeError, "'x'"),
        ({"x": [1.0]}, TypeError, "'x'"),
        ({"x": 1 + 2j}, TypeError, "'x'"),
        ({"x": np.array([1.0, 2.0, 3.0])}, ValueError, r"'x'.*size 1.*\(3,\)"),
        ({"x": jnp.ones((2, 1))}, ValueError, r"'x'.*\(2, 1\)"),
        ({"x": np.array(["a"])}, TypeError, "'x'.*dtype"),
        ({"ok": 1.0, "x": np.zeros(2)}, ValueError, "'x'"),
        ({3: 1.0}, TypeError, "names must be strings"),
        (Metrics(("a", "b"), jnp.zeros(3)), ValueError, "2 keys needs 2 real values"),
        (Metrics(("a",), jnp.zeros((1, 1))), ValueError, "1 keys needs 1"),
        (Metrics(("a",), np.array(["x"])), ValueError, "kind 'U'"),
        ([("loss", 1.0)], TypeError, "mapping"),
    ],
)
def test_record_metrics_rejects_non_scalars(tmp_path, metrics, exc, match):
    """Non-numeric or non-scalar values raise at record time, and the call records nothing.

    Reference: the episode's TensorBoard scalars and averages are those of the good calls only.
    """
    env = TrainMonitor(gymnasium.make("CartPole-v1"), tensorboard_dir=tmp_path)
    good = []

    def before_step(t):
        env.record_metrics({"ok": float(t)})
        good.append(float(t))
        if t == 2:
            with pytest.raises(exc, match=match):
                env.record_metrics(metrics)

    _, rewards = run_episode(env, seed=0, policy_rng=np.random.default_rng(0),
                             before_step=before_step)
    env.close()
    assert env.last_metrics == {"ok": pytest.approx(np.mean(good))}
    scalars = [s for p in tmp_path.rglob("*tfevents*") for s in read_scalars(p)]
    assert ("episode/length", len(rewards), len(rewards)) in scalars
    assert [(tag, step) for tag, step, _ in scalars if tag == "ok"] == [("ok", len(rewards))]


def test_record_metrics_accepts_size_one_values():
    """Python numbers, numpy/JAX scalars and size-1 arrays of any shape average to the numpy mean."""
    env = TrainMonitor(gymnasium.make("CartPole-v1"))
    values = [1, 2.5, True, np.float32(-1.5), np.int64(7), np.array([3.0]), np.array([[4.0]]),
              jnp.float32(0.25), jnp.array([5.0]), jnp.ones((1, 1, 1), jnp.int32)]
    env.reset(seed=0)
    for v in values:
        env.record_metrics({"x": v})
    env.record_metrics(Metrics(("x", "y"), jnp.array([2.0, 9.0])))
    while not any(env.step(0)[2:4]):
        pass
    want = np.mean([float(np.ravel(np.asarray(v))[0]) for v in values] + [2.0])
    assert env.last_metrics == {"x": pytest.approx(want), "y": pytest.approx(9.0)}


def test_record_metrics_reads_no_value_before_episode_end():
    """Recording lazy device values reads none of them; the episode's end reads each once."""
    env = TrainMonitor(gymnasium.make("CartPole-v1"))
    rng = np.random.default_rng(3)
    recorded = {"loss": [], "acc": [], "lr": []}
    LazyValue.reads = 0

    def before_step(t):
        loss, acc, lr = rng.normal(size=3).astype(np.float32)
        env.record_metrics(Metrics(("loss", "acc"), LazyValue([loss, acc])))
        env.record_metrics({"lr": LazyValue(lr)})
        recorded["loss"].append(loss)
        recorded["acc"].append(acc)
        recorded["lr"].append(lr)

    def after_step(t):
        if not env.last_metrics:  # the episode is under way: nothing may have been read
            assert LazyValue.reads == 0, f"step {t}"

    _, rewards = run_episode(env, seed=0, policy_rng=rng, before_step=before_step,
                             after_step=after_step)
    assert 0 < LazyValue.reads <= 2 * (2 * len(rewards))  # one copy + one read per value at most
    for k, v in recorded.items():
        assert env.last_metrics[k] == pytest.approx(np.mean(v), rel=1e-5)


def test_smoothing_must_be_an_int():
    """smoothing=2.5 is refused rather than truncated to 2."""
    with pytest.raises(TypeError):
        TrainMonitor(gymnasium.make("CartPole-v1"), smoothing=2.5)
