"""The "auto" input path follows the throughput measured on each platform (issue: the
faster path), and a sweep records its path and the reason."""

import dataclasses
import re
from pathlib import Path

import pytest

import ccjax
from ccjax.engine import InputPathChoice

PERFORMANCE = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
CONFIG = ccjax.TrainConfig()  # the paper's: n = 100, p = 0.01, so n p = 1


def choose(platform, models_together=1, **fields):
    return dataclasses.replace(CONFIG, **fields).input_path_choice(models_together=models_together, platform=platform)


def h200_throughput() -> dict[str, dict[int, float]]:
    """The H200 table of docs/performance.md: model-steps/s of each path at each K."""
    text = PERFORMANCE.read_text()
    table = text[text.index("### On an NVIDIA H200") :]
    header = re.search(r"^\| model-steps/s.*$", table, re.M).group(0)
    ks = [int(k.replace(",", "")) for k in re.findall(r"K = ([\d,]+)", header)]
    rates = {}
    for path in ("sparse", "dense"):
        row = re.search(rf"^\| sweep, {path} path \|(.*)$", table, re.M).group(1)
        numbers = [float(cell.split("(")[0].replace(",", "").replace("*", "")) for cell in row.split("|")[:-1]]
        rates[path] = dict(zip(ks, numbers, strict=True))
    return rates


def test_auto_never_picks_the_slower_path_measured_on_the_h200():
    rates = h200_throughput()
    assert sorted(rates["sparse"]) == [1, 64, 256, 1024], rates
    for k, sparse in rates["sparse"].items():
        faster = "sparse" if sparse > rates["dense"][k] else "dense"
        assert choose("gpu", k).path == faster, (k, rates)


@pytest.mark.parametrize(
    ("platform", "models", "fields", "path"),
    [
        ("cpu", 1, {}, "sparse"),
        ("cpu", 1024, {}, "sparse"),
        ("cpu", 1, {"p": 0.05}, "sparse"),  # n p = 5, the edge
        ("cpu", 1, {"p": 0.1}, "dense"),
        ("cpu", 1, {"p": 0.5, "data": "exactly-one"}, "sparse"),
        ("gpu", 63, {}, "dense"),
        ("gpu", 64, {}, "sparse"),
        ("cuda", 256, {}, "sparse"),
        ("gpu", 1024, {"p": 0.05}, "dense"),  # n p > 3: the GPU measured only n p = 1
        ("tpu", 1, {}, "dense"),
        ("tpu", 4096, {}, "dense"),
    ],
)
def test_auto_rule(platform, models, fields, path):
    choice = choose(platform, models, **fields)
    assert choice.path == path
    assert choice.reason.startswith("auto on "), choice


def test_a_requested_path_is_kept_on_every_platform():
    for platform in ("cpu", "gpu", "tpu"):
        assert choose(platform, 1024, input_path="sparse") == InputPathChoice(
            "sparse", "input_path='sparse' was requested"
        )
        assert choose(platform, 1, input_path="dense").path == "dense"


def test_the_sweep_records_the_path_it_trains_on_and_why():
    config = ccjax.TrainConfig(n_features=6, d_mlp=3, batch_size=16, steps=2, log_every=2)
    result = ccjax.sweep(config, {"seed": [0, 1]})
    assert result.input_path == config.input_path_choice(models_together=2)
    assert result.input_path.path == "sparse" and "CPU" in result.input_path.reason
    dense = ccjax.sweep(dataclasses.replace(config, p=0.9), {"seed": [0]})
    assert dense.input_path.path == "dense"


def test_a_task_without_a_sparse_hook_records_the_dense_path():
    class Identity(ccjax.Task):
        name = "identity"

        def labels(self, x, scaled_mixing):
            return x

    config = ccjax.TrainConfig(n_features=6, d_mlp=3, batch_size=16, steps=2, log_every=2)
    result = ccjax.sweep(config, {"seed": [0]}, task=Identity())
    assert result.input_path.path == "dense"
    assert "sparse_sse" in result.input_path.reason
