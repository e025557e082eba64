"""The library pieces of the rank-of-M experiment, the CiS search and the reproduction report:
measures and trends of a rank sweep (ccjax.measure), the effective rank of random low-rank Ms
(ccjax.analysis), the search's procedure, statistics and summary (ccjax.cis), and their figures
(ccjax.plot). Each is checked against an independent computation or a known case."""

import io

import numpy as np
import pytest

import ccjax
from ccjax import analysis, cis, measure, plot

plt = pytest.importorskip("matplotlib.pyplot")  # after ccjax.plot chose the backend


def _effective_rank(matrix: np.ndarray) -> float:
    """exp(entropy of the normalised singular values), in float64 NumPy."""
    weights = np.linalg.svd(matrix, compute_uv=False)
    weights = weights[weights > 0] / weights.sum()
    return float(np.exp(-np.sum(weights * np.log(weights))))


# --- the effective rank of random low-rank Ms ------------------------------------------------


def test_low_rank_effective_ranks_average_the_effective_rank_of_each_draw():
    ranks, n, draws = (1, 3, 6), 6, 4
    for zero_diagonal in (False, True):
        rng, expected = np.random.default_rng(7), []  # the same stream, drawn in the same order
        for rank in ranks:
            u, v = rng.standard_normal((2, draws, n, rank))
            mixing = u @ np.swapaxes(v, -1, -2)
            if zero_diagonal:
                mixing = mixing * (1 - np.eye(n))
            expected.append(np.mean([_effective_rank(m) for m in mixing]))
        got = analysis.low_rank_effective_ranks(ranks, zero_diagonal, n_features=n, draws=draws, seed=7)
        assert got.shape == (3,) and got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    kept = analysis.low_rank_effective_ranks((1,), False, n_features=n, draws=draws, seed=7)
    np.testing.assert_allclose(kept, [1.0])  # U Vᵀ of rank one: one non-zero singular value


def test_zeroing_the_diagonal_lifts_the_effective_rank_of_a_low_rank_m():
    kept = analysis.low_rank_effective_ranks((2, 10), False, n_features=40, draws=3)
    zeroed = analysis.low_rank_effective_ranks((2, 10), True, n_features=40, draws=3)
    assert np.all(kept <= np.array([2, 10]) + 1e-9) and np.all(zeroed > kept + 3)


# --- measures and trends of a rank sweep -----------------------------------------------------


@pytest.fixture(scope="module")
def tiny_rank_sweep():
    config = ccjax.TrainConfig(
        data="exactly-one",
        mixing="low-rank",
        learn_scale=True,
        n_features=8,
        d_mlp=4,
        mixing_rank=1,
        batch_size=64,
        steps=4,
    )
    return ccjax.sweep(config, {"seed": [0, 1], "mixing_rank": [1, 3]})


def test_rank_sweep_measures_agree_with_each_model_measured_alone(tiny_rank_sweep):
    result = tiny_rank_sweep
    measured = measure.rank_sweep_measures(result)
    assert set(measured) == set(measure.RANK_SWEEP_MEASURES)
    naive = ccjax.baselines.naive_model(8, 4)
    for index in np.ndindex(2, 2):
        params = ccjax.FeatureMLP(w_in=result.params.w_in[index], w_out=result.params.w_out[index])
        mixing, scale = np.asarray(result.mixing[index], np.float64), abs(float(result.scale[index]))
        scaled = np.asarray(result.scaled_mixing[index])
        np.testing.assert_allclose(measured["loss"][index], ccjax.exactly_one_loss_per_feature(params, scaled), 1e-5)
        np.testing.assert_allclose(
            measured["naive_loss"][index], ccjax.exactly_one_loss_per_feature(naive, scaled), rtol=1e-5
        )
        np.testing.assert_allclose(measured["effective_rank"][index], _effective_rank(mixing), rtol=1e-4)
        np.testing.assert_allclose(measured["mixing_rms"][index], scale * np.sqrt(np.sum(mixing**2)) / 8, 1e-6)
        np.testing.assert_allclose(measured["scale"][index], scale, rtol=1e-6)
    np.testing.assert_allclose(measured["effective_rank"][:, 0], 1.0, rtol=1e-4)  # rank one
    assert measured["scale_history"].shape == measured["train_loss_per_feature_history"].shape == (2, 2, 1)
    np.testing.assert_array_equal(
        measured["final_train_loss_per_feature"], measured["train_loss_per_feature_history"][..., -1]
    )
    assert measured["w_in"].shape == (2, 2, 8, 4) and measured["mixing"].shape == (2, 2, 8, 8)


def test_rank_sweep_arrays_swap_the_first_two_axes_and_prefix_the_points(tiny_rank_sweep):
    measured = measure.rank_sweep_measures(tiny_rank_sweep)  # grid (seed, rank): the swap gives (rank, seed)
    arrays = measure.rank_sweep_arrays([tiny_rank_sweep, tiny_rank_sweep], prefix="point_")
    assert list(arrays)[: len(measured) + 1] == ["history_step", *measured]
    np.testing.assert_array_equal(arrays["history_step"], np.asarray(tiny_rank_sweep.history.step)[0, 0])
    for name, value in measured.items():
        np.testing.assert_array_equal(arrays[name], np.swapaxes(value, 0, 1))
        np.testing.assert_array_equal(arrays["point_" + name], value)
    assert set(measure.rank_sweep_arrays([tiny_rank_sweep])) == {"history_step", *measured}


def _losses(slope_per_fold: float, ranks, seeds: int = 3, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, ranks) effective ranks = ranks and losses = 0.05 + slope ln(rank) (+ per-seed noise)."""
    effective = np.broadcast_to(np.asarray(ranks, np.float64), (seeds, len(ranks)))
    offsets = noise * np.arange(seeds)[:, None] * np.array([1.0, -1.0, 0.5])[: len(ranks)]
    return effective, 0.05 + slope_per_fold * np.log(effective) + offsets


def test_rank_trends_and_their_verdicts():
    ranks = np.array([1, 5, 20])
    rising_effective, rising = _losses(0.002, ranks)
    falling_effective, falling = _losses(-0.002, ranks)
    trends = measure.rank_trends(
        ["up", "down"], ranks, np.stack([rising_effective, falling_effective]), np.stack([rising, falling])
    )
    up, down = trends["up"], trends["down"]
    assert up.slope == pytest.approx(0.002) and down.slope == pytest.approx(-0.002)
    assert (up.spearman, up.rises, up.steps, up.seeds_with_positive_slope) == (pytest.approx(1.0), 2, 2, 3)
    assert measure.describe_rank_trend(up).endswith("agrees with the paper")
    assert "contradicts the paper" in measure.describe_rank_trend(down)
    assert "d(L/p)/d ln(eff. rank) = +0.00200" in measure.describe_rank_trend(up)
    assert measure.describe_rank_trend(None) == "one rank, no trend"
    one_seed = analysis.rank_trend(ranks, rising_effective[:1], rising[:1])
    assert "one seed, no SEM, no verdict (the slope's sign is the paper's direction)" in measure.describe_rank_trend(
        one_seed
    )
    noisy = analysis.rank_trend(ranks, *_losses(0.0001, ranks, noise=0.01))
    assert measure.describe_rank_trend(noisy, sigmas=2.0).endswith("no trend at 2 SEM")
    assert measure.rank_trends(["flat"], ranks[:1], rising_effective[None, :, :1], rising[None, :, :1]) == {
        "flat": None
    }


# --- the rank figure -------------------------------------------------------------------------


def _rank_models(shape, steps: int = 3, seed: int = 0) -> plot.RankModels:
    rng = np.random.default_rng(seed)
    values = {name: rng.uniform(0.05, 0.09, shape) for name in ("loss", "naive_loss")}
    values |= {"effective_rank": rng.uniform(1, 90, shape), "scale": rng.uniform(0.01, 0.1, shape)}
    values |= {"mixing_rms": rng.uniform(0.01, 0.1, shape), "scale_history": rng.uniform(0.01, 0.1, (*shape, steps))}
    return plot.RankModels(**values)


def test_plot_rank_sweep_draws_each_family_and_the_full_rank_point():
    models, full = _rank_models((2, 3, 4)), _rank_models((3,), seed=1)
    fig = plot.plot_rank_sweep(
        np.array([1, 2, 5, 10]), np.array([10, 20, 30]), ["low-rank", "low-rank-flat"], models, naive=0.0833, full=full
    )
    loss_ax, scale_ax, rms_ax, history_ax = fig.axes
    labels = [text.get_text() for text in loss_ax.get_legend().get_texts()]
    assert labels[:2] == [ccjax.MIXING_FAMILIES["low-rank"].label, "naive model on these labels"]
    assert "full rank" in labels and "naive, clean labels (0.0833)" in labels
    low, high = loss_ax.get_ylim()  # keeps the models and the clean naive line in view
    assert low <= min(models.loss.min(), full.loss.min(), 0.0833) and high >= 0.0833
    assert scale_ax.get_yscale() == rms_ax.get_yscale() == "log" and loss_ax.get_xscale() == "log"
    assert len(history_ax.get_lines()) == 2 * 4 + 1 + 1  # (family, rank) lines, the full-rank line, the 1.0 line
    assert history_ax.get_title() == "learned scale during training (- low-rank, -- low-rank-flat)"
    plt.close(fig)


def test_plot_scale_histories_draws_each_history_over_its_final_value_into_given_axes():
    fig, ax = plt.subplots()
    history = np.ones((1, 2, 3, 4)) * np.array([1.0, 2.0, 4.0, 2.0])  # relative to the final value: 0.5 1 2 1
    assert plot.plot_scale_histories(np.arange(4), history, [1, 2, 3], ["a"], ax=ax) is fig
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.5, 1.0, 2.0, 1.0])
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["r = 1", "r = 2", "r = 3"]
    plt.close(fig)


# --- the CiS search --------------------------------------------------------------------------


def test_naive_check_takes_the_largest_z_per_task_over_its_cells():
    mc = np.array([[[[1.0, 1.2]]], [[[2.0, 2.0]]]])  # (tasks, d/n, seeds, p)
    closed = np.array([[[[1.1, 1.0]]], [[[np.nan, np.nan]]]])
    sem = np.full(mc.shape, 0.1)
    np.testing.assert_allclose(cis.naive_check(mc, closed, sem), [2.0, np.nan])


def test_offset_advantage_is_the_closed_form_offset_models_against_naive():
    # docs/paper.md §5: at n = 100, d = 50, L/p at b* is 0.0531 (p = 1) and 0.0813 (p = 0.1); naive is 1/12.
    got = cis.offset_advantage(100, [0.5], [0.1, 1.0])
    np.testing.assert_allclose(got, [[(1 / 12 - 0.0813) * 12, (1 / 12 - 0.0531) * 12]], atol=2e-3)
    assert cis.offset_advantage(20, [0.25, 0.5], [0.1]).shape == (2, 1)


def _search_results(positive: bool) -> dict:
    """A search's results of two tasks, one d/n, two seeds, two p (the names of cis.SEARCH_RESULTS)."""
    shape = (2, 1, 2, 2)
    results = {f"grid_{name}": np.full(shape, 0.1) for name in cis.SEARCH_ARRAYS}
    results["grid_naive_closed_form"] = np.full(shape, 0.1)
    results["grid_naive_mc_sem"] = np.full(shape, 0.01)
    results["grid_advantage"] = np.array([0.5, 0.3]).reshape(2, 1, 1, 1) + np.array([0.0, 0.02]).reshape(1, 1, 2, 1)
    results["grid_advantage"] = np.broadcast_to(results["grid_advantage"], shape)
    results["grid_built_advantage"] = np.full(shape, 0.25)
    results["grid_built_structure"] = np.full(shape, 4.0)
    for name in ("grid_probe_opposite", "grid_probe_built_opposite", "grid_probe_equal", "grid_probe_built_equal"):
        results[name] = np.where(np.arange(2).reshape(2, 1, 1, 1) == 0, np.nan, results[name])  # and-pairs: none
    results |= {"tasks": np.array(["and-pairs", "relu-outlier-l4"]), "ps": np.array([0.01, 0.1])}
    results |= {"d_ratios": np.array([0.5]), "seeds": np.array([0, 1]), "scaling_ns": np.array([20, 40])}
    results["scaling_lrs"] = np.array([1e-3, 3e-3])
    results["positive_tasks"] = np.array(["and-pairs"] if positive else [], dtype=str)
    q = 1 if positive else 0
    results |= {"check_scaling": np.full((q, 2, 2), 0.2), "check_long": np.full((q, 2), 0.4)}
    results["check_second_optimizer"] = np.full((q, 2), 0.3)
    results |= {"check_scaling_lr": np.full((q, 2), 1e-3), "check_scaling_built": np.full((q, 2), 0.15)}
    results["check_scaling_final_over_initial"] = np.full((q, 2), 0.5)
    results["check_scaling_pilot_loss"] = np.broadcast_to([0.02, np.inf], (q, 2, 2))  # 3e-3 diverged
    assert set(results) == set(cis.SEARCH_RESULTS)
    return results


def test_describe_search_tables_the_advantage_the_built_references_the_probe_and_the_rechecks():
    text = cis.describe_search(_search_results(True), 10)
    lines = text.splitlines()
    assert lines[0].startswith("advantage over naive")
    assert lines[1].split() == ["task", "d/n", "p", "=", "0.01", "p", "=", "0.1"]
    assert lines[3].split()[:6] == ["and-pairs", "0.5", "+0.510", "±", "0.010", "(0.10)"]
    assert "naive closed form vs Monte Carlo, largest |z|: and-pairs 0.0, relu-outlier-l4 0.0" in lines
    # every cell's row: naive, built and trained L/p, the advantages, trained - built, the built settings
    row = next(line for line in lines if line.split()[:3] == ["relu-outlier-l4", "0.5", "0.1"]).split()
    assert row[3:7] == ["1", "1", "1", "+0.250"] and row[7:13] == ["+0.310", "±", "0.010", "+0.060", "±", "0.010"]
    assert row[13:] == ["k=4", "c=0.1"]
    assert "built reference vs fresh samples, largest |z|: and-pairs 0.0, relu-outlier-l4 0.0" in lines
    probe = lines.index(next(line for line in lines if line.startswith("probe,"))) + 3  # after the header
    assert lines[probe].split()[:6] == ["relu-outlier-l4", "0.5", "0.01", "1.000", "1.000", "+0.000"]
    at_n = "+0.200 ± 0.000 (built +0.150) at lr 0.001, final/first training loss 0.5; pilot 0.001: 0.02, 0.003: inf"
    assert lines[-3:] == [
        "and-pairs: 4x steps +0.400 ± 0.000; second optimizer +0.300 ± 0.000; by n:",
        f"    n=20: {at_n}",
        f"    n=40: {at_n}",
    ]
    none = cis.describe_search(_search_results(False), 10)
    assert none.splitlines()[-1] == (
        "no task beats its naive model (and its built reference) by more than 2 SEM anywhere on the grid"
    )
    skipped = _search_results(True)
    skipped["check_scaling_lr"] = np.array([[1e-3, np.nan]])  # n = 40 above cis.CHECK_MAX_WEIGHTS
    skipped["check_long"] = np.full((1, 2), np.nan)  # 4 x the output layer above it
    skipped_line = "    n=40: skipped (its output layer is above cis.CHECK_MAX_WEIGHTS)"
    assert cis.describe_search(skipped, 10).splitlines()[-3:] == [
        "and-pairs: 4x steps skipped (4 x its output layer is above cis.CHECK_MAX_WEIGHTS); second optimizer"
        " +0.300 ± 0.000; by n:",
        f"    n=20: {at_n}",
        skipped_line,
    ]
    relu = _search_results(True)  # relu re-checked: each n's line gives its naive + offset model's advantage
    relu |= {"tasks": np.array(["relu", "relu-outlier-l4"]), "positive_tasks": np.array(["relu"])}
    cell = cis.rechecked_cell(
        *(
            array[0]
            for array in cis.beyond_built(
                {"advantage": relu["grid_advantage"], "built_advantage": relu["grid_built_advantage"]}
            )
        )
    )
    assert cell == (0, 0)  # every cell beats built by the same margin: the first, d/n 0.5, p 0.01
    offsets = [cis.offset_advantage(n, [0.5], [0.01])[0, 0] for n in (20, 40)]
    relu_lines = cis.describe_search(relu, 10).splitlines()[-2:]
    for line, offset in zip(relu_lines, offsets, strict=True):
        assert f"(built +0.150, naive + offset {offset:+.3f})" in line
    assert offsets[0] != offsets[1]  # the offset depends on n
    before_pilots = _search_results(True)  # results written before the lr pilot: no pilot column
    del before_pilots["check_scaling_pilot_loss"]
    assert cis.describe_search(before_pilots, 10).splitlines()[-1].endswith("final/first training loss 0.5")


def test_search_progress_reports_each_combination_and_its_steps():
    stream = io.StringIO()
    progress = cis.SearchProgress(stream)
    progress.combination(0, 2, {"task": "relu"})
    progress.steps(5, 10)
    first, second = stream.getvalue().splitlines()
    assert first == "[1/2] {'task': 'relu'}" and second.startswith("    step 5/10  0s elapsed, ETA ")


def test_search_rechecks_only_the_tasks_that_beat_naive(monkeypatch):
    from ccjax.cis import _search

    def fake_grid(config, run, tasks, ns, ratios, seeds, ps, lrs=None):  # relu beats naive at (d/n 0.5, p 0.1) only
        shape = (len(tasks), len(ns), len(ratios), len(seeds), len(ps)) + (() if lrs is None else (len(lrs),))
        gain = np.zeros(shape) + np.arange(len(seeds)).reshape((1, 1, 1, -1) + (1,) * (len(shape) - 4)) * 0.01
        if "relu" in tasks and config.steps == 10 and len(ns) == 1 and ns[0] == 10:
            gain[list(tasks).index("relu"), :, -1, :, -1] += 0.5
        arrays = {name: np.zeros(shape) for name in cis.SEARCH_ARRAYS} | {"initial_train_loss": np.ones(shape)}
        if lrs is not None:  # the scaling check: the last lr has the least final training loss
            arrays["final_train_loss"] = np.broadcast_to(-np.arange(len(lrs), dtype=float), shape)
        return arrays | {"advantage": gain, "built_advantage": np.zeros(shape)}

    monkeypatch.setattr(_search, "advantage_grid", fake_grid)
    told = []
    config = ccjax.TrainConfig(mixing="none", scale=0.0, steps=10)
    grid = cis.SearchGrid(["relu", "and-pairs"], 10, [0.25, 0.5], [0, 1], [0.01, 0.1], [20, 40])
    results = cis.search(config, cis.SearchRun(cis.SEARCH_TASKS), grid, on_positive=lambda *cell: told.append(cell))
    assert told == [("relu", 0.5, 0.1)] and list(results["positive_tasks"]) == ["relu"]
    assert set(results) == set(cis.SEARCH_RESULTS)
    assert results["grid_advantage"].shape == (2, 2, 2, 2) and results["check_scaling"].shape == (1, 2, 2)
    assert results["check_long"].shape == results["check_second_optimizer"].shape == (1, 2)
    np.testing.assert_array_equal(results["check_scaling_lr"], [[cis.SCALING_LRS[-1]] * 2])  # at both n
    assert results["check_scaling_built"].shape == results["check_scaling_final_over_initial"].shape == (1, 2)
    assert results["check_scaling_pilot_loss"].shape == (1, 2, len(cis.SCALING_LRS))


# --- the CiS figures -------------------------------------------------------------------------


def test_plot_advantage_draws_a_mean_line_per_d_ratio_and_the_overview_a_panel_per_d_ratio():
    advantage = np.arange(2 * 3 * 2 * 4, dtype=np.float64).reshape(2, 3, 2, 4)  # tasks, d/n, seeds, p
    ps, ratios = np.array([0.001, 0.01, 0.1, 1.0]), np.array([0.25, 0.5, 0.75])
    fig = plot.plot_advantage(ps, ratios, advantage[0], title="relu")
    (ax,) = fig.axes
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), advantage[0, 0].mean(axis=0))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"trained, d/n = {r:g}" for r in ratios]
    assert ax.get_title() == "relu" and ax.get_xscale() == "log"
    plt.close(fig)
    built = np.broadcast_to(np.array([0.1, 0.2, 0.3, 0.4]), advantage[0].shape)  # one built model per p
    with_built = plot.plot_advantage(ps, ratios, advantage[0], built=built).axes[0]
    lines = with_built.get_lines()
    np.testing.assert_allclose(lines[1].get_ydata(), [0.1, 0.2, 0.3, 0.4])  # dashed, after its d/n's line
    assert lines[1].get_linestyle() == "--" and lines[1].get_color() == lines[0].get_color()
    assert [line.get_linestyle() for line in lines].count("--") == len(ratios)
    assert "built reference, d/n = 0.25" in [t.get_text() for t in with_built.get_legend().get_texts()]
    plt.close(with_built.figure)
    no_builder = plot.plot_advantage(ps, ratios, advantage[0], built=np.full(advantage[0].shape, np.nan)).axes[0]
    assert [line.get_linestyle() for line in no_builder.get_lines()].count("--") == 0  # no builder: no dashed lines
    plt.close(no_builder.figure)
    overview = plot.plot_advantage_by_ratio(ps, ratios, ["relu", "two-step"], advantage)
    assert [ax.get_title() for ax in overview.axes] == [f"every task, d/n = {r:g}" for r in ratios]
    assert len(overview.axes[0].containers) == 2  # an error bar per task
    plt.close(overview)
    built = np.stack([advantage[0] - 0.5, np.full(advantage[1].shape, np.nan)])  # two-step: no builder
    both = plot.plot_advantage_by_ratio(ps, ratios, ["relu", "two-step"], advantage, built)
    assert [ax.get_title() for ax in both.axes[3:]] == [f"trained - built advantage, d/n = {r:g}" for r in ratios]
    (margin,) = both.axes[3].containers  # relu only
    np.testing.assert_allclose(margin.lines[0].get_ydata(), 0.5)  # trained - built, mean over seeds
    plt.close(both)
