"""Shared fixtures: a small CartPole env, tiny name-scoped Haiku functions and numpy references.

The Haiku functions follow the coax A2C recipe (a shared ``torso``, ``v`` and ``pi`` heads, each
name-scoped) but are tiny, so that every forward pass can be recomputed in numpy from the params.
"""

import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# JAX's persistent compilation cache, shared by the test workers and the subprocesses they start:
# many tests compile the same small programs (a CartPole trainer's update, its policy call), and a
# cache hit replaces a compilation (the suite took ~40% less wall time with it). The executable is
# the one XLA compiled for the same program and options, so results do not change; an entry that
# cannot be read is compiled again (JAX warns). Set JAX_COMPILATION_CACHE_DIR to use another
# directory; `make clean` removes this one.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import gymnasium  # noqa: E402
import haiku as hk  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

import a2c_jax  # noqa: E402
from a2c_jax.reward_tracing import TransitionBatch  # noqa: E402

HIDDEN = 8

# deterministic property tests: the same examples on every run, no example database
settings.register_profile("a2c_jax", derandomize=True, database=None, deadline=None)
settings.load_profile("a2c_jax")


# ---- the fast tier: `make test-fast` runs `pytest -m "not slow"` ---------------------------------
# Measured with `pytest -n 2 --durations=0` (December 2026, the 2-core machine, shared with other
# jobs: load average ~8): whole modules whose tests train, run scripts, notebooks or subprocesses,
# and the tests of other modules that took over 4 s there (about 1 s on an idle machine; most
# compile an update). `make test` still runs everything. A test id without brackets covers every
# parametrization; with brackets, just that one. A new test that compiles an updater belongs here.
SLOW_MODULES = {
    "test_coax_examples.py",  # coax's example scripts, run end to end
    "test_docs.py",  # mkdocs build --strict
    "test_donation.py",  # update loops checking donated buffers
    "test_jit_engine.py",  # compiles and trains the fully-jitted engine
    "test_loop_multiprocess.py",  # the loop engine over devices and processes (subprocesses)
    "test_multiprocess_cli.py",  # `a2c-jax train` over two processes (subprocesses)
    "test_multiprocess_jit.py",  # the jit engine over two processes (subprocesses)
    "test_notebooks.py",  # executes every notebook
    "test_one_core.py",  # both engines compiled and compared on the same rollouts
    "test_own_env.py",  # a module:id env trained, resumed, evaluated, exported; a jit run's GIF
    "test_scripts_and_learning.py",  # the benchmark scripts and learning thresholds
    "test_training.py",  # the Trainer and `a2c-jax train` end to end
}
SLOW_TESTS = {
    "test_sweep.py::test_a_gamma_sweep_normalises_each_runs_rewards_with_its_gamma",
    "test_actor_critic.py::test_bad_vf_coef_raises",
    "test_actor_critic.py::test_check_inputs_is_public_and_the_union_is_a_view",
    "test_actor_critic.py::test_default_optimizer_is_seed000s",
    "test_actor_critic.py::test_donates_and_keeps_what_others_hold",
    "test_actor_critic.py::test_hyperparameters_are_traced",
    "test_actor_critic.py::test_matches_seed000_torch_agent",
    "test_actor_critic.py::test_non_finite_step_is_skipped",
    "test_actor_critic.py::test_pure_step_in_a_scan",
    "test_actor_critic.py::test_separate_networks_work_too",
    "test_actor_critic.py::test_shared_module_gets_the_sum_of_both_gradients",
    "test_actor_critic.py::test_shared_module_with_other_dtype_raises",
    "test_actor_critic.py::test_shared_module_with_other_shapes_raises",
    "test_actor_critic.py::test_shared_module_with_other_structure_raises",
    "test_actor_critic.py::test_swapped_or_wrong_kinds_raise",
    "test_actor_critic.py::test_update_metrics_and_both_hold_the_torso",
    "test_actor_critic.py::test_v_takes_the_policys_torso_at_construction",
    "test_cli_errors.py::test_a_subprocess_gets_one_line_and_status_2",
    "test_cli_errors.py::test_damaged_checkpoint_on_the_command_line",
    "test_cli_errors.py::test_every_single_bit_flip_is_refused",
    "test_cli_errors.py::test_format_1_files_without_a_checksum_still_load",
    "test_cli_errors.py::test_nested_missing_or_mismatched_entries_are_refused",
    "test_coax_surface.py::test_composite_observations_reach_func_as_batched_pytrees",
    "test_coax_surface.py::test_copy_deep_is_independent",
    "test_coax_surface.py::test_kl_div_regularizer_errors",
    "test_coax_surface.py::test_kl_div_regularizer_gradient",
    "test_coax_surface.py::test_soft_update_against_numpy",
    "test_coax_surface.py::test_soft_update_errors",
    "test_coax_surface.py::test_soft_update_policy_target_follows",
    "test_coax_surface.py::test_td_error_under_a_value_transform",
    "test_coax_surface.py::test_v_with_value_transform_object",
    "test_core.py::test_pi_batch_shapes",
    "test_core.py::test_pi_box_actions_in_bounds_and_logp_consistent",
    "test_core.py::test_pi_logp_is_exact_log_softmax",
    "test_core.py::test_pi_sample_frequencies",
    "test_core.py::test_pi_seeded_sampling_reproducible",
    "test_core.py::test_setters_convert_float_dtypes_and_refuse_other_kinds",
    "test_core.py::test_v_copy_is_independent",
    "test_core.py::test_v_matches_numpy_forward",
    "test_core.py::test_v_pure_function_jit_and_eager_agree",
    "test_core.py::test_v_value_transform",
    "test_core.py::test_wrong_observation_shape",
    "test_custom_updater.py::test_custom_objective_gradient_matches_reference",
    "test_custom_updater.py::test_custom_value_loss_subclass",
    "test_dispatch_and_flat.py::test_an_optimizer_that_raises_in_the_probe_falls_back",
    "test_dispatch_and_flat.py::test_backends_started_probe_uses_public_config_and_changes_nothing",
    "test_dispatch_and_flat.py::test_cpu_dispatch_choice",
    "test_dispatch_and_flat.py::test_flat_and_leafwise_updates_agree",
    "test_dispatch_and_flat.py::test_flat_only_for_element_wise_optimizers[optimizer0-True]",
    "test_dispatch_and_flat.py::test_flat_only_for_element_wise_optimizers[optimizer2-True]",
    "test_dispatch_and_flat.py::test_flat_only_for_element_wise_optimizers[optimizer3-False]",
    "test_dispatch_and_flat.py::test_flat_only_for_element_wise_optimizers[optimizer4-False]",
    "test_dispatch_and_flat.py::test_flatten_optimizer_false_skips_the_probe",
    "test_dispatch_and_flat.py::test_tree_aware_optimizers_fall_back_and_train",
    "test_gae.py::test_batched_equals_each_column",
    "test_no_recompile.py::test_pi_call_compiles_once",
    "test_no_recompile.py::test_simple_td_update_compiles_once",
    "test_no_recompile.py::test_sync_compiles_once_and_calls_stay_cached",
    "test_no_recompile.py::test_vanilla_pg_update_compiles_once",
    "test_package.py::test_import_has_no_side_effects",
    "test_policy_objectives.py::test_bad_inputs",
    "test_policy_objectives.py::test_batch_fields_with_the_wrong_rows_are_refused_by_every_updater",
    "test_policy_objectives.py::test_entropy_regularizer_gradient",
    "test_policy_objectives.py::test_fused_step_under_user_jit_and_scan",
    "test_policy_objectives.py::test_hyperparameter_change_does_not_recompile",
    "test_policy_objectives.py::test_loss_fn_jit_and_eager_agree",
    "test_policy_objectives.py::test_non_finite_gradient_is_skipped",
    "test_policy_objectives.py::test_ppo_clip_equals_vanilla_pg_at_ratio_one",
    "test_policy_objectives.py::test_ppo_clip_gradient_off_policy",
    "test_policy_objectives.py::test_regularizer_and_action_checks",
    "test_policy_objectives.py::test_vanilla_pg_gradient",
    "test_policy_objectives.py::test_vanilla_pg_update_is_one_sgd_step",
    "test_proba_dists.py::test_categorical_jit_matches_eager",
    "test_proba_dists.py::test_categorical_sample_frequencies",
    "test_proba_dists.py::test_normal_jit_matches_eager",
    "test_proba_dists.py::test_normal_unbounded_formulas",
    "test_proba_dists.py::test_policy_return_logp_is_atom_mass",
    "test_proba_dists.py::test_squashed_cap_frequency_matches_atom_mass",
    "test_proba_dists.py::test_squashed_capped_action_scores_atom_mass",
    "test_proba_dists.py::test_squashed_gradients_finite_at_caps_and_inside",
    "test_proba_dists.py::test_squashed_interior_log_proba_unchanged",
    "test_proba_dists.py::test_squashed_log_proba_is_derivative_of_cdf",
    "test_proba_dists.py::test_squashed_mixed_bounds_log_proba",
    "test_proba_dists.py::test_squashed_samples_in_bounds_and_distributed",
    "test_public_doors.py::test_actor_critic_init_optimizer_state",
    "test_public_doors.py::test_apply_batches_under_vmap",
    "test_public_doors.py::test_fresh_state_in_the_pure_step_equals_update",
    "test_public_doors.py::test_init_reproduces_the_constructor_bitwise[Policy]",
    "test_public_doors.py::test_init_reproduces_the_constructor_bitwise[V]",
    "test_public_doors.py::test_init_under_vmap_over_keys",
    "test_state_dict.py::test_function_layout",
    "test_state_dict.py::test_function_refuses_bad_entries[path0-value0-ValueError-words0]",
    "test_state_dict.py::test_function_refuses_bad_entries[path10-1-ValueError-words10]",
    "test_state_dict.py::test_function_refuses_bad_entries[path2-value2-ValueError-words2]",
    "test_state_dict.py::test_function_refuses_bad_entries[path3-value3-TypeError-words3]",
    "test_state_dict.py::test_function_refuses_bad_entries[path4-value4-TypeError-words4]",
    "test_state_dict.py::test_function_refuses_bad_entries[path5-delete-ValueError-words5]",
    "test_state_dict.py::test_function_refuses_bad_entries[path6-value6-ValueError-words6]",
    "test_state_dict.py::test_function_refuses_bad_entries[path7-value7-TypeError-words7]",
    "test_state_dict.py::test_function_refuses_bad_entries[path9-delete-ValueError-words9]",
    "test_state_dict.py::test_python_scalars_for_scalar_entries",
    "test_state_dict.py::test_round_trip_gives_identical_updates",
    "test_state_dict.py::test_round_trip_of_the_live_dicts_in_place",
    "test_state_dict.py::test_updater_refuses_bad_entries[path0-value0-ValueError-words0]",
    "test_sync.py::test_recipe_loop_with_sync_and_donation",
    "test_sync.py::test_unscoped_heads_with_different_shapes_raise",
    "test_td_learning.py::test_grads_and_metrics_then_apply_equals_update",
    "test_td_learning.py::test_non_finite_reward_skips_update",
    "test_td_learning.py::test_pure_step_under_jit_matches_update",
    "test_td_learning.py::test_sgd_step_matches_numpy_gradient",
    "test_td_learning.py::test_simple_td_rejects_bad_inputs",
    "test_td_learning.py::test_td_error_fn_jit_and_eager_agree",
    "test_td_learning.py::test_td_error_is_minus_b_dloss_dv",
    "test_td_learning.py::test_update_returns_pre_update_td_error",
    "test_td_learning.py::test_v_targ_copy_used_for_target",
    "test_td_learning.py::test_value_loss_metric",
    "test_trace_time_attributes.py::test_policy_objective_regularizer_and_regularizer_f_are_read_only",
    "test_trace_time_attributes.py::test_simple_td_loss_function_and_v_targ_are_read_only",
    "test_trace_time_attributes.py::test_the_read_only_check_comes_before_any_update",
    "test_trace_time_attributes.py::test_traced_hyperparameters_change_the_step_without_recompiling",
    "test_vector_and_rng.py::test_functions_that_draw_random_numbers_get_keys",
}


def _is_slow(item: pytest.Item) -> bool:
    module = item.path.name
    if module in SLOW_MODULES:
        return True
    test = item.nodeid.split("::", 1)[1] if "::" in item.nodeid else ""
    return f"{module}::{test}" in SLOW_TESTS or f"{module}::{test.split('[')[0]}" in SLOW_TESTS


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_slow(item):
            item.add_marker(pytest.mark.slow)


# ---- Haiku functions (coax recipe layout) --------------------------------------------------------


def torso(S, is_training):
    with hk.experimental.name_scope("torso"):
        net = hk.Sequential([hk.Linear(HIDDEN), jax.nn.relu])
    return net(S)


def func_v(S, is_training):
    X = torso(S, is_training)
    with hk.experimental.name_scope("v"):
        value = hk.Sequential([hk.Linear(1), jnp.ravel])
    return value(X)


def func_pi(S, is_training):
    X = torso(S, is_training)
    with hk.experimental.name_scope("pi"):
        logits = hk.Linear(2)
    return {"logits": logits(X)}


def func_pi_box(S, is_training):
    """A Gaussian policy head for a 1-d ``Box`` action (Pendulum)."""
    X = torso(S, is_training)
    with hk.experimental.name_scope("pi"):
        mu = hk.Linear(1)(X)
        logvar = hk.Linear(1, name="logvar")(X)
    return {"mu": mu, "logvar": logvar}


# ---- numpy references of the same networks ------------------------------------------------------


def _np(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def np_torso(params, S):
    p = _np(params)["torso/linear"]
    return np.maximum(np.asarray(S, np.float64) @ p["w"] + p["b"], 0.0)


def np_value(params, S):
    """``func_v`` in float64 numpy: ``[B]``."""
    p = _np(params)["v/linear"]
    return (np_torso(params, S) @ p["w"] + p["b"])[:, 0]


def np_logits(params, S):
    """``func_pi`` in float64 numpy: ``[B, 2]``."""
    p = _np(params)["pi/linear"]
    return np_torso(params, S) @ p["w"] + p["b"]


def np_log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def jnp_logits(params, S):
    """``func_pi`` written directly in jax.numpy (independent of Haiku), for ``jax.grad``."""
    t, h = params["torso/linear"], params["pi/linear"]
    X = jax.nn.relu(jnp.asarray(S, jnp.float32) @ t["w"] + t["b"])
    return X @ h["w"] + h["b"]


def host_copy(tree):
    """A host (numpy) copy of a pytree, safe to keep after the device buffers are donated."""
    return jax.tree.map(lambda x: np.array(x, copy=True), tree)


def assert_bitwise(a, b):
    """``a`` and ``b`` are the same pytree with bitwise-equal leaves (same dtypes and shapes)."""
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape, (x.dtype, x.shape, y.dtype, y.shape)
        assert np.array_equal(x, y), np.max(np.abs(x.astype(np.float64) - y))


def device_copy(tree):
    return jax.tree.map(lambda x: jnp.array(x, copy=True), tree)


def make_batch(
    rng: np.random.Generator,
    batch_size: int,
    obs_dim: int = 4,
    n_actions: int = 2,
    gamma: float = 0.9,
    reward_scale: float = 1.0,
) -> TransitionBatch:
    """A random TransitionBatch of CartPole-shaped transitions (some terminal, some not)."""
    f32 = np.float32
    return TransitionBatch(
        S=rng.normal(size=(batch_size, obs_dim)).astype(f32),
        A=rng.integers(0, n_actions, size=batch_size).astype(np.int32),
        logP=np.log(rng.uniform(0.2, 0.8, size=batch_size)).astype(f32),
        Rn=(reward_scale * rng.normal(size=batch_size)).astype(f32),
        In=np.where(rng.uniform(size=batch_size) < 0.3, 0.0, gamma**2).astype(f32),
        S_next=rng.normal(size=(batch_size, obs_dim)).astype(f32),
        A_next=rng.integers(0, n_actions, size=batch_size).astype(np.int32),
        logP_next=np.log(rng.uniform(0.2, 0.8, size=batch_size)).astype(f32),
        W=rng.uniform(0.5, 1.5, size=batch_size).astype(f32),
        idx=np.arange(batch_size, dtype=np.int32),
    )


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def env():
    e = gymnasium.make("CartPole-v1")
    yield e
    e.close()


@pytest.fixture
def box_env():
    e = gymnasium.make("Pendulum-v1")
    yield e
    e.close()


@pytest.fixture
def v(env):
    return a2c_jax.V(func_v, env, random_seed=1)


@pytest.fixture
def pi(env):
    return a2c_jax.Policy(func_pi, env, random_seed=2)


@pytest.fixture
def pi_box(box_env):
    return a2c_jax.Policy(func_pi_box, box_env, random_seed=3)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def batch(rng):
    return make_batch(rng, 16)


# ---- TensorBoard event files ------------------------------------------------------------------


def read_scalars(path):
    """(tag, step, value) of every scalar in a TensorBoard event file (tested in test_utils_coax)."""
    return a2c_jax.utils.read_event_file(path)
