"""ccjax.measure.describe_arrays (the manifest's array vocabulary) and curves_at_shared_p."""

import numpy as np

from ccjax import measure


def test_describe_arrays_fills_in_the_axes_and_renames_the_training_p_point():
    described = measure.describe_arrays("F, K", measure.CURVE_ARRAYS, at="at_p_train")
    assert list(described) == ["p_eval", "loss_per_feature", "loss_per_feature_sem", "at_p_train", "at_p_train_sem"]
    assert described["loss_per_feature"] == "(F, K, P) L/p of each model at each p_eval"
    assert described["at_p_train"] == "(F, K) L/p of each model at its own training p"
    assert measure.describe_arrays("T, K", ["at_sem"]) == {"at_train_p_sem": "(T, K) its Monte Carlo standard error"}


def test_describe_arrays_falls_back_to_the_sweep_vocabulary_and_appends_the_suffix():
    names = ("snmf_w_in", "final_train_loss_per_feature")
    described = measure.describe_arrays("F, K, S", names, suffix=" (absent)")
    assert described["snmf_w_in"] == "(F, K, S, O, n_features, d_mlp) SNMF W_in (= U >= 0) (absent)"
    sweep = measure.describe_sweep_arrays("F, K, S", ["final_train_loss_per_feature"])
    assert described["final_train_loss_per_feature"] == sweep["final_train_loss_per_feature"] + " (absent)"
    assert set(measure.describe_arrays("K", measure.BASELINE_ARRAYS)) == set(measure.BASELINE_ARRAYS)


def test_curves_at_shared_p_splits_off_the_last_point():
    loss = np.arange(24.0).reshape(2, 3, 4)
    fields = dict.fromkeys(measure.LossCurve._fields, np.zeros(4)) | {"loss_per_feature": loss, "sem": loss / 10}
    curve = measure.LossCurve(**fields)
    split = measure.curves_at_shared_p(curve, at="at_p")
    np.testing.assert_array_equal(split["loss_per_feature"], loss[:, :, :3])
    np.testing.assert_array_equal(split["at_p"], [[3, 7, 11], [15, 19, 23]])
    np.testing.assert_array_equal(split["at_p_sem"], loss[:, :, 3] / 10)
    assert split["loss_per_feature_sem"].shape == (2, 3, 3)
