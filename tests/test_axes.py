"""Sweep axes are declared once, on the config field (ccjax.axes), and compile once."""

import dataclasses
import importlib

import jax
import numpy as np
import pytest
from compiles import counting_compiles
from conftest import SMALL, small, train_jit

import ccjax
from ccjax.engine import shapes_for, traced, traced_axes
from ccjax.engine._axes import hyper_type

sweep_module = importlib.import_module("ccjax.engine._sweep")  # the implementation of ccjax.sweep
ONE_DEVICE = jax.devices()[:1]
SMALL_FIELDS = {f.name: getattr(SMALL, f.name) for f in dataclasses.fields(SMALL)}


@dataclasses.dataclass(frozen=True)
class TracedBeta1(ccjax.TrainConfig):
    """AdamW's b1 made a traced sweep axis: the one line a new axis takes."""

    b1: float = traced(0.9, neutral=0.9, allowed=lambda v: (v >= 0) & (v < 1), description="in [0, 1)")


def test_a_new_traced_axis_is_one_declaration():
    # The declaration alone makes b1 sweepable, checks its values and gives Hyper a field.
    with pytest.raises(ValueError, match="cannot sweep 'b1'"):
        ccjax.make_grid({"seed": [0], "b1": [0.5]})
    assert ccjax.make_grid({"seed": [0], "b1": [0.5]}, TracedBeta1).shape == (1, 1)
    with pytest.raises(ValueError, match=r"axis 'b1' has non-finite or out-of-range values \[1.5\].*in \[0, 1\)"):
        ccjax.make_grid({"seed": [0], "b1": [0.5, 1.5]}, TracedBeta1)
    assert set(hyper_type(TracedBeta1)._fields) == {*ccjax.engine.Hyper._fields, "b1"}
    # Its neutral value keeps it out of the compile key.
    configs = [TracedBeta1(**SMALL_FIELDS | {"b1": b1}) for b1 in (0.5, 0.8)]
    assert shapes_for(configs[0]) == shapes_for(configs[1])


def test_sweeping_a_new_traced_axis_compiles_once_and_trains_each_value():
    config = TracedBeta1(**SMALL_FIELDS | {"steps": 30})  # a shape of this test alone: the first sweep compiles
    before = sweep_module._chunk.traces
    with counting_compiles() as first_compiles:
        first = ccjax.sweep(config, {"seed": [0], "b1": [0.5, 0.99]}, devices=ONE_DEVICE)
    assert sweep_module._chunk.traces == before + 1
    assert first_compiles.count("jit(_chunk)") == 1
    with counting_compiles() as second_compiles:
        ccjax.sweep(config, {"seed": [0], "b1": [0.6, 0.8]}, devices=ONE_DEVICE)
        ccjax.sweep(dataclasses.replace(config, b1=0.7), {"seed": [1, 2]}, devices=ONE_DEVICE)
    assert sweep_module._chunk.traces == before + 1
    assert second_compiles == []
    # Each model trained with its own b1: it equals ``train`` with that b1 in the static config.
    for index, b1 in enumerate([0.5, 0.99]):
        params, history = train_jit(small(steps=30, b1=b1), jax.random.key(0))
        np.testing.assert_allclose(first.params.w_in[0, index], params.w_in, atol=1e-5, rtol=0)
        np.testing.assert_allclose(
            first.history.train_loss_per_feature[0, index], history.train_loss_per_feature, rtol=1e-5
        )
    assert not np.allclose(first.params.w_in[0, 0], first.params.w_in[0, 1], atol=1e-3)


# Two value lists per traced axis of TrainConfig; p's share their largest value, which sizes the batches.
EXISTING_AXES = {
    "p": ([0.05, 0.1], [0.02, 0.1]),
    "lr": ([1e-3, 1e-2], [2e-3, 3e-2]),
    "weight_decay": ([0.0, 0.1], [0.01, 0.2]),
    "mixing": (["none", "asymmetric"], ["symmetric", "low-rank"]),
    "scale": ([0.0, 1.0], [0.5, 2.0]),
    "mixing_rank": ([1, 2], [3, 4]),
}


def test_every_traced_axis_is_covered_here():
    assert set(EXISTING_AXES) == set(traced_axes(ccjax.TrainConfig))


@pytest.mark.parametrize("name", EXISTING_AXES)
def test_configs_differing_in_a_traced_value_share_the_compile_key(name):
    first, second = EXISTING_AXES[name]
    keys = {shapes_for(small(**{"p": 0.1, name: value}), 0.1) for value in first + second}
    assert len(keys) == 1


@pytest.mark.parametrize("name", EXISTING_AXES)
def test_sweeping_other_values_of_a_traced_axis_does_not_recompile(name):
    config, (first, second) = small(p=0.1, steps=10, mixing="low-rank", mixing_rank=2), EXISTING_AXES[name]
    results = [ccjax.sweep(config, {"seed": [0], name: first}, devices=ONE_DEVICE)]
    with counting_compiles() as compiles:
        # Also the config's own (unswept) value of the axis is not part of the compiled shape.
        other = dataclasses.replace(config, **{name: second[0]})
        results.append(ccjax.sweep(other, {"seed": [0], name: second}, devices=ONE_DEVICE))
    assert compiles == []
    assert not np.allclose(results[1].params.w_in[0, 0], results[1].params.w_in[0, 1])
