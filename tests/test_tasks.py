"""Tasks as objects (ccjax.tasks): the default task reproduces the CC computation exactly,
a task without exact hooks takes the generic exact-k sampling path, and a task with some
hooks uses exactly those."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ccjax
from ccjax.measure import direct_loss_per_feature, plan_evaluation
from ccjax.problem import _tasks as tasks_module
from ccjax.problem import batch_loss, default_capacity, forward, init_feature_mlp, matmul, sample_sparse
from ccjax.problem._loss import default_multi_capacity

N, D, BATCH = 8, 3, 64
CURVE = dict(rel_sem=0.03, pilot_samples=64, min_samples=32, chunk_size=256)


@dataclasses.dataclass(frozen=True)
class SquaredReLU(ccjax.Task):
    """A toy task with no exact hooks: labels relu(x)^2 plus the mixing, MSE."""

    def labels(self, x, scaled_mixing):
        return jax.nn.relu(x) ** 2 + matmul(x, scaled_mixing.T)


@dataclasses.dataclass(frozen=True)
class ExactC1Only(ccjax.problem.MixedReLU):
    """The CC task with only its exact c_1: no control variate, bound, sparse or compact path."""

    control_variate_parts = None
    additive_loss = None
    loss_bound_slope = None
    sparse_sse = None
    compact_dense_sse = None
    loss_split = None


def _models(n_models=2, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    params = jax.vmap(lambda k: init_feature_mlp(k, N, D))(jax.random.split(k1, n_models))
    mixing = 0.05 * jax.random.normal(k2, (n_models, N, N))
    return params, mixing


def _first(tree):
    return jax.tree.map(lambda a: a[0], tree)


def test_default_task_is_bitwise_the_cc_computation():
    """batch_loss (both paths, and its gradient) and the exact c_1 equal the pre-task
    formulas written out here, bit for bit."""
    params, mixing = _first(_models())
    batch = sample_sparse(jax.random.key(3), BATCH, N, 0.3, default_capacity(BATCH, N, 0.3))
    x = ccjax.problem.to_dense(batch, BATCH, N)

    def old_dense_loss(params, mixing):
        labels = jax.nn.relu(x) + 1.0 * matmul(x, mixing.T)
        return jnp.sum((forward(params, x) - labels) ** 2) / (BATCH * N)

    old = jax.jit(jax.value_and_grad(old_dense_loss))(params, mixing)
    new = jax.jit(jax.value_and_grad(lambda p, m: batch_loss(p, batch, m, batch_size=BATCH, path="dense")))(
        params, mixing
    )
    assert np.array_equal(old[0], new[0]) and np.array_equal(old[1].w_in, new[1].w_in)
    explicit = jax.jit(lambda p, m: batch_loss(p, batch, m, batch_size=BATCH, task=ccjax.problem.MixedReLU()))(
        params, mixing
    )
    default = jax.jit(lambda p, m: batch_loss(p, batch, m, batch_size=BATCH))(params, mixing)
    assert np.array_equal(explicit, default)  # the default is the CC task, sparse hook included
    unit_sq = ccjax.problem.unit_squared_errors(params, mixing)
    assert np.array_equal(ccjax.measure.one_feature_loss(params, mixing), unit_sq.sum() / (6.0 * N**2))
    assert ccjax.MIXED_RELU.declared_hooks() == tasks_module.HOOKS


def _numpy_loss_per_feature(params, mixing, p, labels, n_rows=200_000, seed=0):
    """Plain Bernoulli-p Monte Carlo of L/p in NumPy float64, independent of ccjax: the
    mean over rows of each row's mean squared error, with its SEM."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n_rows, N)) * (rng.random((n_rows, N)) < p)
    w_in, w_out = (np.asarray(w, np.float64) for w in (params.w_in, params.w_out))
    row_loss = np.mean((np.maximum(x @ w_in, 0) @ w_out - labels(x, np.asarray(mixing, np.float64))) ** 2, axis=1)
    return row_loss.mean() / p, row_loss.std(ddof=1) / np.sqrt(n_rows) / p


def test_task_without_hooks_takes_the_generic_path(monkeypatch):
    """No hook is declared, no CC fast path runs (a spy on the CC unit errors would
    raise), c_1 is estimated, and L(p) agrees with plain Monte Carlo (NumPy, and
    ccjax.direct_loss_per_feature) within the SEMs, but not with the CC labels' L(p)."""
    task = SquaredReLU()
    assert task.declared_hooks() == ()

    def spy(*args):
        raise AssertionError("a CC exact path ran for a task that declares none")

    monkeypatch.setattr(tasks_module, "unit_squared_errors", spy)
    params, mixing = _models(1)
    p = 0.3
    options = CURVE | dict(rel_sem=0.005)
    curve = ccjax.loss_curve(params, mixing, [p], jax.random.key(1), task=task, **options)
    assert curve.samples[1] > 0 and curve.c_sem[0, 1] > 0  # c_1 by Monte Carlo
    assert np.all(curve.samples[1:] > 0) and curve.truncation_bound[0] == 0.0  # no k skipped
    value, sem = curve.loss_per_feature[0, 0], curve.sem[0, 0]
    reference, reference_sem = _numpy_loss_per_feature(
        _first(params), mixing[0], p, lambda x, m: np.maximum(x, 0) ** 2 + x @ m.T
    )
    assert abs(value - reference) < 4 * np.hypot(sem, reference_sem)
    plan = plan_evaluation(p, p, N, min_nonempty=20_000, batch_size=512)
    direct = jax.jit(lambda prm, m: direct_loss_per_feature(prm, m, jax.random.key(2), p, plan, task=task))(
        _first(params), mixing[0]
    )
    assert abs(value - direct.loss_per_feature) < 4 * np.hypot(sem, direct.sem)
    monkeypatch.undo()
    # The CC labels' L(p) is far off at this precision: the task's labels were used.
    cc = ccjax.loss_curve(params, mixing, [p], jax.random.key(1), **options)
    assert abs(cc.loss_per_feature[0, 0] - reference) > 10 * np.hypot(cc.sem[0, 0], reference_sem)
    with pytest.raises(ValueError, match="one_feature"):
        ccjax.measure.one_feature_loss(_first(params), mixing[0], task)


def test_task_with_some_hooks_uses_exactly_those():
    """Only the exact c_1: c_1 is the exact value (0 SEM, no exactly-1 samples), k >= 2
    are plain Monte Carlo with no k skipped, and batch_loss's sparse path is the dense one."""
    task = ExactC1Only()
    assert task.declared_hooks() == ("one_feature",)
    params, mixing = _models()
    p_values = [0.05, 0.5]
    curve = ccjax.loss_curve(params, mixing, p_values, jax.random.key(4), task=task, **CURVE)
    cc = ccjax.loss_curve(params, mixing, p_values, jax.random.key(4), **CURVE)
    assert np.array_equal(curve.c[:, 1], cc.c[:, 1]) and np.all(curve.c_sem[:, 1] == 0.0)
    assert curve.samples[1] == 0 and np.all(curve.samples[2:] > 0) and np.all(curve.truncation_bound == 0.0)
    sem = np.hypot(curve.sem, cc.sem)
    assert np.all(np.abs(curve.loss_per_feature - cc.loss_per_feature) < 4 * sem)

    one, m = _first(params), mixing[0]
    batch = sample_sparse(jax.random.key(5), BATCH, N, 0.3, default_capacity(BATCH, N, 0.3))
    options = dict(batch_size=BATCH, multi_capacity=default_multi_capacity(BATCH, N, 0.3))
    sparse = jax.jit(lambda prm, m: batch_loss(prm, batch, m, path="sparse", task=task, **options))(one, m)
    dense = jax.jit(lambda prm, m: batch_loss(prm, batch, m, path="dense", **options))(one, m)
    assert np.array_equal(sparse, dense)


def test_stale_or_incomplete_hooks_are_refused():
    """Redefining the labels or loss while inheriting exact hooks, or a control variate
    without its known mean, is a TypeError at class creation."""
    with pytest.raises(TypeError, match="inherits"):

        class QuarticMixedReLU(ccjax.problem.MixedReLU):
            def sample_loss(self, prediction, target):
                return jnp.mean((prediction - target) ** 4, axis=-1)

    with pytest.raises(TypeError, match="needs one_feature"):

        class ControlVariateOnly(ExactC1Only):
            one_feature = None
            control_variate_parts = ccjax.problem.MixedReLU.control_variate_parts
            additive_loss = ccjax.problem.MixedReLU.additive_loss


@dataclasses.dataclass(frozen=True)
class GenericMixedReLU(ccjax.Task):
    """The paper's labels and MSE, declared as a new task with no hooks (the generic paths)."""

    def labels(self, x, scaled_mixing):
        return tasks_module.mixed_relu_labels(x, scaled_mixing)


TRAIN = ccjax.TrainConfig(n_features=20, d_mlp=10, batch_size=64, steps=40, log_every=10, p=0.1, scale=0.5)


def test_training_on_a_new_task_with_the_paper_labels_matches_the_default_dense_path():
    """ccjax.sweep(task=...) trains on the task's labels and loss: a hook-free copy of the
    paper's task trains like the default task on the dense path (same batches, the same
    loss up to float summation order), while a different task trains to other weights."""
    axes = {"seed": [0, 1], "scale": [0.0, 1.0]}
    dense = dataclasses.replace(TRAIN, input_path="dense")
    default = ccjax.sweep(dense, axes)
    generic = ccjax.sweep(TRAIN, axes, task=GenericMixedReLU())
    assert generic.task == GenericMixedReLU() and default.task == ccjax.MIXED_RELU
    np.testing.assert_allclose(
        generic.history.train_loss_per_feature, default.history.train_loss_per_feature, rtol=1e-4
    )
    np.testing.assert_allclose(generic.params.w_in, default.params.w_in, atol=1e-5)
    other = ccjax.sweep(TRAIN, axes, task=SquaredReLU())
    assert np.abs(np.asarray(other.params.w_out) - np.asarray(default.params.w_out)).max() > 1e-3


@pytest.fixture(scope="module")
def squared_relu_sweep():
    """Two models trained on the SquaredReLU task (no hooks, no loss split)."""
    return ccjax.sweep(TRAIN, {"seed": [0, 1]}, task=SquaredReLU())


def test_a_task_without_a_loss_split_logs_its_whole_loss_and_is_evaluated_on_its_loss(squared_relu_sweep):
    """History: relu_term is the task's whole loss on the logged batch (close to the
    training loss), mixing_term 0. sweep_curves evaluates on the sweep's task."""
    result = squared_relu_sweep
    history = result.history
    assert np.all(np.asarray(history.mixing_term_per_feature) == 0.0)
    np.testing.assert_allclose(history.relu_term_per_feature[:, -1], history.train_loss_per_feature[:, -1], rtol=0.3)
    key = jax.random.key(7)
    curve = ccjax.sweep_curves(result, [0.1], key=key, **CURVE)
    direct = ccjax.loss_curve(result.params, result.scaled_mixing, [0.1], key, task=SquaredReLU(), **CURVE)
    mse = ccjax.loss_curve(result.params, result.scaled_mixing, [0.1], key, **CURVE)
    np.testing.assert_array_equal(curve.loss_per_feature, direct.loss_per_feature)
    assert not np.allclose(curve.loss_per_feature, mse.loss_per_feature, rtol=1e-3)


def test_train_takes_a_task_and_checkpoints_tell_tasks_apart():
    """ccjax.train(task=...) is the single-model form; a sweep's checkpoint fingerprint
    depends on the task (so --resume never continues another task's run), and the
    default task keeps the fingerprint that sweeps had before tasks existed."""
    one, history = jax.jit(lambda key: ccjax.train(TRAIN, key, task=SquaredReLU()))(jax.random.key(0))
    default, _ = jax.jit(lambda key: ccjax.train(TRAIN, key))(jax.random.key(0))
    assert np.all(np.asarray(history.mixing_term_per_feature) == 0.0)
    assert not np.allclose(one.w_out, default.w_out)
    grid = ccjax.make_grid({"seed": [0, 1]})
    fingerprint = ccjax.engine.sweep_fingerprint
    assert fingerprint(TRAIN, grid) == fingerprint(TRAIN, grid, task=ccjax.MIXED_RELU)
    assert fingerprint(TRAIN, grid, task=SquaredReLU()) != fingerprint(TRAIN, grid)
    assert fingerprint(TRAIN, grid, task=SquaredReLU()) != fingerprint(TRAIN, grid, task=GenericMixedReLU())


def test_sweep_static_takes_tasks_as_a_static_axis():
    stacked, results = ccjax.sweep_static(TRAIN, {"task": [ccjax.MIXED_RELU, SquaredReLU()]}, {"seed": [0, 1]})
    assert stacked["history_train_loss_per_feature"].shape == (2, 2, TRAIN.n_logs)
    assert [result.task for result in results] == [ccjax.MIXED_RELU, SquaredReLU()]


def _functions_taking_a_result() -> set[str]:
    """Every public function of ccjax whose signature takes a :class:`ccjax.SweepResult`."""
    import inspect

    found = set()
    for layer in (ccjax.problem, ccjax.engine, ccjax.measure, ccjax.io, ccjax.cis):
        for name in getattr(layer, "__all__", dir(layer)):
            function = getattr(layer, name)
            if not inspect.isfunction(function):
                continue
            annotations = [parameter.annotation for parameter in inspect.signature(function).parameters.values()]
            if any(annotation is ccjax.SweepResult or annotation == "SweepResult" for annotation in annotations):
                found.add(f"{function.__module__.split('.')[1]}.{name}")
    return found


def test_every_public_evaluation_of_a_result_uses_its_task(squared_relu_sweep):
    """Weights trained on a non-default task are evaluated on that task by every public
    function that takes the result, with no task= (issue 20: evaluation follows the model)."""
    assert _functions_taking_a_result() == {
        "measure.sweep_curves",
        "measure.evaluate_sweep",
        "measure.sweep_arrays",  # packs the arrays of a result; evaluates nothing
        "measure.logged_steps",  # the steps of the history; evaluates nothing
        "measure.fine_tuning_arrays",  # packs two results with a curve their caller evaluated
        "measure.transplant_arrays",  # the same, with the seeds and the scale
        "measure.sigma_sweep_arrays",  # packs a result with an estimate its caller evaluated
        "measure.rank_sweep_measures",  # the paper's labels only: refuses another task (below)
    }
    result = squared_relu_sweep
    key = jax.random.key(3)
    on_task = ccjax.loss_curve(result.params, result.scaled_mixing, [TRAIN.p], key, task=SquaredReLU(), **CURVE)
    on_paper = ccjax.loss_curve(result.params, result.scaled_mixing, [TRAIN.p], key, **CURVE)
    assert not np.allclose(on_task.loss_per_feature, on_paper.loss_per_feature, rtol=1e-3)
    curve = ccjax.sweep_curves(result, [TRAIN.p], key=key, **CURVE)
    np.testing.assert_array_equal(curve.loss_per_feature, on_task.loss_per_feature)
    options = {name: CURVE[name] for name in ("pilot_samples", "min_samples", "chunk_size")}
    estimate = ccjax.evaluate_sweep(result, rel_sem=CURVE["rel_sem"], key=key, **options)
    np.testing.assert_array_equal(estimate.loss_per_feature, on_task.loss_per_feature[:, 0])
    with pytest.raises(ValueError, match="mixed-ReLU labels"):
        ccjax.measure.rank_sweep_measures(result)


def test_search_tasks_are_tasks_with_one_naive_convention():
    """The search tasks are ccjax.Task objects; naive_loss is L (expected loss at p) for
    every task, and naive_loss_per_feature is it divided by p."""
    assert all(isinstance(task, ccjax.Task) for task in ccjax.cis.SEARCH_TASKS.values())
    relu = ccjax.cis.SEARCH_TASKS["relu"]
    for p in (0.01, 0.1):
        assert relu.naive_loss(100, 50, p) == pytest.approx(ccjax.MIXED_RELU.naive_loss(100, 50, p))
        assert ccjax.naive_loss_per_feature(100, 50, p) == pytest.approx(ccjax.MIXED_RELU.naive_loss(100, 50, p) / p)
    assert ccjax.naive_loss_per_feature(100, 50, 0.1, task=relu) == pytest.approx(1 / 12)
    with pytest.raises(ValueError, match="no closed-form naive loss"):
        ccjax.naive_loss_per_feature(100, 50, 0.1, task=ccjax.cis.SEARCH_TASKS["two-step"])


@pytest.mark.parametrize("name", ["and-pairs", "two-step", "relu-discrete"])
def test_sweep_refuses_a_task_it_cannot_train(name):
    """ccjax.sweep trains the reduced MLP on U[-1, 1] inputs; a task with another model
    family, output width or input draw is refused with the reason, not trained wrongly."""
    with pytest.raises(ValueError, match="ccjax.cis.train_models"):
        ccjax.sweep(TRAIN, {"seed": [0]}, task=ccjax.cis.SEARCH_TASKS[name])
