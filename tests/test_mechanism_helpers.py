"""The mechanism helpers of paper experiments 2, 4, 5 and 6 (§5, §6.2, §6.4–6.6): batched
analyses and baselines (ccjax.measure) against the single-model library functions and
known values, and their figures (ccjax.plot)."""

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

import ccjax
from ccjax import analysis, baselines, measure, plot
from ccjax.problem import FeatureMLP

RNG = np.random.default_rng(0)


def _models(n_models: int, n: int, d: int) -> FeatureMLP:
    return FeatureMLP(
        w_in=RNG.normal(size=(n_models, n, d)).astype(np.float32),
        w_out=RNG.normal(size=(n_models, d, n)).astype(np.float32),
    )


def _one(params: FeatureMLP, k: int) -> FeatureMLP:
    return jax.tree.map(lambda leaf: leaf[k], params)


def test_alignments_are_the_alignment_of_each_model():
    params, scaled = _models(2, 8, 4), (0.1 * RNG.normal(size=(2, 8, 8))).astype(np.float32)
    batched = measure.alignments(params, scaled)
    assert list(batched) == sorted(analysis.Alignment._fields)
    for k in range(2):
        single = analysis.alignment(_one(params, k), scaled[k])._asdict()
        for name, value in single.items():
            assert isinstance(batched[name], np.ndarray)
            np.testing.assert_allclose(batched[name][k], value, rtol=1e-4, atol=1e-5, err_msg=name)


def test_alignment_bands_average_the_papers_index_ranges():
    eigen_cos = np.broadcast_to(np.arange(100) / 100, (2, 3, 100))
    bands = measure.alignment_bands(eigen_cos)
    assert set(bands) == {"cos_top20", "cos_at_40", "cos_from_70"}
    np.testing.assert_allclose(bands["cos_top20"], np.full((2, 3), 0.095))  # indices 0..19
    np.testing.assert_allclose(bands["cos_at_40"], np.full((2, 3), 0.40))  # 38..42
    np.testing.assert_allclose(bands["cos_from_70"], np.full((2, 3), 0.84))  # 69..99


def test_describe_alignments_documents_every_field_with_its_axes():
    described = measure.describe_alignments("C, K")
    assert list(described) == list(analysis.Alignment._fields)
    assert described["eigenvalues"] == "(C, K, n) eigenvalues of (sM + sM^T)/2, descending"
    assert described["projection_in"].startswith("(C, K, n, d_mlp) ")
    assert described["diagonal_intercept"] == "(C, K)" and described["effective_rank"] == "(C, K) effective rank of A"
    assert measure.describe_alignments("")["share_in"].startswith("() share of")


def test_describe_baseline_sweep_follows_the_semi_nmf_defaults():
    described = measure.describe_baseline_sweep(7, 30)
    assert set(described) == {"orientations", "semi_nmf", "references", "evaluation"}
    assert set(described["orientations"]) == set(baselines.ORIENTATIONS)
    semi_nmf = described["semi_nmf"]
    assert (semi_nmf["rank"], semi_nmf["outer_iterations"], semi_nmf["inner_steps"]) == (7, 30, 5)
    assert semi_nmf["step_size"] == "cosine-annealed 0.1 -> 0.001" and "2000 iterations" in semi_nmf["init"]
    assert described["references"]["svd"].startswith("top-7 SVD") and "f < 7" in described["references"]["naive"]


def test_mixing_rms_is_the_rms_entry_of_the_label_map():
    np.testing.assert_allclose(measure.mixing_rms(np.array([2.0]), np.eye(4, dtype=np.float32)[None]), [1.0])
    mixing, scale = RNG.normal(size=(3, 5, 6, 6)).astype(np.float32), RNG.random((3, 5))
    expected = np.sqrt(np.mean(np.square(scale[..., None, None] * mixing.astype(np.float64)), axis=(-2, -1)))
    np.testing.assert_allclose(measure.mixing_rms(scale, mixing), expected, rtol=1e-12)


def test_baseline_sweep_equals_the_single_model_baselines():
    n, d, scales = 6, 3, [0.0, 0.2]
    mixing = RNG.normal(size=(2, n, n)).astype(np.float32)
    keys = jax.random.split(jax.random.key(3), 2)
    found = measure.baseline_sweep(mixing, scales, keys, d_mlp=d, outer_iterations=4)
    assert found.snmf.w_in.shape == (2, 2, 2, n, d) and found.snmf.w_out.shape == (2, 2, 2, d, n)
    assert found.snmf_loss.shape == found.snmf_fit_error.shape == (2, 2, 2)
    assert found.svd_loss.shape == found.naive_loss.shape == (2, 2)
    assert np.all(found.snmf.w_in >= 0)
    for k in range(2):
        for s, scale in enumerate(scales):
            scaled = scale * mixing[k]
            naive = baselines.exactly_one_losses(baselines.naive_model(n, d), scaled)
            np.testing.assert_allclose(found.naive_loss[k, s], naive, rtol=1e-6)
            svd = baselines.svd_model(baselines.target_map(jnp.asarray(mixing[k]), scale, "faithful"), d)
            np.testing.assert_allclose(found.svd_loss[k, s], baselines.exactly_one_losses(svd, scaled), rtol=1e-5)
            for o, orientation in enumerate(baselines.ORIENTATIONS):
                target = np.asarray(baselines.target_map(jnp.asarray(mixing[k]), scale, orientation))
                u, v = found.snmf.w_in[k, s, o], found.snmf.w_out[k, s, o]
                np.testing.assert_allclose(found.snmf_fit_error[k, s, o], np.linalg.norm(target - u @ v), rtol=1e-5)
                loss = baselines.exactly_one_losses(FeatureMLP(u, v), scaled)
                np.testing.assert_allclose(found.snmf_loss[k, s, o], loss, rtol=1e-5)
    # At scale 0 both orientations factorise the identity with the same key: the same model.
    np.testing.assert_allclose(found.snmf_loss[:, 0, 0], found.snmf_loss[:, 0, 1], rtol=1e-6)


def test_fine_tuning_curve_evaluates_the_three_stages():
    n, d, p = 20, 10, 0.01
    naive = jax.tree.map(lambda leaf: np.stack([leaf, leaf]), baselines.naive_model(n, d))
    zero = jax.tree.map(lambda leaf: np.stack([leaf, leaf]), baselines.zero_model(n, d))
    scaled = (0.05 * RNG.normal(size=(2, n, n))).astype(np.float32)
    curve = measure.fine_tuning_curve(naive, zero, scaled, [p], jax.random.key(4), rel_sem=0.01)
    assert curve.loss_per_feature.shape == curve.sem.shape == (3, 2, 1)
    loss, sem = curve.loss_per_feature[..., 0], curve.sem[..., 0]
    exact_mixed = [baselines.offset_loss_per_feature(0.0, p, scaled[k], n, d) for k in range(2)]
    np.testing.assert_allclose(loss[0], exact_mixed, atol=5 * sem[0].max() + 1e-6)  # naive, mixed labels
    np.testing.assert_allclose(loss[1], (n - d) / n / 6, atol=5 * sem[1].max() + 1e-6)  # naive, clean labels
    np.testing.assert_allclose(loss[2], 1 / 6, atol=5 * sem[2].max() + 1e-6)  # zero model, clean labels


def _phase(params: FeatureMLP, steps: list[int]) -> ccjax.SweepResult:
    """A sweep of 2 seeds: its weights, shared logged steps, random histories and M."""
    step = np.broadcast_to(np.asarray(steps, np.float32), (2, len(steps))).copy()
    history = ccjax.History(step=step, **{name: RNG.random(step.shape) for name in ccjax.History._fields[1:]})
    return ccjax.SweepResult(
        config=ccjax.TrainConfig(),
        grid=ccjax.make_grid({"seed": [0, 1]}),
        params=params,
        mixing=RNG.normal(size=(2, 8, 8)),
        scale=np.ones(2),
        history=history,
        compile_seconds=0.0,
        run_seconds=0.0,
        n_devices=1,
        diverged_step=np.full(2, -1),
        models_per_call=2,
    )


def test_fine_tuning_arrays_hold_both_phases_and_the_three_evaluations():
    first, second = _phase(_models(2, 8, 4), [10, 20, 30]), _phase(_models(2, 8, 4), [5, 10])
    zeros = np.zeros((3, 2, 9))
    curve = measure.LossCurve(np.array([0.01]), RNG.random((3, 2, 1)), RNG.random((3, 2, 1)), zeros, zeros, zeros,
                              np.zeros(9), 7, np.zeros(1), 0.0)  # fmt: skip
    arrays = measure.fine_tuning_arrays(first, second, curve)
    assert list(arrays) == list(measure.FINE_TUNING_ARRAYS)
    assert list(arrays["stages"]) == list(measure.FINE_TUNING_STAGES)
    np.testing.assert_array_equal(arrays["loss_per_feature"], curve.loss_per_feature[:, :, 0])
    np.testing.assert_array_equal(arrays["loss_per_feature_sem"], curve.sem[:, :, 0])
    np.testing.assert_array_equal(arrays["phase1_step"], [10, 20, 30])
    np.testing.assert_array_equal(arrays["phase2_step"], [5, 10])
    np.testing.assert_array_equal(arrays["phase2_train_loss_per_feature"], second.history.train_loss_per_feature)
    np.testing.assert_array_equal(arrays["phase1_w_out"], first.params.w_out)
    np.testing.assert_array_equal(arrays["w_in"], second.params.w_in)
    np.testing.assert_array_equal(arrays["mixing"], first.mixing)
    for k in range(2):  # ||W_2 - W_1|| / ||W_1|| over both matrices, by hand
        before, after = (jax.tree.leaves(_one(result.params, k)) for result in (first, second))
        change = np.sqrt(sum(np.sum((b - a) ** 2) for a, b in zip(before, after, strict=True)))
        np.testing.assert_allclose(arrays["weight_change"][k], change / np.sqrt(sum(np.sum(a**2) for a in before)))


def test_fine_tuning_configs_log_at_most_max_logs_times_and_clean_the_labels():
    config = ccjax.TrainConfig(steps=250, mixing="embedding", scale=1.0, p=0.02)
    phase1, phase2 = measure.fine_tuning_configs(config, 40, max_logs=100)
    assert phase1 == dataclasses.replace(config, log_every=3)  # ceil(250 / 100)
    assert (phase2.steps, phase2.mixing, phase2.scale, phase2.log_every) == (40, "none", 0.0, 1)
    assert phase2 == dataclasses.replace(phase1, steps=40, mixing="none", scale=0.0, log_every=1)


def _labels(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_plot_learned_scales_starts_every_curve_at_the_initial_scale():
    histories = np.stack([np.full((2, 4), 0.02), np.full((2, 4), 0.03)])
    fig = plot.plot_learned_scales(
        np.arange(1, 5), histories, ["a", "b"], [0.025, 0.033], initial=0.01, reference=(0.031, "rms")
    )
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and _labels(ax) == ["a", "paper ~0.025", "b", "paper ~0.033", "rms"]
    first = ax.get_lines()[0]
    np.testing.assert_array_equal(first.get_xdata(), [0, 1, 2, 3, 4])
    np.testing.assert_allclose(first.get_ydata(), [0.01, 0.02, 0.02, 0.02, 0.02])
    assert first.get_color() == "C0" and ax.get_lines()[2].get_color() == "C1"
    plt.close(fig)


def test_plot_fine_tuning_marks_the_three_evaluations_and_the_paper():
    loss1, loss2 = np.linspace(0.2, 0.07, 10)[None].repeat(2, 0), np.full((2, 5), 0.083)
    evaluated = np.array([[0.067, 0.068], [0.09, 0.091], [0.083, 0.0832]])
    fig = plot.plot_fine_tuning(
        plot.TrainingCurve(np.arange(10, 101, 10), loss1),
        plot.TrainingCurve(np.arange(20, 101, 20), loss2),
        evaluated,
        phase1_steps=100,
        naive=0.0833,
        published=(0.067, 0.083),
    )
    labels = _labels(fig.axes[0])
    assert sum(label.startswith("evaluated:") for label in labels) == 3 and "paper (read off, +-0.001)" in labels
    low, high = fig.axes[0].get_ylim()
    assert low < 0.067 and high > 0.091  # the marks are in range
    plt.close(fig)


def test_plot_alignment_cosines_and_entry_fit():
    cosines = np.broadcast_to(np.linspace(1, 0, 20), (3, 20))
    fig = plot.plot_alignment_cosines(cosines, cosines, 10, paper=([5], [0.9]), title="t")
    assert _labels(fig.axes[0]) == ["cos(E_i, A E_i)", "cos(U_i, A V_i)", "i = d_mlp = 10", "paper"]
    plt.close(fig)
    scaled = RNG.normal(size=(5, 5))
    fig = plot.plot_entry_fit(2 * scaled, scaled, (2.0, np.nan, 0.1))  # no diagonal slope: no diagonal line
    assert sorted(_labels(fig.axes[0])) == ["diagonal", "off-diagonal", "off-diagonal slope 2.00"]
    plt.close(fig)
    fig = plot.plot_entry_fit(2 * scaled, scaled, (2.0, 3.0, 0.5))
    assert "diagonal 3.00 x + 0.50" in _labels(fig.axes[0])
    plt.close(fig)


def test_plot_eigen_projections_are_symmetric_heatmaps():
    projection = RNG.normal(size=(6, 3))
    fig = plot.plot_eigen_projections(np.stack([projection, projection]), -2 * projection[None].repeat(2, 0), "ab")
    images = [ax.get_images()[0] for ax in fig.axes if ax.get_images()]
    limit = np.abs(projection).max()
    assert [image.get_clim()[1] for image in images] == pytest.approx([limit, 2 * limit, limit, 2 * limit])
    titles = [ax.get_title() for ax in fig.axes if ax.get_images()]
    assert titles == ["E . W_in: a", "E . W_out: a", "E . W_in: b", "E . W_out: b"]
    assert all(image.get_clim()[0] == -image.get_clim()[1] for image in images)
    plt.close(fig)


@pytest.mark.parametrize("with_trained", [True, False])
def test_plot_baseline_sweep_draws_each_line(with_trained):
    sigmas, loss = np.array([0.0, 0.01, 0.02]), RNG.random((2, 3, 2))
    references = {"svd": loss[..., 0], "naive": loss[..., 1]} | ({"trained": loss[..., 0]} if with_trained else {})
    fig = plot.plot_baseline_sweep(sigmas, loss, references, naive=0.0833, published={0.0: 0.08, 0.02: 0.082})
    labels = _labels(fig.axes[0])
    assert labels[:2] == ["SNMF of (I + sigma M)^T (faithful)", "SNMF of I + sigma M (paper code)"]
    assert ("trained (exactly-one data)" in labels) == with_trained
    assert labels[-2:] == ["naive, clean labels (0.0833)", "paper: SNMF of I + sigma M (read off)"]
    plt.close(fig)
