"""The frozen configuration of a training run, :class:`TrainConfig` (docs/paper.md §4), and
the traced values of its swept fields, :class:`Hyper`.
"""

import dataclasses
import math
from typing import Literal, NamedTuple

import jax

from ..problem._loss import InputPath
from ..problem._mixing import MIXING_FAMILIES, MIXING_NAMES
from ._axes import (
    hyper_type,
    non_negative,
    positive,
    positive_integer,
    probability,
    traced,
)

SCHEDULES = ("half-cosine", "quarter-cosine", "constant")
DATA_KINDS = ("bernoulli", "exactly-one")
INPUT_PATHS = ("auto", "sparse", "dense")


# The "auto" input path's rule, from throughput measured on each platform (docs/performance.md):
SPARSE_PATH_MAX_ACTIVES_CPU = 5.0  # on a CPU, sparse only up to n p actives per row (2-core CPU)
SPARSE_PATH_MAX_ACTIVES_GPU = 3.0  # on a GPU, sparse only up to n p actives per row (measured at n p = 1)
SPARSE_PATH_MIN_MODELS_GPU = 64  # on a GPU, sparse from this many models vmapped together (H200)
GPU_PLATFORMS = ("gpu", "cuda", "rocm")


class InputPathChoice(NamedTuple):
    """The input path a run takes and why (:meth:`TrainConfig.input_path_choice`).

    Attributes:
        path: ``"sparse"`` or ``"dense"``.
        reason: One sentence: the request, or the measurement the "auto" rule rests on.
    """

    path: InputPath
    reason: str


def _auto_input_path(platform: str, n_active: float, models_together: int) -> InputPathChoice:
    """The "auto" rule: the path measured faster on ``platform`` for ``n_active`` actives per
    row (n p) and ``models_together`` models vmapped together."""
    if platform == "cpu":
        if n_active <= SPARSE_PATH_MAX_ACTIVES_CPU:
            why = "at n p <= 5 the sparse path was faster on a 2-core CPU (645 vs 511 model-steps/s at n p = 5)"
            return InputPathChoice("sparse", f"auto on CPU: n p = {n_active:g}; {why}")
        why = "above n p = 5 the dense path was as fast or faster on a 2-core CPU (455 vs 331 at n p = 10)"
        return InputPathChoice("dense", f"auto on CPU: n p = {n_active:g}; {why}")
    sparse_data = n_active <= SPARSE_PATH_MAX_ACTIVES_GPU
    if platform in GPU_PLATFORMS:
        measured = (
            "an H200 measured the sparse path (its direct form, which a GPU keeps) faster from K = 64 on "
            "(107,053 vs 81,528 model-steps/s at K = 64)"
        )
        if sparse_data and models_together >= SPARSE_PATH_MIN_MODELS_GPU:
            return InputPathChoice("sparse", f"auto on GPU: K = {models_together} models vmapped together; {measured}")
        if sparse_data:
            slower = "and the dense path faster at K = 1 (6,220 vs 4,200); K from 2 to 63 was not measured"
            return InputPathChoice(
                "dense", f"auto on GPU: K = {models_together} models vmapped together; {measured} {slower}"
            )
        return InputPathChoice(
            "dense", f"auto on GPU: n p = {n_active:g} > 3 actives per row, where the GPU was not measured"
        )
    return InputPathChoice("dense", f"auto on {platform}: the sparse path was not measured there; dense, all matmuls")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Defaults are the paper's (§4).

    Frozen and hashable, so it can be a static ``jit`` argument. The fields declared with
    :func:`~ccjax.engine.traced` (p, lr, weight_decay, scale, mixing, mixing_rank) may be
    swept by :func:`ccjax.sweep` within one compilation; the others fix the compiled program.

    Attributes:
        n_features: Number of input features n.
        d_mlp: Number of ReLU neurons; at most ``n_features``.
        d_embed: Width of the residual stream W_E (the embedding mixing families, ``full_model``).
        batch_size: Samples per training step, each batch fresh.
        steps: Training steps (before ``scale_steps_for_sparsity``; see ``total_steps``).
        p: Feature probability in (0, 1] (traced).
        lr: Peak AdamW learning rate (traced).
        weight_decay: AdamW weight decay, at least 0 (traced).
        b1: AdamW's first-moment decay.
        b2: AdamW's second-moment decay.
        eps: AdamW's epsilon.
        schedule: The learning-rate decay: ``"half-cosine"`` (the paper's), ``"quarter-cosine"``
            (Braun et al.'s) or ``"constant"`` (:func:`~ccjax.engine.lr_factor`).
        scale_steps_for_sparsity: Scale the steps by ``1/(1 - (1 - p)^n)`` as the paper does at small p.
        data: ``"bernoulli"`` (each feature active with probability p) or ``"exactly-one"``.
        scale: The mixing scale s: labels are ``relu(x) + s M x`` (traced). With ``learn_scale`` it
            is instead trained by the same AdamW, starting at ``scale_init``, and the labels use
            its magnitude |scale| (docs/paper.md §3, as the authors' code does).
        mixing: The mixing family, one of :data:`ccjax.MIXING_NAMES` (traced, as its index).
        mixing_rank: The rank of the low-rank families, at most ``n_features`` (traced).
        zero_diagonal: Zero M's diagonal after drawing it (the paper code's low-rank experiment
            does, ``paper_code/nb6_mixing_matrix_rank.py``; the spec's M keep theirs).
        learn_scale: Train the mixing scale with the weights.
        scale_init: The learned scale's starting value.
        full_model: Train Braun et al.'s residual MLP (d_embed wide) through the fixed W_E
            instead of the reduced feature-space MLP (needs ``mixing="embedding"``).
        log_every: Steps per logging interval of the history.
        input_path: How the loss touches the sparse inputs: ``"sparse"``, ``"dense"`` or
            ``"auto"`` (the path measured faster on the platform: :meth:`input_path_choice`); both are exact.

    Raises:
        ValueError: On construction, if a field is out of range or unknown, or fields disagree.
    """

    n_features: int = 100
    d_mlp: int = 50
    d_embed: int = 1000
    batch_size: int = 2048
    steps: int = 10_000
    p: float = traced(0.01, neutral=max, allowed=probability, description="in (0, 1]")
    lr: float = traced(3e-3, neutral=1.0, allowed=positive, description="positive")
    weight_decay: float = traced(1e-2, neutral=0.0, allowed=non_negative, description="non-negative")
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    schedule: Literal["half-cosine", "quarter-cosine", "constant"] = "half-cosine"
    scale_steps_for_sparsity: bool = False
    data: Literal["bernoulli", "exactly-one"] = "bernoulli"
    scale: float = traced(1.0, neutral=1.0)  # before mixing: Hyper keeps its field order
    mixing: str = traced("embedding", neutral="embedding", choices=MIXING_NAMES, description="families")
    mixing_rank: int = traced(10, neutral=1, allowed=positive_integer, description="a positive integer")
    zero_diagonal: bool = False
    learn_scale: bool = False
    scale_init: float = 0.01
    full_model: bool = False
    log_every: int = 100
    input_path: Literal["auto", "sparse", "dense"] = "auto"

    def __post_init__(self):
        for name in ("n_features", "d_mlp", "d_embed", "batch_size", "steps", "log_every", "mixing_rank"):
            value = getattr(self, name)
            _check(isinstance(value, int) and value > 0, f"{name} must be a positive integer, got {value!r}")
        _check(self.d_mlp <= self.n_features, f"d_mlp ({self.d_mlp}) must not exceed n_features ({self.n_features})")
        _check(
            self.mixing_rank <= self.n_features or not getattr(MIXING_FAMILIES.get(self.mixing), "needs_rank", False),
            f"mixing_rank ({self.mixing_rank}) must not exceed n_features ({self.n_features})",
        )
        _check(0.0 < self.p <= 1.0, f"p must be in (0, 1], got {self.p!r}")
        for name in ("lr", "eps"):
            _check(
                math.isfinite(getattr(self, name)) and getattr(self, name) > 0, f"{name} must be positive and finite"
            )
        _check(math.isfinite(self.weight_decay) and self.weight_decay >= 0, "weight_decay must be ≥ 0 and finite")
        _check(0 <= self.b1 < 1 and 0 <= self.b2 < 1, "b1 and b2 must be in [0, 1)")
        _check(math.isfinite(self.scale), f"scale must be finite, got {self.scale!r}")
        _check(math.isfinite(self.scale_init), f"scale_init must be finite, got {self.scale_init!r}")
        _check(self.schedule in SCHEDULES, f"unknown schedule {self.schedule!r}; choose one of {SCHEDULES}")
        _check(self.data in DATA_KINDS, f"unknown data {self.data!r}; choose one of {DATA_KINDS}")
        _check(self.mixing in MIXING_NAMES, f"unknown mixing {self.mixing!r}; choose one of {MIXING_NAMES}")
        _check(self.input_path in INPUT_PATHS, f"unknown input_path {self.input_path!r}; choose one of {INPUT_PATHS}")
        _check(
            not self.full_model or self.mixing == "embedding",
            "full_model realises only the faithful embedding mixing; use mixing='embedding'",
        )
        _check(self.batch_size * self.n_features < 2**31, "batch_size * n_features must be below 2**31")

    @property
    def total_steps(self) -> int:
        """Steps actually run: ``steps``, or ``steps / (1 - (1-p)^n)`` with step scaling.

        The paper's small-p scaling (§4), rounded down, gives 15,773 steps at p = 0.01
        and 105,033 at p = 0.001.
        """
        if not self.scale_steps_for_sparsity:
            return self.steps
        return math.floor(self.steps / (1.0 - (1.0 - self.p) ** self.n_features))

    @property
    def feature_rate(self) -> float:
        """Expected fraction of active features: p, or 1/n for exactly-one data.

        Losses are reported per feature, L / feature_rate (the paper's L/p).
        """
        return 1.0 / self.n_features if self.data == "exactly-one" else self.p

    @property
    def n_logs(self) -> int:
        """History entries: one every ``log_every`` steps, plus the final step."""
        return -(-self.total_steps // self.log_every)

    def input_path_choice(
        self, p_max: float | None = None, models_together: int = 1, platform: str | None = None
    ) -> InputPathChoice:
        """``input_path`` with "auto" resolved, and the reason, by a per-platform rule measured
        on each platform (docs/performance.md, "The faster input path"):

        * CPU (2 cores): sparse up to ``n p <= 5`` actives per row (645 vs 511 model-steps/s at
          n p = 5, one model on one core), dense beyond (close at n p = 6 to 8, 455 vs 331 at
          n p = 10). Exactly-one data counts as n p = 1.
        * GPU (an H200): sparse with at least 64 models vmapped together at ``n p <= 3`` (+31% at
          64, +66% at 1,024 models), dense below (dense +48% for one model).
        * TPU and any other platform: dense (the sparse path was not measured there).

        Both paths draw the same data and compute the same loss; they differ by float32 rounding.

        Args:
            p_max: The largest p the runs train at (default: ``p``).
            models_together: Models ``vmap``-ed together in one step (a sweep's models per device group).
            platform: The platform the runs compile for (default: ``jax.default_backend()``).

        Returns:
            The path and one sentence on why it was chosen.
        """
        if self.input_path != "auto":
            return InputPathChoice(self.input_path, f"input_path={self.input_path!r} was requested")
        p_max = self.p if p_max is None else p_max
        n_active = 1.0 if self.data == "exactly-one" else self.n_features * p_max
        return _auto_input_path(platform or jax.default_backend(), n_active, models_together)

    def resolved_input_path(self, p_max: float | None = None, models_together: int = 1) -> InputPath:
        """The path of :meth:`input_path_choice` on this process's default platform.

        Args:
            p_max: The largest p the runs train at (default: ``p``).
            models_together: Models ``vmap``-ed together in one step.

        Returns:
            ``"sparse"`` or ``"dense"``.
        """
        return self.input_path_choice(p_max, models_together).path


# Any config class's traced values (its own hyper_type NamedTuple): a config subclass
# that declares more axes has a Hyper of its own.
HyperValues = tuple
Hyper = hyper_type(TrainConfig)
Hyper.__module__ = __name__
Hyper.__doc__ = """Per-model values of :class:`TrainConfig`'s traced fields (:func:`ccjax.engine.traced`),
which may differ under ``vmap``: p, lr, weight_decay, scale, mixing (the family's index
in :data:`ccjax.MIXING_NAMES`) and mixing_rank (the rank of the low-rank families).

Attributes:
    p: The feature probability, a float32 scalar (stacked: one per model).
    lr: The peak learning rate, float32.
    weight_decay: The AdamW weight decay, float32.
    scale: The fixed mixing scale s (unused with ``learn_scale``), float32.
    mixing: The mixing family's index in :data:`ccjax.MIXING_NAMES`, int32.
    mixing_rank: The rank of the low-rank families, int32.
"""
