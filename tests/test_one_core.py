"""One training core: both engines run the same update of a rollout (Learner.update), the loop
engine as one compiled call per rollout; the update agrees with the object API and a numpy GAE;
both engines write the same summary keys, TensorBoard tags and final line."""

import json

import jax
import numpy as np
import pytest

from a2c_jax import cli
from a2c_jax.reward_tracing import TransitionBatch
from a2c_jax.training import JitTrainer, Rollout, Trainer, preset
from a2c_jax.training._driver import final_line
from a2c_jax.utils import read_scalars


def small(algo="a2c", **changes):
    return preset("CartPole-v1", algo).replace(num_envs=4, hidden=(16,), **changes)


def assert_close(a, b, rtol=1e-5, atol=1e-6):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol,
                                                         atol=atol), a, b)


def jit_rollout(jt, T):
    """Run 0's first rollout in the jit engine (episodes cut at 15 steps: terminations and
    truncations), the state before it and the state right after collecting it."""
    jt.env_params = jt.env_params.replace(max_steps_in_episode=15)
    st0 = jax.tree.map(lambda x: x[0], jt.state)
    st1, rollout = jax.jit(lambda s: jax.lax.scan(jt._env_step, s, None, length=T))(st0)
    return st0, st1, Rollout(*(np.asarray(x) for x in rollout), S_next=np.asarray(st1.obs))


@pytest.mark.parametrize("algo, changes", [
    ("a2c", {}),
    ("ppo", {"batch_size": 48, "n_epochs": 2}),   # 4 shuffled minibatches, stratified by env
    ("ppo", {"batch_size": 40, "n_epochs": 2}),   # 4 minibatches from one shuffle of all 192
    ("a2c", {"shared_backbone": True, "ent_coef": 0.01}),  # one torso, ActorCritic's one step
])
def test_both_engines_give_the_same_parameters_on_the_same_rollout_and_key(algo, changes):
    """The jit engine's update inside its compiled scan and the loop engine's one compiled call
    per rollout, given the same rollout and key, end with the same parameters and optimizer
    states, shuffled PPO minibatches included."""
    T = 48
    config = small(algo, n_steps=T, **changes)
    jt = JitTrainer("CartPole-v1", config, seed=3)
    st0, st1, rollout = jit_rollout(jt, T)
    assert rollout.terminated.any() and rollout.truncated.any()
    after, _ = jax.jit(lambda s: jt._update(jt._hparams(), s, None))(st0)

    loop = Trainer("CartPole-v1", config, seed=3)
    # both engines start from the parameters the object API initialises for this seed
    for name in loop.state._fields:
        assert_close(getattr(loop.state, name), getattr(st0, name), rtol=0, atol=0)
    loop._key = st1.key   # the jit engine splits its update key off the key after the rollout
    loop._update(rollout)
    loop.close()
    for name in ("pi_params", "v_params", "pi_opt", "v_opt"):
        assert_close(getattr(after, name), getattr(loop.state, name))


def numpy_gae(r, v, v_next, term, trunc, v_final, gamma, lam):
    """GAE by a backwards Python loop (the seed tutorial's recursion, truncation-aware)."""
    T, E = r.shape
    adv = np.zeros((T, E))
    for e in range(E):
        a = 0.0
        for t in reversed(range(T)):
            nxt = v_next[e] if t == T - 1 else v[t + 1, e]
            if term[t, e]:
                delta, a = r[t, e] - v[t, e], 0.0
            elif trunc[t, e]:
                delta, a = r[t, e] + gamma * v_final[t, e] - v[t, e], 0.0
            else:
                delta = r[t, e] + gamma * nxt - v[t, e]
            a = delta + gamma * lam * a
            adv[t, e] = a
    return adv, adv + v


@pytest.mark.parametrize("algo, changes", [
    ("a2c", {"gae_lambda": 0.9}),
    ("ppo", {"batch_size": 0, "n_epochs": 3, "reward_scale": 0.5}),  # whole-batch epochs
    ("ppo", {"batch_size": 32, "n_epochs": 2, "reward_scale": 0.1}),  # shuffled minibatches
    ("a2c", {"shared_backbone": True, "ent_coef": 0.01}),  # ActorCritic.update on the union
])
def test_the_update_equals_the_object_api_with_a_numpy_gae(algo, changes):
    """Independent reference: advantages by a Python loop (rewards scaled as configured), then the
    stateful object API on each minibatch in order: SimpleTD.update and the policy objective's
    update, or ActorCritic.update with a shared backbone. Shuffled minibatches take their order
    from `minibatches` on an index array with the epoch's key."""
    import jax.numpy as jnp

    from a2c_jax.training import minibatches

    T = 32
    config = small(algo, n_steps=T, **changes)
    jt = JitTrainer("CartPole-v1", config, seed=5)
    _, _, rollout = jit_rollout(jt, T)
    tr = Trainer("CartPole-v1", config, seed=5)
    key = tr._key
    tr._update(rollout)
    import gymnasium

    from a2c_jax.training import build_learner

    # the stateful objects alone, built as the trainer builds them (their own params and states)
    pi, v, td, pg, ac, _ = build_learner(gymnasium.make("CartPole-v1"), config, 5)
    E = config.num_envs
    values = v.batch(np.concatenate([rollout.S.reshape(T * E, -1), rollout.S_next,
                                     rollout.final_S.reshape(T * E, -1)]))
    adv, ret = numpy_gae(rollout.R * config.reward_scale, values[:T * E].reshape(T, E),
                         values[T * E:T * E + E], rollout.terminated, rollout.truncated,
                         values[T * E + E:].reshape(T, E), config.gamma, config.gae_lambda)
    env_major = lambda x: np.swapaxes(x, 0, 1).reshape(T * E, *x.shape[2:])  # noqa: E731
    S, A, logP = env_major(rollout.S), env_major(rollout.A), env_major(rollout.logP)
    batch = TransitionBatch(S=S, A=A, logP=logP, Rn=env_major(ret).astype(np.float32),
                            In=np.zeros(T * E, np.float32), S_next=S, A_next=A, logP_next=logP,
                            W=np.ones(T * E, np.float32), idx=np.arange(T * E, dtype=np.int32))
    advantages = env_major(adv).astype(np.float32)
    # the minibatch orders the update draws: its key split, replayed on an index array
    _, k_mb = jax.random.split(jax.random.split(key)[1])
    size = config.batch_size or T * E
    orders = []
    for k in jax.random.split(k_mb, max(1, config.n_epochs)):
        if size == T * E:
            orders.append([np.arange(T * E)])
        else:
            k_perm = jax.random.split(k)[0]
            idx = jnp.arange(T * E).reshape(E, T)  # env-major, as the update's batch
            orders.append(list(np.asarray(minibatches(idx, k_perm, size))))
    for epoch in orders:
        for order in epoch:
            mb = jax.tree.map(lambda x, o=order: x[o], batch)
            a = advantages[order]
            if config.normalize_advantage:
                a = (a - a.mean()) / (a.std() + 1e-8)
            if ac is not None:
                ac.update(mb, a)
            else:
                td.update(mb)
                pg.update(mb, a)
    assert_close(tr.state.v_params, v.params, rtol=2e-5, atol=2e-6)
    assert_close(tr.state.pi_params, pi.params, rtol=2e-5, atol=2e-6)
    tr.close()


def test_ctrl_c_inside_a_rollout_resumes_bitwise(tmp_path, monkeypatch):
    """A Ctrl-C while the envs step is held until that rollout's update is done: the checkpoint
    saved on the interrupt counts only learned-from steps, and the resumed run ends bitwise like
    the uninterrupted one."""
    import signal

    config = small(n_steps=5)
    whole = Trainer("CartPole-v1", config, seed=2)
    whole.run(200, progress=False)
    first = Trainer("CartPole-v1", config, seed=2)
    step, calls = first.envs.step, []

    def step_then_interrupt(action):
        calls.append(1)
        if len(calls) == 18:  # the 3rd vector step of the 4th rollout
            signal.raise_signal(signal.SIGINT)
        return step(action)

    monkeypatch.setattr(first.envs, "step", step_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        first.run(200, progress=False)
    assert first.env_steps == 4 * 20 and first.updates == 4
    monkeypatch.undo()
    first.save(tmp_path / "c.pkl")
    resumed = Trainer.load(tmp_path / "c.pkl")
    resumed.run(200, progress=False)
    for name in ("pi_params", "v_params", "pi_opt", "v_opt"):
        assert_close(getattr(resumed.state, name), getattr(whole.state, name), rtol=0, atol=0)
    assert resumed.returns == whole.returns
    for t in (whole, first, resumed):
        t.close()


def test_policy_is_a_copy_and_pi_follows_the_run():
    tr = Trainer("CartPole-v1", small(), seed=0)
    frozen = tr.policy(0)
    tr.run(40, progress=False)
    now = tr.pi.params
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(frozen.params),
                                                        jax.tree.leaves(now)))
    assert_close(now, tr.state.pi_params, rtol=0, atol=0)
    tr.close()


def test_the_loop_engine_makes_one_compiled_call_per_rollout_and_never_recompiles():
    """Each rollout's update is one call of one compiled program: counted, and its cache holds one
    entry after rollouts whose hyperparameters (traced) changed in between."""
    tr = Trainer("CartPole-v1", small("ppo", n_steps=8, batch_size=16, n_epochs=2), seed=0)
    calls = []
    learn = tr._learn

    def counted(*args):
        calls.append(1)
        return learn(*args)

    tr._learn = counted
    tr.run(64, progress=False)
    assert tr.updates == 2 and len(calls) == 2
    tr.pg.epsilon = 0.1  # traced: takes effect without a new compilation
    tr.run(128, progress=False)
    assert len(calls) == 4 and learn._cache_size() == 1
    tr.close()


def test_a_traced_hyperparameter_changed_between_rollouts_takes_effect():
    """Changing the entropy bonus after the first rollout changes the next update's result."""
    def run(beta_after):
        tr = Trainer("CartPole-v1", small(ent_coef=0.01), seed=1)
        tr.run(20, progress=False)
        tr.pg.regularizer.beta = beta_after
        tr.run(40, progress=False)
        out = jax.device_get(tr.state.pi_params)
        tr.close()
        return out

    same, changed = run(0.01), run(0.5)
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(same),
                                                        jax.tree.leaves(changed)))


def test_both_engines_write_the_same_summary_keys_tags_and_final_line(tmp_path, capsys):
    """`a2c-jax train` with either engine: the same summary.json keys (with the same per-run
    meaning of env_steps and steps_per_s), the same TensorBoard tags, a final line without a raw
    None or a long float."""
    outs, lines = {}, {}
    for engine in ("loop", "jit"):
        out = tmp_path / engine
        assert cli.main(["train", "--env", "CartPole-v1", "--engine", engine, "--steps", "600",
                         "--num-envs", "4", "--out", str(out), "--no-progress"]) == 0
        lines[engine] = capsys.readouterr().out.strip().splitlines()[-1]
        outs[engine] = json.loads((out / "summary.json").read_text())
    loop, jit = outs["loop"], outs["jit"]
    assert loop.keys() == jit.keys()
    for s in (loop, jit):
        assert s["env_steps"] == 600 and s["env_steps_all_runs"] == 600
        assert s["steps_per_s"] == pytest.approx(s["env_steps"] / s["wall_s"], rel=1e-2)
    tags = {e: set(read_scalars(tmp_path / e / "tensorboard" / "seed_0")) for e in outs}
    assert tags["loop"] == tags["jit"] and "episode/mean100" in tags["loop"]
    for line in lines.values():
        assert "None" not in line and "--engine" in line
        numbers = [tok for tok in line.replace(",", "").split() if tok.replace(".", "").isdigit()]
        assert numbers and not any(len(tok.split(".")[1]) > 2 for tok in numbers if "." in tok)


def test_final_line_for_many_runs_and_no_episodes():
    summary = {"env": "CartPole-v1", "algo": "a2c", "engine": "jit", "num_seeds": 2, "seed": 0,
               "solved_at_step": None, "final_mean_return": None, "eval_mean_return": 9.5,
               "runs": [{"solved_at_step": 1000, "final_mean_return": 480.25},
                        {"solved_at_step": None, "final_mean_return": None}]}
    line = final_line(summary, "out", 2000, 2.0, 3.0)
    assert "solved in 1/2 runs" in line and "480.2" in line and "2,000 steps/s" in line
    assert "None" not in line and "3.0 s of compilation" in line


def test_what_the_compiled_programs_read_is_read_only_or_recompiles():
    """An engine's config is read-only (the compiled update is built from it); new gymnax env
    parameters discard the jit engine's compiled chunks, so the next run uses them."""
    tr = Trainer("CartPole-v1", small(), seed=0)
    with pytest.raises(AttributeError):
        tr.config = small(n_steps=7)
    tr.close()
    jt = JitTrainer("CartPole-v1", small(), seed=0)
    with pytest.raises(AttributeError):
        jt.config = small(n_steps=7)
    jt.run(40, progress=False, chunks=1)
    assert jt._compiled
    jt.env_params = jt.env_params.replace(max_steps_in_episode=3)
    assert not jt._compiled
    jt.run(40 + 4 * 5 * 20, progress=False, chunks=1)  # 20 updates: every episode cut at 3 steps
    ended = jt.curves()["episodes"][0]
    assert ended[-1] - ended[1] >= 4 * 5 * 19 // 3
