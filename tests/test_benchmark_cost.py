"""The accelerator layout's compiled training step does little more than its matmuls."""

import ccjax
from benchmarks.throughput import accelerator_step_cost, mlp_matmul_flops, step_matmul_minimum


def test_matmul_minimum_at_paper_shapes():
    # 100 -> 50 -> 100 MLP at batch 2048: forward 2 matmuls + backward 3 (no input gradient),
    # 2 * 2048 * 100 * 50 FLOPs each; the labels' x (sM)^T adds 2 * 2048 * 100 * 100.
    assert mlp_matmul_flops(2048, 100, 50) == 5 * 2 * 2048 * 100 * 50 == 102_400_000
    assert step_matmul_minimum(ccjax.TrainConfig()) == 102_400_000 + 40_960_000


def test_compiled_step_flops_within_one_and_a_half_times_the_matmul_minimum():
    config = ccjax.TrainConfig(batch_size=64)
    cost = accelerator_step_cost(config, n_models=4)
    assert cost["matmul_minimum_flops"] == step_matmul_minimum(config)
    assert 1.0 <= cost["flops_over_minimum"] <= 1.5, cost
    assert cost["bytes_per_model_step"] > 0
    for rates in cost["implied_model_steps_per_s"].values():
        assert 0 < rates["roofline"] == min(rates["compute_bound"], rates["memory_bound"])
