"""The Colab notebook (docs/colab.ipynb) runs (issue 21, item 5).

Its code cells run here in order, in one namespace, on the CPU, with ``CCJAX_NOTEBOOK_TEST=1``
(its install cell then prints the pip commands instead of running them) and with
:data:`SMALLER` applied: each replacement must occur in its cell, so the notebook cannot drift
from what the test runs. The install plan itself is checked for both a new enough and an old jax.
"""

import json
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "colab.ipynb"
# The paper-size settings of the notebook -> a CPU-sized run (replaced in the cells that hold them).
SMALL_CONFIG = "ccjax.TrainConfig(n_features=20, d_mlp=10, d_embed=50, batch_size=256, steps=60, log_every=10)"
SMALLER = {
    "ccjax.TrainConfig()": SMALL_CONFIG,
    'range(5), "scale"': 'range(2), "scale"',
    "evaluate_sweep(result)": "evaluate_sweep(result, rel_sem=0.05)",
    "steps, batch_size, p, scale = 10_000, 2048, 0.01, 1.0": "steps, batch_size, p, scale = 50, 256, 0.01, 1.0",
    "[p], ccjax.evaluation_key())": "[p], ccjax.evaluation_key(), rel_sem=0.05)",
}


def code_cells() -> list[str]:
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


@pytest.fixture(scope="module")
def namespace(tmp_path_factory):
    """The namespace after every code cell ran, shrunk by :data:`SMALLER`."""
    matplotlib.use("Agg")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CCJAX_NOTEBOOK_TEST", "1")
        patch.chdir(tmp_path_factory.mktemp("notebook"))
        cells, unused = code_cells(), dict(SMALLER)
        names: dict = {"__name__": "__notebook__"}
        for number, cell in enumerate(cells, start=1):
            for old, new in SMALLER.items():
                if old in cell:
                    cell = cell.replace(old, new)
                    unused.pop(old, None)
            exec(compile(cell, f"colab.ipynb (code cell {number})", "exec"), names)
        assert not unused, f"replacements that match no cell: {list(unused)}"
    return names


def test_the_notebook_trains_plots_and_evaluates(namespace):
    loss = np.asarray(namespace["estimate"].loss_per_feature)
    assert loss.shape == (2, 4) and np.isfinite(loss).all()
    assert namespace["result"].diverged_points() == []
    assert namespace["figure"] is not None
    own = float(namespace["curve"].loss_per_feature[0, 0])
    assert np.isfinite(own) and own > 0


def test_the_own_loop_trains(namespace):
    """The plain optax loop lowers the loss: its model beats a fresh one on the same evaluation."""
    ccjax, jax = namespace["ccjax"], namespace["jax"]
    fresh = ccjax.init_feature_mlp(jax.random.key(1), n_features=100, d_mlp=50)
    fresh = jax.tree.map(lambda leaf: leaf[None], fresh)
    mixing, p = (namespace["scale"] * namespace["M"])[None], namespace["p"]
    untrained = ccjax.loss_curve(fresh, mixing, [p], ccjax.evaluation_key(), rel_sem=0.05)
    assert float(namespace["curve"].loss_per_feature[0, 0]) < float(untrained.loss_per_feature[0, 0])


def test_install_keeps_a_new_enough_jax_and_never_puts_a_cpu_jax_over_an_accelerator(namespace):
    install = namespace["install_commands"]
    assert install((0, 6, 1), "tpu", "SOURCE") == [[sys.executable, "-m", "pip", "install", "--quiet", "SOURCE"]]
    assert install((0, 10, 2), None, "SOURCE")[-1][-1] == "SOURCE" and len(install((0, 10, 2), None, "SOURCE")) == 1
    for accelerator in ("tpu", "cuda12"):
        first, ccjax_install = install((0, 4, 30), accelerator, "SOURCE")
        assert first[-2:] == ["--upgrade", f"jax[{accelerator}]"] and ccjax_install[-1] == "SOURCE"
    assert install(None, None, "SOURCE")[0][-1] == "jax"  # a CPU runtime without jax: the CPU build
