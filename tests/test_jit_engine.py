"""The fully-jitted engine: the same maths as the object API, many seeds, two devices, resumption,
episode bookkeeping against a brute-force loop, the command line and its bad input."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from a2c_jax import cli
from a2c_jax.training import Trainer, preset
from a2c_jax.training._jit import (
    JAX_NATIVE_ENVS,
    EngineError,
    EngineState,
    JitTrainer,
    check_jax_native,
    means_after_each_episode,
    minibatches,
    record_episodes,
    ring_mean,
)
from a2c_jax.utils import load_checkpoint


def small(env_id="CartPole-v1", algo="a2c", **changes):
    return preset(env_id, algo).replace(num_envs=4, hidden=(16,), **changes)


def first_run(tree):
    return jax.tree.map(lambda x: np.asarray(x)[0], tree)


def assert_close(a, b, rtol=1e-5, atol=1e-6):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol,
                                                         atol=atol), a, b)


def assert_same(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


# ---- the same maths as the object API (the update itself: tests/test_one_core.py) -------------

def test_initial_parameters_are_those_of_the_object_api_per_seed():
    jt = JitTrainer("CartPole-v1", small(), seed=11, num_seeds=2)
    for k in range(2):
        loop = Trainer("CartPole-v1", small(), seed=11 + k)
        assert_same(jax.tree.map(lambda x: np.asarray(x)[k], jt.state.pi_params), loop.pi.params)
        loop.close()


def test_each_of_many_seeds_is_the_run_of_that_seed_alone():
    """vmap over runs: run k of a 2-run program follows the 1-run program of seed + k."""
    both = JitTrainer("CartPole-v1", small(), seed=5, num_seeds=2)
    alone = JitTrainer("CartPole-v1", small(), seed=6)
    st_both, _ = jax.jit(both._chunk, static_argnums=2)(both.state, both._hparams(), 6)
    st_alone, _ = jax.jit(alone._chunk, static_argnums=2)(alone.state, alone._hparams(), 6)
    take = jax.tree.map(lambda x: np.asarray(x)[1], st_both.pi_params)
    assert_close(take, first_run(st_alone.pi_params), rtol=1e-4, atol=1e-5)
    assert int(st_both.vector_steps[1]) == int(st_alone.vector_steps[0]) == 6 * 5
    # and the two runs differ from each other
    assert not np.allclose(*[np.asarray(x) for x in jax.tree.leaves(st_both.pi_params)[0]])


def recipe_functions(n_actions=2):
    """coax's recipe layout: a shared torso, name-scoped heads."""
    import haiku as hk

    def torso(S, is_training):
        with hk.experimental.name_scope("torso"):
            return hk.Sequential([hk.Linear(16), jax.nn.relu, hk.Linear(16), jax.nn.relu])(S)

    def func_v(S, is_training):
        with hk.experimental.name_scope("v"):
            head = hk.Sequential([hk.Linear(1, w_init=jnp.zeros), jnp.ravel])
        return head(torso(S, is_training))

    def func_pi(S, is_training):
        with hk.experimental.name_scope("pi"):
            head = hk.Linear(n_actions, w_init=jnp.zeros)
        return {"logits": head(torso(S, is_training))}

    return func_pi, func_v


def test_user_functions_with_a_shared_torso_are_synced_after_every_step():
    """Your own torso/func_v/func_pi under jit: the engine starts from the parameters Policy/V
    initialise, and the torso they share is averaged after every update (it stays identical in
    both, while the heads differ)."""
    import gymnasium

    import a2c_jax

    func_pi, func_v = recipe_functions()
    jt = JitTrainer("CartPole-v1", small(), seed=4, func_pi=func_pi, func_v=func_v)
    assert jt.shares_modules
    env = gymnasium.make("CartPole-v1")
    assert_same(first_run(jt.state.pi_params), a2c_jax.Policy(func_pi, env, random_seed=4).params)
    assert_same(first_run(jt.state.v_params), a2c_jax.V(func_v, env, random_seed=4).params)
    before = first_run(jt.state.pi_params)
    jt.run(400, progress=False, chunks=1)
    pi_p, v_p = first_run(jt.state.pi_params), first_run(jt.state.v_params)
    torso = [k for k in pi_p if k.startswith("torso")]
    assert torso and all(k in v_p for k in torso)
    for k in torso:
        assert_same(pi_p[k], v_p[k])
        assert not np.array_equal(pi_p[k]["w"], before[k]["w"])
    assert not JitTrainer("CartPole-v1", small(), seed=4).shares_modules


@pytest.mark.parametrize("E, T, size, stratified", [
    (4, 8, 16, True),    # 2 minibatches of 4 steps from every env
    (4, 6, 6, False),    # 4 minibatches do not divide 6 steps: one shuffle of all 24
    (3, 8, 7, False),    # 7 does not divide 24: 3 minibatches, 3 steps dropped
])
def test_minibatches_cover_the_rollout_once(E, T, size, stratified):
    """Each transition at most once per epoch (exactly once when nothing is dropped), and when
    stratified every minibatch holds the same number of steps of every env, env-major."""
    idx = jnp.arange(E * T).reshape(E, T)
    mbs = np.asarray(minibatches({"idx": idx}, jax.random.PRNGKey(0), size)["idx"])
    num_mb = E * T // size
    assert mbs.shape == (num_mb, size)
    seen = mbs.ravel()
    assert len(set(seen.tolist())) == len(seen) == num_mb * size
    if stratified:
        for mb in mbs:
            env = mb // T
            assert np.array_equal(env, np.repeat(np.arange(E), size // E))   # env-major blocks
    # a different key shuffles differently
    other = np.asarray(minibatches({"idx": idx}, jax.random.PRNGKey(1), size)["idx"])
    assert not np.array_equal(mbs, other)


# ---- episode bookkeeping against a brute-force loop ----------------------------------------------

@given(st.lists(st.lists(st.booleans(), min_size=7, max_size=7), min_size=1, max_size=12),
       st.integers(0, 3))
def test_record_episodes_keeps_the_last_returns_in_order(dones, size_minus_5):
    """The ring holds the returns of the last ``size`` episodes, numbered in env order within a
    step; compared with a list of every finished return. Includes steps where more episodes end
    than the ring holds (7 envs, ring of 5-8)."""
    size = 5 + size_minus_5
    ring, episodes = jnp.zeros(size), jnp.zeros((), jnp.int32)
    every = []
    for t, done in enumerate(dones):
        returns = np.arange(7, dtype=np.float32) + 10.0 * t
        # the loop trainer's check after each episode, in env order
        count, means = means_after_each_episode(ring, episodes, jnp.asarray(returns),
                                                jnp.asarray(done))
        if sum(done) <= size:  # exact up to a ring's worth of episodes in one step
            for k in np.flatnonzero(done):
                every.append(float(returns[k]))
                assert int(count[k]) == len(every)
                np.testing.assert_allclose(float(means[k]), np.mean(every[-size:]), rtol=1e-6)
            every = every[:len(every) - int(sum(done))]
        ring, episodes = record_episodes(ring, episodes, jnp.asarray(returns), jnp.asarray(done))
        every += [float(r) for r, d in zip(returns, done) if d]
        assert int(episodes) == len(every)
        expected = np.mean(every[-size:]) if every else 0.0
        np.testing.assert_allclose(float(ring_mean(ring, episodes)), expected, rtol=1e-6)
        for i, r in enumerate(every[-size:], start=max(0, len(every) - size)):
            assert float(ring[i % size]) == r


def test_solved_at_step_and_mean100_match_the_loop_trainers_count():
    """solved_at and the mean of the last 100 episodes, kept on the device, against the loop
    trainer's way of counting (a deque of the last 100 returns, checked after every episode)
    replayed on the engine's own transitions. The threshold is set between the typical and the
    best running mean of this random-ish policy, so that it is crossed mid-run."""
    from collections import deque

    T, E = 1000, 4
    jt = JitTrainer("CartPole-v1", small(), seed=0)
    st0 = jax.tree.map(lambda x: x[0], jt.state)
    _, tr = jax.jit(lambda s: jax.lax.scan(jt._env_step, s, None, length=T))(st0)
    R, term, trunc = (np.asarray(tr[i]) for i in (3, 4, 5))

    def loop_count(threshold):
        ep, recent, every, solved = np.zeros(E), deque(maxlen=100), [], None
        means = []
        for t in range(T):
            ep += R[t]
            for k in np.flatnonzero(term[t] | trunc[t]):
                every.append(float(ep[k]))
                recent.append(float(ep[k]))
                ep[k] = 0.0
                if len(recent) == 100:
                    means.append(np.mean(recent))
                    if solved is None and np.mean(recent) >= threshold:
                        solved = (t + 1) * E
        return solved, every, means

    _, every, means = loop_count(np.inf)
    assert len(every) > 130
    threshold = float(0.5 * (np.median(means) + np.max(means)))
    solved, _, _ = loop_count(threshold)
    assert solved is not None
    jt.reward_threshold = threshold   # a Python constant of the trace: set before tracing
    st_n, _ = jax.jit(lambda s: jax.lax.scan(jt._env_step, s, None, length=T))(st0)
    assert int(st_n.solved_at) * E == solved
    assert int(st_n.episodes) == len(every)
    assert float(ring_mean(st_n.ring, st_n.episodes)) == pytest.approx(np.mean(every[-100:]))


def test_counters_after_a_run():
    jt = JitTrainer("CartPole-v1", small(), seed=0)
    jt.run(4000, progress=False, chunks=2)
    curves = jt.curves()
    assert curves["mean100"].shape == (1, jt.updates)
    assert int(jt.state.vector_steps[0]) * 4 == jt.env_steps == jt.updates * jt.steps_per_update
    assert int(curves["episodes"][0, -1]) == int(jt.state.episodes[0]) > 0


def test_an_interrupt_while_waiting_leaves_a_consistent_state(monkeypatch):
    """Ctrl-C while the host waits for a chunk: the chunk has run on the device, so it is
    counted before the KeyboardInterrupt goes on (a checkpoint saved then is whole)."""
    from a2c_jax.training import _jit

    jt = JitTrainer("CartPole-v1", small(), seed=0)
    real, calls = _jit._fetch, []

    def interrupted_once(x):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(x)

    monkeypatch.setattr(_jit, "_fetch", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        jt.run(2000, progress=False, chunks=2)
    assert jt.env_steps == jt.updates * jt.steps_per_update > 0
    assert int(jt.state.vector_steps[0]) * 4 == jt.env_steps
    assert len(jt.history["mean100"]) == 1


# ---- learning, resumption, devices ------------------------------------------------------------------

def test_shared_backbone_keeps_one_torso_and_learns():
    """shared_backbone under jit (the CartPole preset, one torso, ActorCritic): after 20k steps
    both networks hold the same torso, the optimizer state is one (v_opt empty), the metrics are
    ActorCritic's, and the policy has learned (mean of the last 100 episodes above 35; a random
    policy gets ~22; 4 of 4 seeds were at 43-47 when measured)."""
    jt = JitTrainer("CartPole-v1", preset("CartPole-v1", "a2c").replace(shared_backbone=True),
                    seed=0)
    assert jt.ac is not None and jt.state.v_opt == ()
    jt.run(20_000, progress=False, chunks=1)
    pi_p, v_p = first_run(jt.state.pi_params), first_run(jt.state.v_params)
    torso = [k for k in pi_p if k.startswith("torso")]
    assert torso and all(k in v_p for k in torso)
    for k in torso:
        assert_same(pi_p[k], v_p[k])
    curves = jt.curves()
    assert "ActorCritic/loss" in curves and "SimpleTD/loss" in curves
    assert curves["ActorCritic/skipped"].max() == 0
    assert jt.summary()["final_mean_return"] > 35


def test_zoo_cartpole_is_solved_within_500k_steps():
    """The zoo CartPole A2C settings under the jitted engine: the mean of the last 100 episodes
    reaches 475 within 500k steps (16 of 16 seeds did at 129k-239k steps when measured)."""
    jt = JitTrainer("CartPole-v1", preset("CartPole-v1", "a2c"), seed=0)
    jt.run(500_000, progress=False)
    summary = jt.summary()
    assert summary["solved_at_step"] is not None and summary["solved_at_step"] <= 500_000
    assert summary["compile_s"] > 0 and summary["steps_per_s"] > 0


def test_resumed_jit_run_is_bitwise_the_uninterrupted_one(tmp_path):
    whole = JitTrainer("CartPole-v1", small(), seed=2)
    whole.run(1600, progress=False, chunks=2)
    half = JitTrainer("CartPole-v1", small(), seed=2)
    half.run(800, progress=False, chunks=1)
    half.save(tmp_path / "ckpt.pkl")
    resumed = JitTrainer.load(tmp_path / "ckpt.pkl")
    resumed.run(1600, progress=False, chunks=1)
    assert resumed.env_steps == whole.env_steps == 1600
    assert_same(resumed.state, whole.state)
    assert_same(resumed.curves(), whole.curves())


def test_ppo_on_box_actions_runs_under_jit():
    """Pendulum (a squashed Gaussian), PPO with shuffled minibatch epochs: finite and moving."""
    config = small("Pendulum-v1", "ppo", n_steps=32, batch_size=32, n_epochs=2)
    jt = JitTrainer("Pendulum-v1", config, seed=0)
    before = first_run(jt.state.pi_params)
    jt.run(512, progress=False, chunks=2)       # 128 steps per env: no 200-step episode ended
    assert jt.summary()["final_mean_return"] is None
    jt.run(1024, progress=False, chunks=2)      # the same chunk length: no second compilation
    assert len(jt._compiled) == 1
    assert jt.summary()["final_mean_return"] < 0
    after = first_run(jt.state.pi_params)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(after))
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before),
                                                        jax.tree.leaves(after)))
    assert jt.summary()["solved_at_step"] is None  # Pendulum has no reward threshold


@pytest.mark.parametrize("env_id", JAX_NATIVE_ENVS)
def test_jax_native_envs_have_gymnasium_spaces(env_id):
    import gymnasium
    import gymnax

    env, params = gymnax.make(env_id)
    ref = gymnasium.make(env_id)
    assert tuple(env.observation_space(params).shape) == ref.observation_space.shape
    space = env.action_space(params)
    if isinstance(ref.action_space, gymnasium.spaces.Discrete):
        assert int(space.n) == int(ref.action_space.n)
    else:
        assert tuple(space.shape) == ref.action_space.shape
    ref.close()


TWO_DEVICES = textwrap.dedent(r"""
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import json, math, re, jax, numpy as np
    from a2c_jax.training import preset
    from a2c_jax.training._jit import JitTrainer, EngineError
    assert len(jax.devices()) == 2, jax.devices()
    out = {}
    for algo, changes in [("a2c", {}), ("ppo", {"n_steps": 8, "batch_size": 16, "n_epochs": 2})]:
        config = preset("CartPole-v1", algo).replace(num_envs=4, hidden=(16,), **changes)
        one = JitTrainer("CartPole-v1", config, seed=1, devices=jax.devices()[:1])
        two = JitTrainer("CartPole-v1", config, seed=1, devices=jax.devices())
        for t in (one, two):
            t.run(20 * config.n_steps * config.num_envs, progress=False, chunks=2)
        a, b = jax.tree.leaves(one.state.pi_params), jax.tree.leaves(two.state.pi_params)
        out[algo] = {
            "max_abs_diff": max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
                                for x, y in zip(a, b)),
            "max_abs": max(float(np.max(np.abs(np.asarray(x)))) for x in a),
            "obs_devices": len(two.state.obs.sharding.device_set),
            "obs_shard": list(two.state.obs.addressable_shards[0].data.shape),
            "params_devices": len(jax.tree.leaves(two.state.pi_params)[0].sharding.device_set),
            "episodes": [int(one.state.episodes[0]), int(two.state.episodes[0])],
        }
        # the traffic between devices in the compiled program: no rollout moves
        hlo = next(iter(two._compiled.values())).as_text()
        moved = [math.prod(int(d) for d in m.group(1).split(",") if d)
                 for m in re.finditer(r"= \w+\[([\d,]*)\][^ ]* (?:all-gather|all-to-all)\(", hlo)]
        out[algo]["largest_gathered"] = max(moved, default=0)
        out[algo]["rollout_obs"] = config.n_steps * config.num_envs * 4
        out[algo]["all_reduce"] = len(re.findall(r" all-reduce\(", hlo))
    try:
        JitTrainer("CartPole-v1", preset("CartPole-v1", "a2c").replace(num_envs=3))
    except EngineError as err:
        out["error"] = str(err)
    print("RESULT " + json.dumps(out))
""")


def test_two_devices_give_the_parameters_of_one_device():
    """Envs sharded over two (forced host) CPU devices, gradients averaged by the partitioner:
    the same parameters as one device running the same global batch, to float tolerance."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", TWO_DEVICES], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    for algo in ("a2c", "ppo"):
        r = out[algo]
        assert r["obs_devices"] == 2 and r["obs_shard"] == [1, 2, 4]  # [runs, envs/2, obs]
        assert r["params_devices"] == 2                                # replicated
        assert r["episodes"][0] == r["episodes"][1] > 0
        assert r["max_abs_diff"] <= 1e-5 * max(1.0, r["max_abs"]), r
        # nothing of a rollout's size moves between devices (on JAX 0.10.2 only per-env episode
        # counters, 4 elements, are gathered); the gradients are all-reduced
        assert r["largest_gathered"] < r["rollout_obs"] // 2 and r["all_reduce"] > 0, r
    assert "num_envs (3) must be a multiple of the number of devices (2)" in out["error"]


# ---- the command line ------------------------------------------------------------------------------

def test_cli_jit_trains_many_seeds_resumes_and_evaluates(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--env", "CartPole-v1", "--engine", "jit", "--num-seeds", "2", "--steps",
            "2000", "--num-envs", "4", "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"] == "jit" and summary["num_seeds"] == 2
    assert summary["env_steps"] >= 2000 and summary["env_steps_all_runs"] == 2 * summary["env_steps"]
    assert summary["compile_s"] > 0 and [r["seed"] for r in summary["runs"]] == [0, 1]
    for key in ("env", "algo", "engine", "seed", "env_steps", "wall_s", "steps_per_s",
                "solved_at_step", "final_mean_return", "eval_mean_return"):  # API.md's minimum
        assert key in summary
    assert summary["solved_at_step"] == summary["runs"][0]["solved_at_step"]
    assert np.isfinite(summary["eval_mean_return"])
    assert (out / "learning_curve.png").stat().st_size > 0
    for seed in (0, 1):  # one TensorBoard run per seed
        assert any((out / "tensorboard" / f"seed_{seed}").glob("events.out.tfevents.*"))
    assert cli.main([("4000" if a == "2000" else a) for a in argv] + ["--resume"]) == 0
    assert json.loads((out / "summary.json").read_text())["env_steps"] >= 4000
    assert cli.main(["eval", str(out), "--episodes", "1"]) == 0
    assert "--engine jit, seed 0" in capsys.readouterr().out


def test_cli_jit_shared_backbone_trains_and_resumes(tmp_path):
    """`train --engine jit --shared-backbone`: a run started (0 steps, nothing to compile) and
    resumed without the flag keeps the layout, trains, writes summary.json, and its checkpoint
    holds one torso in both networks."""
    out = tmp_path / "shared"
    argv = ["train", "--env", "CartPole-v1", "--engine", "jit", "--num-envs", "4", "--out",
            str(out), "--no-progress"]
    assert cli.main(argv + ["--steps", "0", "--shared-backbone"]) == 0
    assert json.loads((out / "summary.json").read_text())["config"]["shared_backbone"] is True
    assert cli.main(argv + ["--steps", "400", "--resume"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["shared_backbone"] is True and summary["env_steps"] >= 400
    assert np.isfinite(summary["eval_mean_return"])
    state = load_checkpoint(out / "checkpoint")["state"]  # EngineState's fields as a dict
    assert set(state) < set(EngineState._fields)
    pi_p, v_p = first_run(state["pi_params"]), first_run(state["v_params"])
    torso = [k for k in pi_p if k.startswith("torso")]
    assert torso and "v_opt" not in state  # one optimizer state, in pi_opt (v_opt holds nothing)
    assert_same({k: pi_p[k] for k in torso}, {k: v_p[k] for k in torso})


def test_cli_jit_zero_steps_writes_a_summary(tmp_path):
    """--steps 0: nothing trained or compiled, yet a summary, a plot and a checkpoint."""
    out = tmp_path / "zero"
    assert cli.main(["train", "--env", "CartPole-v1", "--engine", "jit", "--steps", "0", "--out",
                     str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_steps"] == 0 and summary["compile_s"] is None
    assert summary["final_mean_return"] is None and summary["solved_at_step"] is None
    assert (out / "checkpoint").is_dir() and (out / "learning_curve.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["train", "--env", "LunarLander-v3", "--engine", "jit"],
     "--engine jit needs a JAX-native env; LunarLander-v3 has none (these do: CartPole-v1, "
     "Acrobot-v1, Pendulum-v1"),
    (["train", "--env", "CartPole-v1", "--num-seeds", "2"], "--num-seeds needs --engine jit"),
    (["train", "--env", "CartPole-v1", "--engine", "jit", "--num-seeds", "0"],
     "--num-seeds must be >= 1"),
    (["train", "--env", "CartPole-v1", "--engine", "jit", "--async-envs"],
     "--async-envs is for --engine loop"),
    (["train", "--env", "CartPole-v1", "--engine", "jit", "--devices", "99"],
     "--devices must be between 1 and the 1 device(s) JAX sees (cpu), got 99"),
    (["train", "--env", "CartPole-v1", "--devices", "1"], "--devices needs --engine jit"),
])
def test_cli_jit_bad_input_is_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("a2c-jax: error:") and message in err[0]


def test_cli_resume_refuses_contradicting_options_and_the_other_engine(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--env", "CartPole-v1", "--steps", "400", "--num-envs", "4", "--out", str(out),
            "--no-progress"]
    assert cli.main(base + ["--engine", "jit"]) == 0
    capsys.readouterr()
    assert cli.main(base + ["--engine", "jit", "--resume", "--seed", "9"]) == 2
    assert cli.main(base + ["--engine", "jit", "--resume", "--num-seeds", "3"]) == 2
    assert cli.main(base + ["--resume"]) == 2           # the loop engine on a jit checkpoint
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(ln.startswith("a2c-jax: error:") for ln in err)
    assert "was trained with --seed 0; drop --seed 9" in err[0]
    assert "was trained with --num-seeds 1; drop --num-seeds 3" in err[1]
    assert "written by --engine jit" in err[2]


def test_run_refuses_more_vector_steps_than_the_device_counters_hold():
    jt = JitTrainer("CartPole-v1", small(), seed=0)
    with pytest.raises(EngineError, match="2\\*\\*31"):
        jt.run(2**31 * 4, progress=False)


def test_check_jax_native_raises_for_other_envs():
    with pytest.raises(EngineError, match="MountainCarContinuous-v0"):
        check_jax_native("Hopper-v5")


@pytest.mark.parametrize("engine", ["loop", "jit"])
def test_cli_ctrl_c_saves_a_checkpoint_that_resumes(engine, tmp_path, monkeypatch, capsys):
    """Ctrl-C during training (here: raised from the first progress callback): exit status 130,
    a whole checkpoint, and --resume continues from it to the requested steps."""
    from a2c_jax.training import _jit, _trainer

    cls = _jit.JitTrainer if engine == "jit" else _trainer.Trainer
    hook = "on_report"
    real_run = cls.run

    def interrupted_run(self, total_steps, *args, **kwargs):
        callback = kwargs[hook]

        def once(tr, *a):
            callback(tr, *a)
            raise KeyboardInterrupt

        kwargs[hook] = once
        return real_run(self, total_steps, *args, **kwargs)

    out = tmp_path / engine
    argv = ["train", "--env", "CartPole-v1", "--engine", engine, "--steps", "800", "--num-envs",
            "4", "--out", str(out), "--no-progress"]
    monkeypatch.setattr(cls, "run", interrupted_run)
    assert cli.main(argv) == 130
    assert "checkpoint saved" in capsys.readouterr().err
    saved = cls.load(out / "checkpoint")
    assert 0 < saved.env_steps < 800
    monkeypatch.setattr(cls, "run", real_run)
    assert cli.main(argv + ["--resume"]) == 0
    assert json.loads((out / "summary.json").read_text())["env_steps"] >= 800
