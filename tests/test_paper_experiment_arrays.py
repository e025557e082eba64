"""The library pieces of paper experiments 2, 3 and 4: their saved arrays
(ccjax.measure.mixing_type_arrays, sigma_sweep_arrays) in the documented order and family
first, the transplant's seeds and published numbers, and the σ sweep's figure."""

import numpy as np

import ccjax
from ccjax import measure

RNG = np.random.default_rng(0)
K, F, S, N, D, T, P = 2, 3, 4, 5, 3, 6, 7  # seeds, families, sigmas, features, neurons, logs, p_eval


def test_mixing_type_arrays_are_family_first_in_the_documented_order():
    joined = {
        "params.w_in": RNG.normal(size=(K, F, N, D)).astype(np.float32),
        "params.w_out": RNG.normal(size=(K, F, D, N)).astype(np.float32),
        "scaled_mixing": RNG.normal(size=(K, F, N, N)).astype(np.float32),
        "scale": RNG.uniform(size=(K, F)).astype(np.float32),
        "mixing": RNG.normal(size=(K, F, N, N)).astype(np.float32),
        "history.scale": RNG.uniform(size=(K, F, T)).astype(np.float32),
        "history.train_loss_per_feature": RNG.uniform(size=(K, F, T)).astype(np.float32),
    }
    assert set(joined) == set(measure.MIXING_TYPE_FIELDS)
    loss = RNG.uniform(size=(K, F, P + 1))
    curve = measure.LossCurve(
        **dict.fromkeys(measure.LossCurve._fields, None) | {"loss_per_feature": loss, "sem": loss}
    )
    arrays = measure.mixing_type_arrays(joined, curve, np.arange(1, T + 1))
    shared = ("families", "learned", "seeds", "p_eval", "n_evaluations")  # the experiment adds them
    assert list(arrays) == [name for name in measure.MIXING_TYPE_ARRAYS if name not in shared]
    np.testing.assert_array_equal(arrays["loss_per_feature"], np.swapaxes(loss[..., :-1], 0, 1))
    np.testing.assert_array_equal(arrays["at_p_train"], loss[..., -1].T)
    assert arrays["scale"].dtype == np.float64 and np.array_equal(arrays["abs_scale"], arrays["scale"])
    np.testing.assert_array_equal(arrays["scale"], joined["scale"].T)
    rms = measure.mixing_rms(joined["scale"].T.astype(np.float64), np.swapaxes(joined["mixing"], 0, 1))
    np.testing.assert_array_equal(arrays["mixing_rms"], rms)
    final = arrays["final_train_loss_per_feature"]
    np.testing.assert_array_equal(final, joined["history.train_loss_per_feature"][..., -1].T)
    np.testing.assert_array_equal(arrays["history_step"], np.arange(1, T + 1))
    np.testing.assert_array_equal(arrays["scale_history"], np.swapaxes(joined["history.scale"], 0, 1))
    assert arrays["w_in"].shape == (F, K, N, D) and arrays["w_out"].shape == (F, K, D, N)


def test_sigma_sweep_arrays_are_family_first_with_one_m_per_seed():
    grid = (K, F, S)
    mixing = np.broadcast_to(RNG.normal(size=(K, F, 1, N, N)), (*grid, N, N))  # every sigma shares its seed's M
    history = ccjax.History(*(RNG.uniform(size=(*grid, T)) for _ in ccjax.History._fields))
    history = history._replace(step=np.broadcast_to(np.arange(1.0, T + 1), (*grid, T)))
    params = ccjax.FeatureMLP(RNG.normal(size=(*grid, N, D)), RNG.normal(size=(*grid, D, N)))
    grid_axes = ccjax.make_grid(
        {"seed": list(range(K)), "mixing": ["symmetric", "asymmetric", "none"], "scale": list(range(S))}
    )
    result = ccjax.SweepResult(
        ccjax.TrainConfig(), grid_axes, params, mixing, np.ones(grid), history, 0.0, 0.0, 1, -np.ones(grid, int), 1
    )
    estimate = measure.Estimate(
        RNG.uniform(size=grid), RNG.uniform(size=grid), np.full(grid, 4096), np.full(grid, 4000)
    )
    arrays = measure.sigma_sweep_arrays(result, estimate)
    assert list(arrays) == list(measure.SIGMA_SWEEP_ARRAYS)[3:]  # after the grid's axes
    np.testing.assert_array_equal(arrays["loss_per_feature"], np.swapaxes(estimate.loss_per_feature, 0, 1))
    np.testing.assert_array_equal(arrays["loss_per_feature_sem"], np.swapaxes(estimate.sem, 0, 1))
    np.testing.assert_array_equal(arrays["final_train_loss_per_feature"], np.swapaxes(history[1][..., -1], 0, 1))
    assert arrays["w_in"].shape == (F, K, S, N, D) and arrays["train_loss_per_feature_history"].shape == (F, K, S, T)
    np.testing.assert_array_equal(arrays["history_step"], np.arange(1.0, T + 1))
    np.testing.assert_array_equal(arrays["mixing"], np.swapaxes(mixing[:, :, 0], 0, 1))
    assert arrays["n_evaluations"] == 4096 and arrays["n_evaluations"].shape == ()


def test_phase2_seeds_and_the_papers_transplant_numbers_for_a_run():
    from experiments import transplant

    assert measure.phase2_seeds([0, 3]) == [2**31, 2**31 + 3]
    assert transplant.PUBLISHED["p"] == 0.01 and transplant.PUBLISHED["finetuned_clean"] == 0.083

    def run(p=0.01, name="embedding", scale=1.0):
        return {"evaluation": {"p": p}, "mixing": {"name": name, "scale": scale}}

    assert transplant.published(run()) == (0.067, 0.083)
    assert transplant.published(run(scale=0.5)) == (None, 0.083)  # phase 1 only at scale 1
    assert transplant.published(run(name="symmetric")) == (None, 0.083)
    assert transplant.published(run(p=0.02)) == (None, None)  # only at the paper's p
    assert list(measure.TRANSPLANT_ARRAYS)[:2] == ["seeds", "phase2_seeds"]
    assert list(measure.TRANSPLANT_ARRAYS)[-1] == "scale"


def test_plot_sigma_sweep_draws_each_family_in_the_papers_colour_with_its_published_dip():
    from ccjax import plot
    from ccjax.measure.statistics import dip_statistics

    sigmas = np.linspace(0.0, 0.08, 9)
    loss = np.stack([0.0833 + 20 * (sigmas - 0.03) ** 2 - 0.018 + 0.001 * RNG.normal(size=(2, 9)) for _ in range(2)])
    stats = {
        family: dip_statistics(sigmas, curve, 0.0833, n_boot=20)
        for family, curve in zip(("asymmetric", "symmetric"), loss, strict=True)
    }
    published = {
        "symmetric": {"min_value": 0.065, "argmin": (0.028, 0.036), "crossing": 0.064},
        "asymmetric": {"min_value": 0.075, "argmin": (0.02, 0.028), "crossing": 0.047},
    }
    (ax,) = plot.plot_sigma_sweep(sigmas, loss, stats, published, naive=0.0833, p=0.01, title="t").axes
    labels = ax.get_legend_handles_labels()[1]
    assert "paper, asymmetric: minimum ~0.075 at sigma 0.02-0.028" in labels
    assert "paper, symmetric: minimum ~0.065 at sigma 0.028-0.036" in labels
    assert ax.get_ylabel() == "loss per feature L/p at p = 0.01" and ax.get_title() == "t"
    crossings = [line for line in ax.get_lines() if line.get_marker() == "x" and line.get_xydata()[0][1] == 0.0833]
    assert [line.get_color() for line in crossings] == [plot.SIGMA_SWEEP_COLORS[f] for f in ("asymmetric", "symmetric")]
