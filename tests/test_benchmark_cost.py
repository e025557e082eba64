"""The accelerator layout's compiled training step does little more than its matmuls, and
the path almost every step takes moves few bytes."""

import pytest

import ccjax
from benchmarks.throughput import (
    COMMON_PATH_BYTES_CEILING,
    accelerator_step_cost,
    mlp_matmul_flops,
    step_matmul_minimum,
)


def test_matmul_minimum_at_paper_shapes():
    # 100 -> 50 -> 100 MLP at batch 2048: forward 2 matmuls + backward 3 (no input gradient),
    # 2 * 2048 * 100 * 50 FLOPs each; the labels' x (sM)^T adds 2 * 2048 * 100 * 100.
    assert mlp_matmul_flops(2048, 100, 50) == 5 * 2 * 2048 * 100 * 50 == 102_400_000
    assert step_matmul_minimum(ccjax.TrainConfig()) == 102_400_000 + 40_960_000


@pytest.fixture(scope="module")
def paper_cost():
    """The cost analysis at paper shapes (2 models vmapped: the bytes per model-step do not
    depend on how many; 64 give the same to 0.01%)."""
    return accelerator_step_cost(ccjax.TrainConfig(), n_models=2)


def test_common_path_stays_under_its_byte_ceiling_at_paper_shapes(paper_cost):
    cost = paper_cost
    assert cost["row_capacity"] == 1424
    assert cost["bytes_per_model_step"] <= COMMON_PATH_BYTES_CEILING, cost
    # Compacting the non-empty rows saves over a third of the whole batch's bytes (19.06 MB at
    # the default XLA:CPU flags, 11.97 after; less under this suite's fast-compile flags); the
    # rare branches (an overflowed batch: the Bernoulli tail over the whole batch and the
    # whole-batch step) are counted apart.
    assert cost["bytes_per_model_step"] <= 0.7 * cost["whole_batch"]["bytes"], cost
    assert cost["rare_branches"]["bytes"] > cost["bytes_per_model_step"]
    assert cost["as_compiled"]["bytes"] == pytest.approx(cost["bytes_per_model_step"] + cost["rare_branches"]["bytes"])


def test_common_path_flops_within_1_3_times_the_matmul_minimum(paper_cost):
    cost = paper_cost
    assert cost["matmul_minimum_flops"] == step_matmul_minimum(ccjax.TrainConfig())
    assert cost["rows_matmul_minimum_flops"] == step_matmul_minimum(ccjax.TrainConfig(), 1424)
    assert cost["rows_matmul_minimum_flops"] <= cost["flops_per_model_step"] <= 1.3 * cost["matmul_minimum_flops"]
    for rates in cost["implied_model_steps_per_s"].values():
        assert 0 < rates["roofline"] == min(rates["compute_bound"], rates["memory_bound"])
