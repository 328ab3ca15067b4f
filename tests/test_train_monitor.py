"""TrainMonitor on gymnasium 1.x CartPole against counters and averages kept by hand in the test."""

import json
import logging
import pathlib
import pickle
import re
import time

import gymnasium
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import read_scalars

from a2c_jax.utils import CheckpointError, Metrics
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


def coax_smoothed(returns, smoothing):
    """avg_G by coax's rule, written out: the plain mean of the first ``smoothing`` returns, then
    an exponential average with weight 1/smoothing (avg <- (1 - 1/s) avg + G/s)."""
    if len(returns) <= smoothing:
        return float(np.mean(returns))
    avg = float(np.mean(returns[:smoothing]))
    for g in returns[smoothing:]:
        avg = (1 - 1 / smoothing) * avg + g / smoothing
    return avg


def test_coax_smoothed_by_hand():
    """The reference above on numbers worked by hand: s=2, returns 10, 20, 40 -> 15, then 27.5."""
    assert coax_smoothed([10.0], 2) == 10.0
    assert coax_smoothed([10.0, 20.0], 2) == 15.0
    assert coax_smoothed([10.0, 20.0, 40.0], 2) == 27.5


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
        assert env.avg_G == pytest.approx(coax_smoothed(returns, smoothing=2))
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
    recorded = {"pg/loss": [], "acc": []}

    def on_step(t):
        loss, acc = float(rng.normal()), float(rng.uniform())
        recorded["pg/loss"].append(loss)
        recorded["acc"].append(acc)
        env.record_metrics(Metrics(("pg/loss",), jnp.array([loss], jnp.float32)))
        env.record_metrics({"acc": acc})

    run_episode(env, seed=0, policy_rng=rng, before_step=on_step)
    assert set(env.last_metrics) == {"pg/loss", "acc"}
    assert env.last_metrics["pg/loss"] == pytest.approx(np.mean(recorded["pg/loss"]), rel=1e-5)
    assert env.last_metrics["acc"] == pytest.approx(np.mean(recorded["acc"]), rel=1e-6)
    message = caplog.records[-1].getMessage()
    assert "pg/loss: " in message and "acc" not in message  # coax shows */loss, not the rest
    # the next episode starts a fresh average
    recorded = {"pg/loss": [], "acc": []}
    run_episode(env, seed=1, policy_rng=rng, before_step=on_step)
    assert env.last_metrics["pg/loss"] == pytest.approx(np.mean(recorded["pg/loss"]), rel=1e-5)
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
    assert {"episode/return", "episode/steps", "train/x"} <= set(by_tag)
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
    assert ("episode/steps", len(rewards), len(rewards)) in scalars
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


# ---- coax's constructor, log line and TensorBoard tags ------------------------------------------


def test_constructor_keyword_order_and_name(caplog):
    """coax's order (env, name, tensorboard_dir, ...); the name picks the logger."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    env = TrainMonitor(gymnasium.make("CartPole-v1"), "run7")
    assert env.name == "run7" and env.logger.name == f"{LOGGER}.run7"
    assert (env.tensorboard, env.tensorboard_write_all, env.log_all_metrics, env.smoothing) == (
        None, False, False, 10)
    run_episode(env, seed=0, policy_rng=np.random.default_rng(0))
    assert [r.name for r in caplog.records] == [f"{LOGGER}.run7"]
    with pytest.raises(TypeError, match="name"):
        TrainMonitor(gymnasium.make("CartPole-v1"), name=3)


def test_vector_env_refused_with_one_clear_error():
    """A vector env raises a TypeError that says what to use instead, not gymnasium's assert."""
    venv = gymnasium.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync")
    with pytest.raises(TypeError, match=r"single gymnasium.Env.*SyncVectorEnv \(2 envs\).*Trainer"):
        TrainMonitor(venv)
    venv.close()
    with pytest.raises(TypeError, match="gymnasium.Env, got list"):
        TrainMonitor([])


class CountingEnv(gymnasium.Env):
    """Reward r_t = t (1-based) and the episode ends after ``length`` steps: G = length(length+1)/2."""

    observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def __init__(self, length=5):
        self.length, self.t = length, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.full(1, self.t, np.float32), float(self.t), self.t >= self.length, False, {}


LINE = re.compile(r"ep: (\d+),\tT: ([\d,]+),\tG: (\S+),\tavg_r: (\S+),\tavg_G: (\S+),\tt: (\d+),"
                  r"\tdt: (\d+\.\d{3})ms((?:,\t[^:]+: \S+)*)$")


@pytest.mark.parametrize("log_all", [False, True])
def test_log_line_format(caplog, log_all):
    """coax's line, field by field, against values computed by hand; coax's metric filter."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    env = TrainMonitor(CountingEnv(length=4), log_all_metrics=log_all, smoothing=3)
    counters = env.get_counters()
    counters["T"] = 1_234_560  # to see the thousands separators
    env.set_counters(counters)
    metrics = {"pg/loss": 1.5, "other": 2.0, "b/entropy": 0.25, "loss_x": 3.0, "c/kl_div": 0.125,
               "throughput/steps": 1000.0, "xthroughput/y": 4.0}
    env.reset()
    env.record_metrics(metrics)
    while not env.step(0)[2]:
        pass
    (record,) = caplog.records
    m = LINE.match(record.getMessage())
    assert m, record.getMessage()
    ep, T, G, avg_r, avg_G, t, _, extra = m.groups()
    assert (ep, T, G, avg_r, avg_G, t) == ("1", "1,234,564", "10", "2.5", "10", "4")
    shown = [kv.split(": ") for kv in extra.split(",\t")[1:]]
    want = list(metrics) if log_all else ["pg/loss", "b/entropy", "c/kl_div", "throughput/steps"]
    assert [k for k, _ in shown] == want  # in recorded order
    assert [float(v) for _, v in shown] == [metrics[k] for k in want]


def test_avg_r_and_dt_ms():
    """avg_r = G / t and dt_ms > 0 within and after an episode; both nan before the first step."""
    env = TrainMonitor(CountingEnv(length=3))
    env.reset()
    assert np.isnan(env.avg_r) and np.isnan(env.dt_ms)
    env.step(0)
    env.step(0)
    assert env.avg_r == 1.5 and env.dt_ms > 0
    env.step(0)  # the episode ends: 1 + 2 + 3 over 3 steps, and dt_ms stops moving
    assert env.avg_r == 2.0
    dt = env.dt_ms
    time.sleep(0.005)
    assert env.dt_ms == dt


def test_tensorboard_coax_episode_tags(tmp_path):
    """coax's five episode tags (and avg_return) at step T, against the hand-computed values."""
    env = TrainMonitor(CountingEnv(length=4), tensorboard_dir=tmp_path, smoothing=2)
    for length in (4, 2, 3):
        env.env.length = length
        env.reset()
        while not env.step(0)[2]:
            pass
    env.close()
    scalars = [s for p in tmp_path.rglob("*tfevents*") for s in read_scalars(p)]
    by_tag = {}
    for tag, step, value in scalars:
        by_tag.setdefault(tag, []).append((step, pytest.approx(value)))
    G = [10.0, 3.0, 6.0]
    assert by_tag["episode/episode"] == [(4, 1), (6, 2), (9, 3)]
    assert by_tag["episode/return"] == [(4, 10), (6, 3), (9, 6)]
    assert by_tag["episode/steps"] == [(4, 4), (6, 2), (9, 3)]
    assert by_tag["episode/avg_reward"] == [(4, 2.5), (6, 1.5), (9, 2)]
    assert by_tag["episode/avg_return"] == [(T, coax_smoothed(G[: i + 1], 2))
                                            for i, T in enumerate((4, 6, 9))]
    assert [s for s, _ in by_tag["episode/avg_step_duration_ms"]] == [4, 6, 9]
    assert all(v.expected > 0 for _, v in by_tag["episode/avg_step_duration_ms"])


def test_tensorboard_write_all(tmp_path):
    """tensorboard_write_all: each recorded value at the T it was recorded, no episode average."""
    env = TrainMonitor(CountingEnv(length=5), tensorboard_dir=tmp_path, tensorboard_write_all=True)
    env.reset()
    want = []
    for t in range(5):
        x = float(t * t)
        env.record_metrics({"train/x": x} if t % 2 else Metrics(("train/x",), jnp.array([x])))
        want.append((env.T, x))
        env.step(0)
    env.close()
    scalars = [s for p in tmp_path.rglob("*tfevents*") for s in read_scalars(p)]
    assert [(step, v) for tag, step, v in scalars if tag == "train/x"] == want
    assert env.last_metrics == {"train/x": pytest.approx(np.mean([x for _, x in want]))}


# ---- period ------------------------------------------------------------------------------------


def brute_force_period(calls, T_period=None, ep_period=None):
    """Fires when a multiple of the period lies in (the counter at the last firing, now]."""
    last_T = last_ep = 0
    out = []
    for T, ep in calls:
        fire_T = T_period is not None and any(last_T < m <= T for m in range(T_period, T + 1, T_period))
        fire_ep = ep_period is not None and any(
            last_ep < m <= ep for m in range(ep_period, ep + 1, ep_period))
        last_T, last_ep = (T if fire_T else last_T), (ep if fire_ep else last_ep)
        out.append(fire_T or fire_ep)
    return out


@pytest.mark.parametrize("T_period, ep_period, call_prob", [
    (7, None, 1.0), (7, None, 0.3), (2, None, 0.2), (None, 2, 1.0), (None, 1, 0.1), (5, 2, 1.0),
    (3, 2, 0.15), (1, None, 0.5),
])
def test_period_against_brute_force(T_period, ep_period, call_prob):
    """period() called at random steps of random-length episodes, against the loop above.

    Gaps between calls that span several periods check that a late call fires once, not once
    per missed multiple (coax's catch-up).
    """
    env = TrainMonitor(CountingEnv())
    rng = np.random.default_rng((T_period or 0) + 10 * (ep_period or 0) + int(100 * call_prob))
    calls, fired = [], []
    for _ in range(40):
        env.env.length = int(rng.integers(1, 9))
        env.reset()
        done = False
        while not done:
            done = env.step(0)[2]
            if rng.uniform() < call_prob:
                calls.append((env.T, env.ep))
                fired.append(env.period("x", T_period=T_period, ep_period=ep_period))
    assert 0 < sum(fired) < len(fired) or T_period == 1
    assert fired == brute_force_period(calls, T_period, ep_period)


def test_period_every_step_fires_at_multiples_per_name():
    """Called each step, T_period=P fires at T = P, 2P, ...; two names keep separate schedules."""
    env = TrainMonitor(CountingEnv(length=1000))
    env.reset()
    a, b = [], []
    for _ in range(50):
        env.step(0)
        if env.period("a", T_period=10):
            a.append(env.T)
        if env.period("b", T_period=1e1 * 1.5):  # a float with an integer value is accepted
            b.append(env.T)
    assert a == [10, 20, 30, 40, 50] and b == [15, 30, 45]


@pytest.mark.parametrize("kwargs, exc, match", [
    ({}, ValueError, "T_period and/or ep_period"),
    ({"T_period": 0}, ValueError, "T_period must be a positive integer, got 0"),
    ({"ep_period": -2}, ValueError, "ep_period must be a positive integer"),
    ({"T_period": 2.5}, ValueError, "T_period must be a positive integer, got 2.5"),
    ({"T_period": "10"}, TypeError, "T_period must be a positive int"),
    ({"T_period": True}, TypeError, "T_period"),
])
def test_period_refuses_bad_periods(kwargs, exc, match):
    env = TrainMonitor(CountingEnv())
    with pytest.raises(exc, match=match):
        env.period("x", **kwargs)
    with pytest.raises(TypeError, match="name must be a str"):
        env.period(3, T_period=1)


# ---- counters ----------------------------------------------------------------------------------


def play(env, lengths, period_every=3):
    """Runs episodes of the given lengths, calling period() each step; returns (T, fired) pairs."""
    fired = []
    for n in lengths:
        env.env.length = n
        env.reset()
        done = False
        while not done:
            done = env.step(0)[2]
            if env.period("sync", T_period=period_every) or env.period("ep", ep_period=2):
                fired.append(env.T)
    return fired


def test_counters_get_set_save_load_roundtrip(tmp_path):
    """A fresh monitor loaded from the file continues exactly as the original would."""
    env = TrainMonitor(CountingEnv(), smoothing=3)
    play(env, [3, 5, 2, 4, 4])
    counters = env.get_counters()
    assert set(counters) == {"T", "ep", "t", "G", "avg_G", "n_avg_G", "period"}
    assert (counters["T"], counters["ep"], counters["t"], counters["G"]) == (18, 5, 4, 10.0)
    assert counters["avg_G"] == pytest.approx(coax_smoothed([6, 15, 3, 10, 10], 3))
    path = env.save_counters(tmp_path / "sub" / "counters.json")  # creates the folder
    assert json.loads(path.read_text())["counters"] == counters
    other = TrainMonitor(CountingEnv(), smoothing=3)
    other.load_counters(path)
    assert other.get_counters() == counters
    assert play(other, [5, 1, 6]) == play(env, [5, 1, 6])
    assert other.get_counters() == env.get_counters()
    other.reset_global()
    assert other.get_counters() == TrainMonitor(CountingEnv()).get_counters()


@pytest.mark.parametrize("change, exc, match", [
    (lambda c: c.pop("T"), ValueError, r"missing \['T'\]"),
    (lambda c: c.update(extra=1), ValueError, r"unknown \['extra'\]"),
    (lambda c: c.update(T=1.5), TypeError, "'T' must be an int"),
    (lambda c: c.update(ep=-1), ValueError, "'ep' must be >= 0"),
    (lambda c: c.update(G="x"), TypeError, "'G' must be a real number"),
    (lambda c: c.update(period={"T": {}}), ValueError, "'period'"),
    (lambda c: c["period"]["T"].update(a=0), ValueError, "ints >= 1"),
])
def test_set_counters_refuses_bad_dicts(change, exc, match):
    """A bad dict raises a clear error and changes nothing."""
    env = TrainMonitor(CountingEnv())
    play(env, [2, 3])
    before = env.get_counters()
    bad = env.get_counters()
    change(bad)
    with pytest.raises(exc, match=match):
        env.set_counters(bad)
    assert env.get_counters() == before
    with pytest.raises(TypeError, match="must be a dict"):
        env.set_counters([("T", 1)])


class Touch:
    """Unpickling this creates the marker file: proof that the file's code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


@pytest.mark.parametrize("kind", ["pickle", "pickle0", "lz4", "garbage", "json_other", "json_bad",
                                  "version", "missing", "empty"])
def test_load_counters_refuses_foreign_files_and_runs_nothing(tmp_path, kind):
    """Pickles (coax's format) and other files are refused with CheckpointError, unread."""
    marker = tmp_path / "marker"
    good = {"format": "a2c_jax.TrainMonitor.counters", "format_version": 1}
    env = TrainMonitor(CountingEnv())
    play(env, [2, 3])
    payload = {"T": 5, "ep": 2, "t": 3, "G": 6.0, "avg_G": 4.5, "n_avg_G": 2,
               "period": {"T": {}, "ep": {}}, "x": Touch(marker)}
    data, match = {
        "pickle": (pickle.dumps(payload), "is a pickle"),
        "pickle0": (pickle.dumps(payload, protocol=0), "not JSON"),
        "lz4": (b"\x04\x22\x4d\x18" + pickle.dumps(payload), "lz4 frame"),
        "garbage": (bytes(range(256)), "not JSON"),
        "json_other": (json.dumps({"T": 5}).encode(), "no 'format'"),
        "json_bad": (json.dumps({**good, "counters": {"T": 5}}).encode(), "invalid counters"),
        "version": (json.dumps({**good, "format_version": 99}).encode(), "version 99"),
        "missing": (None, "cannot read"),
        "empty": (b"", "not JSON"),
    }[kind]
    path = tmp_path / "counters.json"
    if data is not None:
        path.write_bytes(data)
    before = env.get_counters()
    with pytest.raises(CheckpointError, match=match):
        env.load_counters(path)
    assert not marker.exists()
    assert env.get_counters() == before
    pickle.loads(pickle.dumps(Touch(marker)))  # the marker does work when unpickled
    assert marker.exists()


def test_paused_passes_through_without_counting(caplog, tmp_path):
    """Steps and resets inside paused() change no counter, log nothing, write no scalar."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    env = TrainMonitor(CountingEnv(length=3), tensorboard_dir=tmp_path)
    play(env, [3])
    before, n_lines = env.get_counters(), len(caplog.records)
    with env.paused():
        env.reset()
        while not env.step(0)[2]:
            pass
    assert env.get_counters() == before and len(caplog.records) == n_lines
    play(env, [3])
    assert env.T == 6 and env.ep == 2
    env.close()
    steps = [s for p in tmp_path.rglob("*tfevents*") for t, s, _ in read_scalars(p)
             if t == "episode/return"]
    assert steps == [3, 6]
