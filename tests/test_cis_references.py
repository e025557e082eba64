"""ccjax.cis's built references, the shared-neuron probe, the tasks with more pairs and a
threshold, and the scaling check's lr choice: each on hand-worked examples at small sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ccjax
from ccjax import cis
from ccjax.cis import _built as built
from ccjax.cis import _search as search

TASKS = cis.SEARCH_TASKS


def _evaluate(task, params, n, d, p, seed=7, batches=16):
    capacity = ccjax.problem.default_capacity(1024, n, p)
    return cis.evaluate_model(task, params, n, d, p, jax.random.key(seed), batches, 1024, capacity)


def test_more_pairs_per_feature_and_the_cap_at_every_pair():
    assert TASKS["and-pairs-8"].n_outputs(100) == 800 and TASKS["and-pairs-32"].n_outputs(100) == 3200
    assert TASKS["and-pairs-32"].n_outputs(50) == 50 * 49 // 2  # 1,600 wanted, 1,225 exist
    pairs = TASKS["and-pairs-32"].pairs(10)
    assert len({tuple(pair) for pair in pairs}) == len(pairs) == 45
    assert len(TASKS["and-pairs"].pairs(4)) == 6  # 8 wanted: every pair


def test_the_threshold_makes_one_and_two_active_features_nonlinear():
    task = TASKS["two-step-threshold"]
    reading = task.reading(8)
    i, j = np.argwhere(reading == 1.0)[0]  # intermediate i feeds output j with +1
    for v in (0.3, 0.5, 0.9):  # one active feature: relu(v - 0.5), not proportional to v
        x = jnp.zeros((1, 8)).at[0, i].set(v)
        np.testing.assert_allclose(task.labels(x)[0, j], max(v - 0.5, 0.0), atol=1e-6)
    assert TASKS["two-step"].labels(jnp.zeros((1, 8)).at[0, i].set(0.3))[0, j] == pytest.approx(0.3)


def test_the_sparse_embedding_model_is_a_sign_gated_linear_map_on_one_feature():
    n, d, k = 12, 6, 2
    w_in = jnp.asarray(built.sparse_embedding(np.random.default_rng(0), n, d, k), jnp.float32)
    assert (w_in.sum(axis=1) == k).all() and set(np.unique(w_in)) == {0.0, 1.0}
    w_out = 1.5 * jnp.linalg.pinv(w_in)
    apply = cis.MODEL_FAMILIES["mlp"].apply
    for v in (0.4, -0.4):
        x = jnp.zeros((1, n)).at[0, 3].set(v)
        expected = max(v, 0.0) * 1.5 * (w_in @ jnp.linalg.pinv(w_in))[3]
        np.testing.assert_allclose(apply({"w_in": w_in, "w_out": w_out}, x)[0], expected, atol=1e-5)


def test_the_naive_construction_scores_the_naive_loss_on_the_same_samples():
    task, n, d, p = TASKS["and-pairs-8"], 10, 5, 0.3
    models, settings = built._and_candidates(task, n, d, p, jax.random.key(0))
    naive = jax.tree.map(jnp.asarray, models[0])
    assert tuple(settings[0]) == (0.0, 1.0)
    result = _evaluate(task, naive, n, d, p)
    np.testing.assert_allclose(result.loss.mean, result.naive_loss.mean, rtol=1e-5)


def test_the_universal_and_reads_a_pair_from_its_shared_neurons():
    task, n, d = TASKS["and-pairs"], 8, 40
    pairs = task.pairs(n)
    params = built.universal_and(pairs, (np.random.default_rng(1).random((n, d)) < 0.5).astype(float), 0.1, 1.0)
    shared = (params["w_in"][pairs[:, 0]] * params["w_in"][pairs[:, 1]]).sum(axis=1)
    assert (shared > 0).all()  # d q² = 10 neurons per pair on average
    i, j = pairs[0]
    x = jnp.zeros((1, n)).at[0, i].set(1.0).at[0, j].set(1.0)  # only pair 0 on
    out = cis.MODEL_FAMILIES["mlp-bias"].apply(jax.tree.map(jnp.asarray, params), x)[0]
    assert out[0] == pytest.approx(1.0, abs=1e-5)
    # every other pair reads the share of its neurons that also read i and j (the construction's interference)
    firing = params["w_in"][i] * params["w_in"][j]
    reading = params["w_in"][pairs[:, 0]] * params["w_in"][pairs[:, 1]]
    np.testing.assert_allclose(out, (reading * firing).sum(axis=1) / reading.sum(axis=1), atol=1e-5)


def test_the_two_layer_semi_nmf_reference_equals_the_one_layer_model():
    task, n, d = TASKS["two-step"], 12, 6
    models, _ = built._semi_nmf_candidates(task, n, d, 0.1, jax.random.key(2))
    one_layer = cis.semi_nmf_reference(task, n, d, jax.random.key(2))
    scale = built.SEMI_NMF_SCALES.index(1.0)
    x = jax.random.uniform(jax.random.key(3), (64, n), minval=-1.0, maxval=1.0)
    two = cis.MODEL_FAMILIES["two-layer"].apply(jax.tree.map(jnp.asarray, models[scale]), x)
    np.testing.assert_allclose(two, cis.MODEL_FAMILIES["mlp"].apply(one_layer, x), atol=1e-4)


@pytest.mark.parametrize("name", ["relu-outlier-l4", "and-pairs", "two-step-threshold"])
def test_the_chosen_built_model_is_the_best_candidate_at_each_p(name):
    task, n, d, ps, key = TASKS[name], 12, 6, np.array([0.05, 0.2]), jax.random.key(5)
    capacity = ccjax.problem.default_capacity(512, n, float(ps.max()))

    def one(params, p):
        return cis.evaluate_model(task, params, n, d, p, jax.random.key(6), 4, 512, capacity).loss.mean

    score = jax.jit(jax.vmap(one))
    chosen, settings = cis.choose_built(task, n, d, ps, key, score)
    for j, p in enumerate(ps):
        models, grid = built.builder(task)(task, n, d, float(p), key)
        losses = score(built.stack(models), np.full(len(models), p))
        np.testing.assert_array_equal(settings[j], grid[int(np.argmin(losses))])
        mine = score({name: value[j : j + 1] for name, value in chosen.items()}, np.array([p]))
        assert float(mine[0]) == pytest.approx(float(losses.min()), rel=1e-5)


def test_shared_partners_and_the_probe_rows():
    w_in = jnp.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, 1.0], [0.0, 0.2, 0.9]])
    np.testing.assert_array_equal(cis.shared_partners(w_in), [1, 0, 3, 2])
    from ccjax.cis import _probe

    rows = _probe.probe_rows(TASKS["relu"], jnp.array([1, 0, 3, 2]), jax.random.key(0), -1.0)
    assert rows.shape == (4 * _probe.PROBE_ROWS, 4)
    assert ((rows != 0).sum(axis=1) == 2).all()
    first = rows[: _probe.PROBE_ROWS]  # feature 0 positive, its partner 1 negative
    assert (first[:, 0] > 0).all() and (first[:, 1] < 0).all()
    assert not _probe.signed_inputs(TASKS["and-pairs"]) and _probe.signed_inputs(TASKS["relu-discrete"])


def test_an_exact_model_has_no_probe_loss_and_the_naive_one_has():
    n = 6
    exact = {"w_in": jnp.eye(n), "w_out": jnp.eye(n)}
    result = cis.probe(TASKS["relu"], exact, n, n // 2, 0.1)
    assert float(result.opposite.mean) == pytest.approx(0.0, abs=1e-9)
    assert float(result.equal.mean) == pytest.approx(0.0, abs=1e-9)
    assert float(result.naive_opposite.mean) > 0 and float(result.naive_equal.mean) > 0  # features 3-5 unserved


def test_the_search_grid_scores_built_references_and_probes_beside_the_trained_models():
    config = ccjax.TrainConfig(mixing="none", scale=0.0, n_features=10, d_mlp=5, batch_size=64, steps=30)
    names = ["relu-outlier-l4", "and-pairs-32", "two-step-threshold"]  # one per builder (every task: test_every_choice)
    traced = {"seed": [0, 1], "p": [0.05, 0.2], "lr": [3e-3]}
    result = cis.search_grid(config, {"task": names}, traced, TASKS, cis.EvalBudget(16, 512))
    assert np.isfinite(result["built_loss"]).all() and np.isfinite(result["initial_train_loss"]).all()
    z = (result["built_loss"] - result["built_fresh_loss"]) / np.hypot(
        result["built_loss_sem"], result["built_fresh_loss_sem"]
    )
    assert np.abs(z).max() < 4  # the built references agree with Monte Carlo on fresh samples
    signed = np.array([not name.startswith("and-pairs") for name in names])
    assert np.isfinite(result["probe_opposite"][signed]).all() and np.isnan(result["probe_opposite"][~signed]).all()
    assert np.isfinite(result["probe_built_equal"][signed]).all()
    assert (result["built_loss"] == result["built_loss"][:, :1]).all()  # one built model per p, whatever the seed


def test_the_scaling_check_trains_every_seed_at_the_lr_of_the_pilots_least_final_loss(monkeypatch):
    calls = []

    def fake_grid(config, run, tasks, ns, ratios, seeds, ps, lrs=None):
        calls.append((tuple(ns), tuple(seeds), lrs, config.lr))
        shape = (1, len(ns), 1, len(seeds), 1) + (() if lrs is None else (len(lrs),))
        final = np.ones(shape)
        if lrs is not None:  # the pilot: at n 20 lr 3e-3 diverged and 1e-3 is best; at n 40 3e-4 is best
            final[0, :, 0, 0, 0] = [[0.5, 0.2, np.nan], [0.1, 0.3, 0.4]]
        elif ns == [40]:
            final[0, 0, 0, 1, 0] = np.nan  # a seed diverges at the chosen lr
        arrays = {"final_train_loss": final, "initial_train_loss": np.full(shape, 2.0)}
        return arrays | {"advantage": np.full(shape, config.lr), "built_advantage": np.full(shape, 0.1)}

    monkeypatch.setattr(search, "advantage_grid", fake_grid)
    grid = cis.SearchGrid(["relu"], 10, [0.5], [0, 1, 2], [0.1], [20, 40], (3e-4, 1e-3, 3e-3))
    cell = {"tasks": ["relu"], "ratios": [0.5], "seeds": grid.seeds, "ps": [0.1]}
    config = ccjax.TrainConfig(mixing="none", scale=0.0, steps=10)
    scaling = search._scaling(config, cis.SearchRun(TASKS), grid, cell)
    assert calls == [
        ((20, 40), (0,), grid.scaling_lrs, config.lr),
        ((20,), (0, 1, 2), None, 1e-3),
        ((40,), (0, 1, 2), None, 3e-4),
    ]
    np.testing.assert_array_equal(scaling["scaling_lr"], [1e-3, 3e-4])
    np.testing.assert_array_equal(scaling["scaling_pilot_loss"], [[0.5, 0.2, np.inf], [0.1, 0.3, 0.4]])
    np.testing.assert_allclose(scaling["scaling"], [[1e-3] * 3, [3e-4] * 3])  # each n's seeds at its lr
    np.testing.assert_array_equal(scaling["scaling_final_over_initial"], [0.5, np.inf])  # the diverged seed shows
    np.testing.assert_array_equal(scaling["scaling_built"], [0.1, 0.1])


def test_a_task_is_rechecked_only_where_it_beats_naive_and_its_built_reference():
    seeds = np.array([0.0, 0.01, -0.01])  # SEM 0.0058 over three seeds
    advantage = np.array([0.5, 0.5, 0.5, 0.01]).reshape(4, 1, 1, 1) + seeds.reshape(1, 1, 3, 1)
    built = np.array([0.5, 0.3, np.nan, np.nan]).reshape(4, 1, 1, 1) + np.zeros((1, 1, 3, 1))
    margin, positive = cis.beyond_built({"advantage": advantage, "built_advantage": built})
    # (0) no better than built; (1) 0.2 over built; (2) no built reference: over naive; (3) within 2 SEM of naive
    np.testing.assert_array_equal(positive.ravel(), [False, True, True, False])
    np.testing.assert_allclose(margin.ravel(), [0.0, 0.2, 0.5, 0.01], atol=1e-12)


def test_the_rechecks_skip_what_is_too_large_and_reuse_the_main_grids_models(monkeypatch):
    ns = [50, 100, 200, 400]
    assert cis.affordable_ns(TASKS["relu"], ns, 0.5) == ns  # 400 outputs x 200 neurons at n = 400
    assert cis.affordable_ns(TASKS["and-pairs-8"], ns, 0.5) == [50, 100, 200]  # 3,200 x 200 at n = 400
    assert cis.affordable_ns(TASKS["and-pairs-32"], ns, 0.5) == [50, 100]  # 6,400 x 100 at n = 200
    # the 4x-steps check at n = 100: and-pairs-8 (800 x 50, times 4) is kept, and-pairs-32 (3,200 x 50) is not
    assert cis.affordable_ns(TASKS["and-pairs-8"], [100], 0.5, steps_factor=4) == [100]
    assert cis.affordable_ns(TASKS["and-pairs-32"], [100], 0.5, steps_factor=4) == []
    seen = []

    def fake_grid(config, run, tasks, ns, ratios, seeds, ps, lrs=None):
        seen.append(tuple(ns))
        ones = np.ones((1, len(ns), 1, len(seeds), 1) + (() if lrs is None else (len(lrs),)))
        return {"final_train_loss": ones, "initial_train_loss": 2 * ones, "advantage": ones, "built_advantage": ones}

    monkeypatch.setattr(search, "advantage_grid", fake_grid)
    grid = cis.SearchGrid(["and-pairs-32"], 100, [0.5], [0, 1], [0.1], [100, 200], (1e-3, 3e-3))
    cell = {"tasks": ["and-pairs-32"], "ratios": [0.5], "seeds": grid.seeds, "ps": [0.1]}
    scaling = search._scaling(ccjax.TrainConfig(mixing="none", scale=0.0), cis.SearchRun(TASKS), grid, cell)
    assert seen == [(100,), (100,)]  # the pilot and the seeds, at n = 100 only
    np.testing.assert_array_equal(scaling["scaling"], [[1.0, 1.0], [np.nan, np.nan]])
    np.testing.assert_array_equal(scaling["scaling_lr"], [1e-3, np.nan])
    assert np.isnan(scaling["scaling_pilot_loss"][1]).all() and np.isnan(scaling["scaling_built"][1])
    seen.clear()
    config = ccjax.TrainConfig(mixing="none", scale=0.0)
    checked = search.recheck(config, cis.SearchRun(TASKS), grid, "and-pairs-32", 0.5, 0.1)
    assert len(seen) == 3 and np.isnan(checked["long"]).all()  # pilot, seeds, second optimizer: no 4x steps
    np.testing.assert_array_equal(checked["second_optimizer"], [1.0, 1.0])
    seen.clear()  # the pilot picks the main grid's lr (3e-3, first of a tie): its seeds at n = 100 are reused
    main_cell = {"advantage": np.array([0.7, 0.8]), "built_advantage": np.array([0.5, 0.5])}
    main_cell |= {"final_train_loss": np.ones(2), "initial_train_loss": np.full(2, 4.0)}
    reused = search._scaling(config, cis.SearchRun(TASKS), grid._replace(scaling_lrs=(3e-3, 1e-3)), cell, main_cell)
    assert seen == [(100,)]  # the pilot alone
    np.testing.assert_array_equal(reused["scaling"][0], [0.7, 0.8])
    assert reused["scaling_built"][0] == 0.5 and reused["scaling_final_over_initial"][0] == 0.25
