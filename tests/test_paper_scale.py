"""Paper-scale checks of the published numbers (docs/paper.md §2, §6): ``pytest -m slow``.

Each run goes through the scale-sweep CLI with its paper defaults (p = 0.01, 10,000
steps, batch 2048, AdamW 3e-3 / 1e-2, half-cosine, d_embed 1000, ≥ 1e6 non-empty
evaluation samples), one seed per run to bound the runtime (a few minutes on a laptop
CPU in all). The models of one mixing family share one sweep: scale 0 of the embedding
sweep is the clean model. Tolerances cover seed-to-seed spread (about ±0.001) and the
reading of values off the paper's plots.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ccjax

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PAPER_ARGS = ["--seeds", "1"]  # everything else: the CLI's (paper) defaults


def run_sweep(directory: Path, *args: str) -> dict[str, np.ndarray]:
    done = subprocess.run(
        [sys.executable, "-m", "experiments.scale_sweep", *PAPER_ARGS, *args]
        + ["--out", str(directory), "--figure", str(directory / "figure.png")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    arrays, manifest = ccjax.load_results(directory)
    # Each model's L/p meets the evaluation's relative standard error (default 0.1%).
    assert np.all(arrays["loss_per_feature_sem"] <= manifest["evaluation"]["rel_sem"] * arrays["loss_per_feature"])
    return arrays


@pytest.fixture(scope="module")
def embedding(tmp_path_factory):
    """Faithful embedding mixing at scales 0 (clean labels) and 1 (the CC model)."""
    return run_sweep(tmp_path_factory.mktemp("embedding"), "--scales", "0,1")


@pytest.fixture(scope="module")
def code_sign(tmp_path_factory):
    return run_sweep(tmp_path_factory.mktemp("code_sign"), "--scales", "1", "--mixing", "embedding-code-sign")


@pytest.fixture(scope="module")
def full_model(tmp_path_factory):
    return run_sweep(tmp_path_factory.mktemp("full"), "--scales", "1", "--full-model")


def test_clean_labels_sit_on_the_naive_line(embedding):
    assert embedding["loss_per_feature"][0, 0] == pytest.approx(0.0835, abs=0.002)


def test_faithful_embedding_mixing(embedding):
    assert embedding["loss_per_feature"][0, 1] == pytest.approx(0.067, abs=0.003)


def test_code_sign_embedding_mixing(code_sign):
    assert code_sign["loss_per_feature"][0, 0] == pytest.approx(0.064, abs=0.003)


def test_full_residual_model_matches_the_reduced_model(embedding, full_model):
    # Same seed: same W_E and M; Adam is not reparametrisation-invariant, so only close.
    np.testing.assert_array_equal(full_model["mixing"][0, 0], embedding["mixing"][0, 1])
    assert full_model["loss_per_feature"][0, 0] == pytest.approx(embedding["loss_per_feature"][0, 1], abs=0.002)
