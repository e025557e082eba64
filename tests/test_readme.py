"""The README's API tour runs as written (with fewer steps, seeds and samples)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_api_tour_runs():
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    tour = next(block for block in blocks if "import jax, ccjax" in block)
    shorter = {"steps=2000": "steps=100", "range(5)": "range(2)", "(result)": "(result, rel_sem=0.01)"}
    shorter["0.1, 1.0])"] = "0.1, 1.0], rel_sem=0.01)"
    for long, short in shorter.items():
        assert long in tour  # each shortening must apply
        tour = tour.replace(long, short)
    namespace: dict = {}
    exec(compile(tour, "README.md", "exec"), namespace)
    assert namespace["outputs"].shape == (2, 4, 1024, 100)
    assert namespace["estimate"].loss_per_feature.shape == (2, 4)
    assert namespace["curve"].loss_per_feature.shape == (2, 4, 4)
    assert (namespace["resumed"].params.w_in == namespace["partial"].params.w_in).all()
    assert namespace["result"].diverged_points() == []
    assert abs(float(ccjax_exactly_one(namespace)) - 1 / 12) < 1e-6


def ccjax_exactly_one(namespace):
    return namespace["ccjax"].exactly_one_loss_per_feature(namespace["naive"], 0.0 * namespace["M"])
