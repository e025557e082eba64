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


def test_adding_a_search_task_runs_as_written():
    """The README's "Adding a search task" example, with fewer steps and evaluation samples."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(block for block in blocks if "class AbsoluteValue(cis.SearchTask)" in block)
    shorter = {"steps=1000": "steps=50", 'lr": [3e-3]}, tasks)': 'lr": [3e-3]}, tasks, cis.EvalBudget(2, 256))'}
    for long, short in shorter.items():
        assert long in example  # each shortening must apply
        example = example.replace(long, short)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    check, task = namespace["check"], namespace["task"]
    assert abs(float(check.mean) - task.naive_loss(20, 10, 0.05)) < 4 * float(check.sem)
    assert namespace["gain"].shape == (2, 2, 1, 1)
