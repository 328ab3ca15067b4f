"""Sweeps in one compiled program (``--engine jit --sweep``): run for run the configs trained
alone, the refusals' one-line messages, summary.json's runs, the table's interval, resumption."""

import json
import math

import jax
import numpy as np
import pytest
from scipy import stats

from a2c_jax import cli
from a2c_jax.training import preset
from a2c_jax.training._jit import JitTrainer
from a2c_jax.training._sweep import (
    SWEEPABLE,
    Sweep,
    SweepError,
    check_resumed,
    interval,
    parse_sweep,
    sweep_table,
)
from a2c_jax.utils import CheckpointError

# 2 x 1 configs: ent_coef is a traced regularizer weight in either program, learning_rate an
# injected optimizer hyperparameter in the sweep and a constant alone
GRID = {"ent_coef": [0.01, 0.05], "learning_rate": [3e-3]}
UPDATES = 3


def tiny(**changes):
    return preset("CartPole-v1", "a2c").replace(num_envs=2, n_steps=4, hidden=(8,), **changes)


@pytest.fixture(scope="module")
def swept():
    """The 2x1 grid x 2 seeds in one program, trained for a few updates."""
    tr = JitTrainer("CartPole-v1", tiny(), seed=3, num_seeds=2, sweep=Sweep.from_grid(GRID))
    tr.run(UPDATES * tr.steps_per_update, progress=False, chunks=1)
    return tr


def test_each_run_of_a_sweep_is_its_config_trained_alone(swept):
    """Run r = config r // 2 with seed 3 + r % 2: bitwise the plain program (constants, 2 seeds)
    of that config, whose entropy weight (traced there too) is set to the config's."""
    assert swept.num_runs == 4 and [swept.run_seed(r) for r in range(4)] == [3, 4, 3, 4]
    alone = JitTrainer("CartPole-v1", tiny(learning_rate=3e-3, ent_coef=0.01), seed=3,
                       num_seeds=2)
    assert alone.learner.traced == () and "config" not in alone._hparams()
    chunk = alone._compiled_chunk(UPDATES)
    for c, beta in enumerate(GRID["ent_coef"]):
        alone.pg.regularizer.beta = beta
        state, _ = chunk(alone._init_state(), alone._hparams())
        for k in range(2):
            assert swept.run_config(2 * c + k) == {"ent_coef": beta, "learning_rate": 3e-3}
            for a, b in zip(jax.tree.leaves(swept.params(2 * c + k)),
                            jax.tree.leaves((state.pi_params, state.v_params))):
                np.testing.assert_array_equal(a, np.asarray(b)[k])
    # the two entropy weights give different runs of the same seed
    assert not np.array_equal(jax.tree.leaves(swept.params(0))[0],
                              jax.tree.leaves(swept.params(2))[0])


def test_summary_runs_name_config_and_seed(swept):
    s = swept.summary()
    assert s["num_runs"] == 4 and s["num_seeds"] == 2
    assert s["sweep"] == {"grid": GRID, "configs": 2, "seeds_per_config": 2}
    assert [(r["config"], r["seed"]) for r in s["runs"]] == [
        ({"ent_coef": beta, "learning_rate": 3e-3}, seed)
        for beta in GRID["ent_coef"] for seed in (3, 4)]
    assert s["env_steps_all_runs"] == 4 * s["env_steps"]
    for r in s["runs"]:
        assert {"solved_at_step", "final_mean_return", "episodes"} <= r.keys()


def test_the_run_writes_every_runs_results_the_table_and_the_plots(swept, tmp_path, capsys):
    """What `a2c-jax train --sweep` writes after training (the driver's end of a run)."""
    from a2c_jax.training._driver import _finish

    assert _finish(swept, tmp_path, (0, 0.0, 0.0), 0.0, eval_episodes=1) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert list(s["sweep"]["grid"]) == ["ent_coef", "learning_rate"]   # the grid's order
    for r in s["runs"]:
        assert set(r) == {"config", "seed", "solved_at_step", "final_mean_return", "episodes",
                          "eval_mean_return"}
        assert r["eval_mean_return"] > 0
    assert s["eval_mean_return"] == s["runs"][0]["eval_mean_return"]
    table = (tmp_path / "sweep.md").read_text()
    assert table == sweep_table(s)
    assert "| ent_coef | learning_rate | seeds |" in table and table.count("\n| 0.0") == 2
    out = capsys.readouterr().out
    assert table.strip() in out
    assert "sweep of 2 config(s) x 2 seed(s) = 4 run(s)" in out.splitlines()[-1]
    for png in ("sweep.png", "learning_curve.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_checkpoint_keeps_the_grid_and_resumes_bitwise(swept, tmp_path):
    swept.save(tmp_path / "ckpt")
    back = JitTrainer.load(tmp_path / "ckpt")
    assert back.sweep == swept.sweep and back.num_runs == 4
    for a, b in zip(jax.tree.leaves(back.state), jax.tree.leaves(swept.state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # --resume with another grid is refused, the same grid (or none) accepted
    check_resumed(["ent_coef=0.01,0.05", "learning_rate=3e-3"], back.sweep, back.config, "ck")
    check_resumed([], back.sweep, back.config, "ck")
    with pytest.raises(SweepError, match="^ck was trained with --sweep ent_coef=0.01,0.05 "
                                         "--sweep learning_rate=0.003; drop --sweep to resume"):
        check_resumed(["learning_rate=1e-3"], back.sweep, back.config, "ck")
    with pytest.raises(SweepError, match="^ck was trained without --sweep; drop --sweep"):
        check_resumed(["learning_rate=1e-3"], None, back.config, "ck")


def test_eval_and_export_take_any_run_of_a_sweep(swept, tmp_path, capsys):
    """--run K names run K of configs x seeds (here 4 runs: more than --num-seeds 2): its seed's
    evaluation episodes, its parameters in the exported policy."""
    import a2c_jax
    from a2c_jax.training._driver import eval_seed
    from a2c_jax.utils import evaluate_greedy

    swept.save(tmp_path / "run" / "checkpoint")
    assert cli.main(["eval", str(tmp_path / "run"), "--episodes", "1", "--run", "3"]) == 0
    expected = evaluate_greedy(swept.policy(3), "CartPole-v1", 1, first_seed=eval_seed(4))
    assert capsys.readouterr().out == (f"CartPole-v1 (--engine jit, run 3, seed 4): mean greedy "
                                       f"return over 1 episodes: {expected:.2f}\n")
    assert cli.main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "p"),
                     "--run", "3"]) == 0
    assert "seed 4," in capsys.readouterr().out
    loaded = a2c_jax.load_policy(tmp_path / "p")
    for a, b in zip(jax.tree.leaves(loaded.params), jax.tree.leaves(swept.params(3)[0])):
        np.testing.assert_array_equal(np.asarray(a), b)
    assert cli.main(["eval", str(tmp_path / "run"), "--run", "4"]) == 2
    assert "--run must be between 0 and 3 (the checkpoint holds 4 run(s)), got 4" in \
        capsys.readouterr().err


def test_a_damaged_grid_in_a_checkpoint_is_refused(swept, tmp_path):
    from a2c_jax.utils import load_checkpoint, save_checkpoint

    swept.save(tmp_path / "ckpt")
    st = dict(load_checkpoint(tmp_path / "ckpt"))
    st["sweep"] = [["n_steps", [4, 8]]]
    save_checkpoint(tmp_path / "bad", st)
    with pytest.raises(CheckpointError, match="its 'sweep' entry is not a grid .n_steps changes"):
        JitTrainer.load(tmp_path / "bad")


def test_interval_is_students_t():
    x = [101.5, 230.0, 187.25, 420.0]
    mean, half, n = interval(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert n == 4 and mean == pytest.approx(np.mean(x))
    assert half == pytest.approx((hi - lo) / 2, rel=1e-12)
    # by hand: t_{0.975, 3} = 3.182446305284263
    assert half == pytest.approx(3.182446305284263 * np.std(x, ddof=1) / 2, rel=1e-12)
    assert interval([None, 5.0, float("nan")]) == (5.0, None, 1)
    assert interval([]) == (None, None, 0)


def test_table_rows_are_configs_with_the_interval():
    runs = [{"config": {"learning_rate": lr}, "seed": s, "solved_at_step": None,
             "final_mean_return": f, "eval_mean_return": e}
            for lr, (fs, es) in ((1e-3, ([10.0, 20.0, 60.0], [9.0, 9.0, 9.0])),
                                 (3e-4, ([5.0, None, 7.0], [1.0, 2.0, 3.0])))
            for s, f, e in zip(range(3), fs, es)]
    runs[0]["solved_at_step"] = 1000
    summary = {"env": "CartPole-v1", "algo": "a2c", "num_seeds": 3, "env_steps": 4000,
               "config": {"eval_episodes": 10}, "runs": runs,
               "sweep": {"grid": {"learning_rate": [1e-3, 3e-4]}}}
    table = sweep_table(summary)
    half = stats.t.ppf(0.975, 2) * np.std([10, 20, 60], ddof=1) / math.sqrt(3)
    half2 = stats.t.ppf(0.975, 1) * np.std([5, 7], ddof=1) / math.sqrt(2)
    assert f"| 0.001 | 3 | 30.0 ± {half:.1f} | 9.0 ± 0.0 | 1/3 |" in table
    assert f"| 0.0003 | 3 | 6.0 ± {half2:.1f} | 2.0 ± 2.5 | 0/3 |" in table
    assert "95% Student-t interval" in table


@pytest.mark.parametrize("argv, message", [
    (["--sweep", "n_steps=4,8"], "--sweep n_steps: n_steps changes the shapes of the compiled "
     "program; only traced hyperparameters can be swept: " + ", ".join(SWEEPABLE)),
    (["--sweep", "optimizer=adam"], "--sweep optimizer: optimizer changes the compiled program "
     "(another optimizer and its state); only traced hyperparameters can be swept: "
     + ", ".join(SWEEPABLE)),
    (["--sweep", "learnin_rate=1e-3"], "--sweep learnin_rate: unknown TrainConfig key "
     "'learnin_rate'; did you mean learning_rate? (sweepable: " + ", ".join(SWEEPABLE) + ")"),
    (["--sweep", "gamma=0.9,abc"], "--sweep gamma: gamma must be a number between 0 and 1, "
     "got 'abc'"),
    (["--sweep", "gamma=0.9,1.5"], "--sweep gamma: gamma must be between 0 and 1, got 1.5"),
    (["--sweep", "gamma=0.9", "--sweep", "gamma=0.99"], "--sweep gamma: gamma is given twice; "
     "give each key once, its values comma-separated"),
    (["--sweep", "gamma="], "--sweep gamma: gamma has no values (give gamma=V1,V2,...)"),
    (["--sweep", "gamma=0.9,0.9"], "--sweep gamma: gamma lists 0.9 twice"),
    (["--sweep", "gamma"], "--sweep gamma: 'gamma' is not KEY=V1,V2,..."),
    (["--sweep", "clip_epsilon=0.1,0.2"], "--sweep clip_epsilon: clip_epsilon is PPO's; algo a2c "
     "does not use it"),
    (["--sweep", "gamma=0.9", "--set", "gamma=0.95"], "--sweep gamma: --set gives gamma too; "
     "give its values in --sweep only"),
    (["--sweep", "gamma=0.9", "--engine", "loop"], "--sweep needs --engine jit (the loop engine "
     "trains one run at a time)"),
])
def test_refusals_are_one_line(argv, message, tmp_path, capsys):
    base = ["train", "--env", "CartPole-v1", "--engine", "jit", "--out", str(tmp_path / "o"),
            "--no-progress"]
    assert cli.main(base + argv) == 2
    err = capsys.readouterr().err
    assert err == f"a2c-jax: error: {message}\n"


def test_parse_keeps_order_and_the_grid_is_the_product():
    sw = parse_sweep(["learning_rate=1e-3, 3e-4", "gae_lambda=0.9,0.95,1"])
    assert sw.keys == ("learning_rate", "gae_lambda") and len(sw) == 6
    assert sw.configs[1] == {"learning_rate": 1e-3, "gae_lambda": 0.95}
    assert sw.label(3) == "learning_rate=0.0003,gae_lambda=0.9"
    assert list(sw.run_values(2)["gae_lambda"]) == pytest.approx([0.9, 0.9, 0.95, 0.95, 1, 1] * 2)
    assert Sweep.from_data(json.loads(json.dumps(sw.to_data(), sort_keys=True))) == sw


def test_a_gamma_sweep_normalises_each_runs_rewards_with_its_gamma():
    """With normalize_reward the return normaliser discounts with each run's swept gamma: run r's
    return statistics are those of its config trained alone."""
    cfg = tiny(normalize_reward=True)
    tr = JitTrainer("CartPole-v1", cfg, seed=3, sweep=Sweep.from_grid({"gamma": [0.9, 0.99]}))
    tr.run(2 * tr.steps_per_update, progress=False, chunks=1)
    for run, gamma in enumerate((0.9, 0.99)):
        alone = JitTrainer("CartPole-v1", cfg.replace(gamma=gamma), seed=3)
        alone.run(2 * alone.steps_per_update, progress=False, chunks=1)
        for a, b in zip(jax.tree.leaves(tr.state.ret_stats), jax.tree.leaves(alone.state.ret_stats)):
            np.testing.assert_allclose(np.asarray(a)[run], np.asarray(b)[0], rtol=1e-6)
    assert not np.allclose(np.asarray(tr.state.ret_stats.var)[0],
                           np.asarray(tr.state.ret_stats.var)[1])
