"""The benchmark scripts run end to end, and the coax A2C recipe learns CartPole-v1."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED_RECIPE = ROOT.parent / "shared" / "anchors" / "seed_recipe.py"
ENV = {**os.environ, "JAX_PLATFORMS": "cpu"}


def _run(*args, timeout=300):
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=ENV, timeout=timeout,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def _result(stdout):
    line = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def test_recipe_script_runs(tmp_path):
    """benchmarks/recipe.py trains a few hundred steps, writes its PNG and JSON summary."""
    res = _result(_run("benchmarks/recipe.py", "--seeds", "0", "--max-steps", "600",
                       "--out", tmp_path, "--no-progress"))
    assert res[0]["env_steps"] == 600
    assert (tmp_path / "recipe_vanilla.png").stat().st_size > 0
    assert json.loads((tmp_path / "recipe_vanilla.json").read_text())[0]["seed"] == 0


def test_microbench_quick(tmp_path):
    """benchmarks/microbench.py --quick measures every call and writes JSON."""
    _run("benchmarks/microbench.py", "--quick", "--json", tmp_path / "mb.json")
    assert (tmp_path / "mb.json").stat().st_size > 0


@pytest.mark.skipif(not SEED_RECIPE.exists(), reason="shared/anchors/seed_recipe.py not beside the repo")
def test_seed_recipe_runs_unchanged_with_a2c_jax():
    """The unchanged coax recipe script runs with `--lib a2c_jax` (import a2c_jax as coax)."""
    res = _result(_run(SEED_RECIPE, "--lib", "a2c_jax", "--seed", "0", "--max-steps", "600",
                       "--quiet"))
    assert res["lib"] == "a2c_jax" and res["env_steps"] == 600 and res["updates"] > 0


def _load_recipe():
    spec = importlib.util.spec_from_file_location("recipe", ROOT / "benchmarks" / "recipe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recipe_learns_cartpole():
    """The recipe, with the library's defaults (coax's clipped TD error), reaches a 20-episode
    average of 195 within 50k steps in one of seeds 0, 1, 2 (tried in that order).

    The threshold is CartPole-v0's published 'solved' bar. The measured rate is 19 of 20 seeds
    (`benchmarks/results/recipe_seeds_100000_before_coax_td.json`, row "recipe.py: coax
    semantics", measured before these semantics became the defaults): seed 0 is the one that
    collapses (best 22 there, 21.6 on this session's AMD machine), and per-seed curves change
    with the CPU model, so one fixed seed would test the machine; at that rate all three fail
    together with probability about 1e-4.
    """
    recipe = _load_recipe()
    results = []
    for seed in (0, 1, 2):
        results.append(recipe.run(seed=seed, max_steps=50_000, progress=False))
        if results[-1]["best_avg20"] >= 195:
            break
    assert results[-1]["best_avg20"] >= 195, [
        {k: r[k] for k in ("seed", "best_avg20", "step_avg20_195")} for r in results]


def test_pendulum_ppo_script_runs(tmp_path):
    """benchmarks/pendulum_ppo.py (PPOClip, Box actions) runs a short budget and plots."""
    res = _result(_run("benchmarks/pendulum_ppo.py", "--max-steps", "1200", "--rollout", "400",
                       "--epochs", "2", "--eval-every", "600", "--out", tmp_path))
    assert res[0]["env_steps"] == 1200 and np.isfinite(res[0]["final_eval"])
    assert (tmp_path / "pendulum_ppo.png").stat().st_size > 0


def test_recipe_script_variants_run(tmp_path):
    """recipe.py's variant flags (the MSE loss, the truncation-aware tracer, an entropy bonus) run
    and are recorded in the summary."""
    res = _result(_run("benchmarks/recipe.py", "--seeds", "1", "--max-steps", "600", "--out",
                       tmp_path, "--no-progress", "--value-loss", "mse", "--truncation-aware",
                       "--entropy", "0.01"))[0]
    assert (res["value_loss"], res["truncation_aware"], res["entropy"]) == ("mse", True, 0.01)
    assert (tmp_path / "recipe_vanilla_mse_trunc_ent0.01.json").exists()


def _load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recipe_seeds_runs_each_configuration_with_its_flags(tmp_path, monkeypatch):
    """recipe_seeds.py hands each shared-script configuration its own flags (and the seed in its
    place), caching one log per (configuration, seed): the commands are captured, not run."""
    rs = _load_script("recipe_seeds")
    calls = []

    class Done:
        returncode = 0
        stdout = 'RESULT {"env_steps": 50000}\n'
        stderr = ""

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return Done()

    monkeypatch.setattr(rs.subprocess, "run", fake_run)
    script = tmp_path / "seed_recipe.py"  # a stand-in: CI's clone has no ../shared beside it
    script.write_text("")
    monkeypatch.setattr(rs, "SHARED_SCRIPT", script)
    monkeypatch.setattr(rs, "plot", lambda *a: None)
    assert rs.main(["--seeds", "2", "--max-steps", "50000", "--cache", str(tmp_path / "c"),
                    "--out", str(tmp_path / "o"), "--coax-python", "/coax/python"]) == 0
    assert len(calls) == 6
    by_lib = {}
    for cmd in calls:
        args = cmd[2:]
        lib, seed = args[args.index("--lib") + 1], args[args.index("--seed") + 1]
        by_lib.setdefault((cmd[0], lib, "--truncation-aware" in args), []).append(seed)
    assert by_lib == {("/coax/python", "coax", False): ["0", "1"],
                      (sys.executable, "a2c_jax", False): ["0", "1"],
                      (sys.executable, "a2c_jax", True): ["0", "1"]}
    assert len(list((tmp_path / "c" / "50000").glob("*.log"))) == 6

    # --mse-td: the same script under benchmarks/_mse_td.py, both forms
    calls.clear()
    assert rs.main(["--seeds", "1", "--max-steps", "50000", "--cache", str(tmp_path / "m"),
                    "--out", str(tmp_path / "o"), "--mse-td", "--only", "a2c_jax, MSE TD error",
                    "a2c_jax, truncation-aware, MSE TD error"]) == 0
    assert [(Path(c[1]).name, "--truncation-aware" in c) for c in calls] == [
        ("_mse_td.py", False), ("_mse_td.py", True)]

    # --cached-only runs nothing and tabulates each configuration over the seeds it has; a stored
    # record from another CPU is its own row, tested against coax's count on this machine
    (tmp_path / "c" / "50000" / "coax_seed1.log").unlink()
    for k in (2, 3):  # a2c_jax has two more seeds than coax, both reaching 475 at step 400
        log = "".join(f"ep {i} T {20 * i} G 500 avg20 500\n" for i in range(1, 21))
        (tmp_path / "c" / "50000" / f"a2c_jax_seed{k}.log").write_text(
            log + 'RESULT {"env_steps": 50000}\n')
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"cpu": "Other CPU", "steps": 50000, "seeds": {
        "0": {"solved_at_step": 30000}, "1": {"solved_at_step": None},
        "2": {"solved_at_step": 60000}}}))
    calls.clear()
    assert rs.main(["--seeds", "4", "--max-steps", "50000", "--cache", str(tmp_path / "c"),
                    "--out", str(tmp_path / "o"), "--coax-python", "/coax/python",
                    "--cached-only", "--reference", str(ref)]) == 0
    assert calls == []
    table = json.loads((tmp_path / "o" / "recipe_seeds_50000.json").read_text())["configurations"]
    assert table["coax"]["seeds_run"] == [0]
    assert table["a2c_jax"]["seeds_run"] == [0, 1, 2, 3]
    assert table["a2c_jax"]["reach_475_by_50000"] == 2
    assert table["a2c_jax"]["fisher_p_vs_coax"] == pytest.approx(rs.fisher_exact(2, 4, 0, 1),
                                                                 abs=1e-3)
    row = table["coax, stored (Other CPU)"]
    assert (row["reach_475_by_50k"], row["reach_475_by_50000"], row["seeds_run"]) == (1, 2, [0, 1, 2])


def test_recipe_seeds_statistics_against_references(tmp_path):
    """benchmarks/recipe_seeds.py's helpers: the Clopper-Pearson interval against scipy's beta
    quantiles, P(2 of 3) against enumeration, first_reach against a brute-force scan, Fisher's
    exact test against scipy, the log parser on the shared script's format (refusing a run cut
    short), and the plot."""
    from itertools import product

    from scipy import stats

    rs = _load_script("recipe_seeds")
    for k, n in [(0, 20), (2, 20), (3, 9), (20, 20), (1, 3)]:
        lo, hi = rs.clopper_pearson(k, n)
        ref_lo = 0.0 if k == 0 else stats.beta.ppf(0.025, k, n - k + 1)
        ref_hi = 1.0 if k == n else stats.beta.ppf(0.975, k + 1, n - k)
        np.testing.assert_allclose([lo, hi], [ref_lo, ref_hi], atol=1e-9)
    for p in [0.0, 0.1, 0.5, 0.93]:
        ref = sum(np.prod([p if o else 1 - p for o in outcome])
                  for outcome in product([0, 1], repeat=3) if sum(outcome) >= 2)
        assert rs.two_of_three(p) == pytest.approx(ref)
    for k1, n1, k2, n2 in [(9, 20, 6, 20), (0, 20, 9, 20), (11, 20, 9, 20), (5, 20, 5, 20),
                           (3, 7, 0, 12), (20, 20, 0, 20)]:
        ref = stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue
        assert rs.fisher_exact(k1, n1, k2, n2) == pytest.approx(ref, rel=1e-9)

    rng = np.random.default_rng(0)
    returns = rng.integers(8, 501, size=300).astype(float)
    ends = np.cumsum(returns).astype(int).tolist()
    for threshold in [100, 250, 300, 1000]:
        brute = None
        for i in range(19, len(returns)):
            if sum(returns[i - 19: i + 1]) / 20 >= threshold:
                brute = ends[i]
                break
        assert rs.first_reach(ends, returns.tolist(), threshold) == brute

    log = "ep 1 T 12 G 12 avg20 12.0\nep 2 T 40 G 28 avg20 20.0\nnoise\n"
    ok = log + 'RESULT {"env_steps": 50}\n'
    assert rs.parse_log(ok, 50) == ([12, 40], [12.0, 28.0])
    with pytest.raises(ValueError, match="stopped at 30 env steps"):
        rs.parse_log(log + 'RESULT {"env_steps": 30}\n', 50)
    with pytest.raises(ValueError, match="no RESULT"):
        rs.parse_log(log, 50)

    table = {"a": {"first_step_475": [None, 30_000, 70_000]}, "b": {"first_step_475": [None] * 3}}
    rs.plot(table, 100_000, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0
