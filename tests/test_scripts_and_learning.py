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
    """Seed 0 of the recipe reaches a 20-episode average of 195 within 50k steps.

    The threshold is CartPole-v0's published 'solved' bar; all of seeds 0-8 clear it (README,
    `benchmarks/recipe.py --seeds 0 1 2 3 4 5 6 7 8`), seed 0 with a margin (best 336).
    """
    res = _load_recipe().run(seed=0, max_steps=50_000, progress=False)
    assert res["best_avg20"] >= 195, res


def test_pendulum_ppo_script_runs(tmp_path):
    """benchmarks/pendulum_ppo.py (PPOClip, Box actions) runs a short budget and plots."""
    res = _result(_run("benchmarks/pendulum_ppo.py", "--max-steps", "1200", "--rollout", "400",
                       "--epochs", "2", "--eval-every", "600", "--out", tmp_path))
    assert res[0]["env_steps"] == 1200 and np.isfinite(res[0]["final_eval"])
    assert (tmp_path / "pendulum_ppo.png").stat().st_size > 0
