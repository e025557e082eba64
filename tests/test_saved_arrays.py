"""ccjax.measure.baseline_sweep_arrays and tail_loss_terms (the saved arrays of paper experiments 6 and
§2) against the functions they are made of, and the scale sweep's figure (ccjax.plot)."""

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from ccjax import measure, plot
from ccjax.problem import seed_key

RNG = np.random.default_rng(1)


def test_baseline_sweep_arrays_are_the_baseline_sweep_with_keys_folded_from_each_seed():
    n, d, scales, seeds = 6, 3, [0.0, 0.2], [4, 9]
    mixing = RNG.normal(size=(2, n, n)).astype(np.float32)
    arrays = measure.baseline_sweep_arrays(mixing, scales, seeds, d, 3, key_tag=6)
    assert tuple(arrays) == measure.BASELINE_ARRAYS
    keys = jnp.stack([jax.random.fold_in(seed_key(seed), 6) for seed in seeds])
    found = measure.baseline_sweep(mixing, scales, keys, d, 3)
    for name in ("snmf_loss", "snmf_fit_error", "svd_loss", "naive_loss"):
        np.testing.assert_array_equal(arrays[name], getattr(found, name))
    np.testing.assert_array_equal(arrays["snmf_w_in"], found.snmf.w_in)
    np.testing.assert_array_equal(arrays["snmf_w_out"], found.snmf.w_out)
    other = measure.baseline_sweep_arrays(mixing, scales, seeds, d, 3, key_tag=7)  # another tag: other NMF inits
    assert not np.array_equal(other["snmf_w_in"], arrays["snmf_w_in"])


def test_tail_loss_terms_average_each_term_over_the_last_logs():
    step = np.array([100, 200, 300, 400, 500])
    relu, mixing = RNG.random((2, 3, 4, 5)), RNG.random((2, 3, 4, 5))
    arrays = {
        "history_step": np.broadcast_to(step, (2, 3, 5)),
        "history_relu_term_per_feature": relu,
        "history_mixing_term_per_feature": mixing,
    }
    tail_relu, tail_mixing = measure.tail_loss_terms(arrays, 0.3)  # steps >= 350: the last two logs
    np.testing.assert_allclose(tail_relu, relu[..., 3:].mean(axis=-1))
    np.testing.assert_allclose(tail_mixing, measure.tail_mean(mixing, step, 0.3))
    shared = measure.tail_loss_terms(arrays | {"history_step": step}, 0.3)  # steps saved once for all models
    np.testing.assert_array_equal(shared[0], tail_relu)


def test_plot_mixing_scale_sweep_draws_three_panels():
    scales, loss = np.array([0.0, 1.0]), RNG.random((3, 2))
    step, history = np.arange(1, 6) * 10, RNG.random((3, 2, 5)) + 0.05
    figure = plot.plot_mixing_scale_sweep(
        scales, loss, step, history, (loss / 2, loss / 2), naive=0.0833, p=0.01, tail_fraction=0.1, title="t"
    )
    assert isinstance(figure, Figure) and len(figure.axes) == 3
    assert figure.axes[0].get_title() == "loss per feature at p = 0.01"
    assert "last 10% of training" in figure.axes[1].get_title()
