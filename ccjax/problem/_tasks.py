"""A task is one object: its labels, its loss, its naive reference and its exact hooks.

Strategy-object style (as optax's transformations or diffrax's solvers): a frozen
dataclass whose methods the core calls; a field is a static task parameter, and a task
is hashable, so it can be a static ``jit`` argument. :class:`MixedReLU`
(:data:`MIXED_RELU`), the paper's labels ``relu(x) + s M x`` under MSE, is the default
everywhere and declares every hook.

Required: :meth:`Task.labels`. Default: :meth:`Task.sample_loss` (squared error, mean
over features) and :meth:`Task.summed_loss`. Optional exact hooks, ``None`` on
:class:`Task`; the core uses a hook only when the task declares it:

==============================  ===========================================  ===========================
hook                            what uses it                                 without it
==============================  ===========================================  ===========================
``one_feature``                 exact ``c_1`` in :func:`ccjax.loss_curve`,   ``c_1`` by Monte Carlo on
                                :func:`ccjax.one_feature_loss`               exactly-1 samples; the exact
                                                                             one-feature functions raise
``control_variate_parts`` +     the control variate of ``c_k``, k >= 2       plain Monte Carlo on
``additive_loss``               (needs ``one_feature``: its mean is k c_1)   exactly-k samples
``loss_bound_slope``            skipping k of negligible binomial weight     every k of non-zero weight
                                                                             is estimated
``sparse_sse``                  the sparse training/evaluation loss path     the exact dense path
                                (:func:`ccjax.batch_loss`)
``loss_split``                  the ReLU/mixing split of the loss that       ``relu_term`` is the whole
                                training logs (``History.relu_term``,        loss, ``mixing_term`` 0
                                ``mixing_term``)
==============================  ===========================================  ===========================

The labels see ``scaled_mixing`` (the model's ``s M``); a task may ignore it. Training
(:func:`ccjax.train`, :func:`ccjax.sweep`, ``task=``) and evaluation
(:func:`ccjax.loss_curve`, ``task=``) take any task. Not routed through tasks:
:func:`ccjax.loss_terms` (the ReLU/mixing split of the paper's labels),
:mod:`ccjax.baselines` and :mod:`ccjax.analysis`, which are about the CC labels by nature.
"""

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from .._checks import check_width
from .._linalg import matmul
from .._types import AnyArray, Array, Float
from ._model import FeatureMLP, forward

if TYPE_CHECKING:
    from ._data import SparseBatch

HOOKS = ("one_feature", "control_variate_parts", "additive_loss", "loss_bound_slope", "sparse_sse", "loss_split")


class OneFeature(NamedTuple):
    """Exact moments of a model's loss L given exactly one active feature."""

    c1: Float[Array, ""]  # E[L | k = 1]
    second_moment: Float[Array, ""]  # E[L^2 | k = 1]


@dataclasses.dataclass(frozen=True)
class Task:
    """Labels and per-sample loss; subclass, override :meth:`labels`, and declare hooks.

    Declaring a hook (a method named as in :data:`HOOKS`) promises that it is exact for
    this task's labels and loss; the table in the module docstring says what each one
    replaces. ``control_variate_parts`` and ``additive_loss`` come together, and need
    ``one_feature``. A subclass that redefines ``labels`` or ``sample_loss`` must restate
    (or set to None) every hook, and ``summed_loss``, it would otherwise inherit.
    """

    one_feature: ClassVar[Any] = None
    control_variate_parts: ClassVar[Any] = None
    additive_loss: ClassVar[Any] = None
    loss_bound_slope: ClassVar[Any] = None
    sparse_sse: ClassVar[Any] = None
    loss_split: ClassVar[Any] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A subclass that redefines the labels or the loss must restate every inherited
        # exact path (or set it to None): an inherited one would silently be wrong.
        if any(name in cls.__dict__ for name in ("labels", "sample_loss")):
            stale = [name for name in HOOKS if name not in cls.__dict__ and getattr(cls, name) is not None]
            own_loss = "sample_loss" in cls.__dict__ and "summed_loss" not in cls.__dict__
            if own_loss and cls.summed_loss is not Task.summed_loss:
                stale.append("summed_loss")
            if stale:
                raise TypeError(
                    f"{cls.__name__} redefines its labels or loss but inherits {stale}; "
                    "redefine them, or set each to None (the generic path)"
                )
        if (cls.control_variate_parts is None) != (cls.additive_loss is None):
            raise TypeError(f"{cls.__name__}: declare control_variate_parts and additive_loss together")
        if cls.additive_loss is not None and cls.one_feature is None:
            raise TypeError(f"{cls.__name__}: the control variate needs one_feature (its mean is k c_1)")

    def labels(
        self, x: Float[Array, "batch n_features"], scaled_mixing: Float[Array, "n_features n_features"]
    ) -> Float[Array, "batch n_features"]:
        """The target of each input row."""
        raise NotImplementedError

    def sample_loss(
        self, prediction: Float[Array, "batch n_features"], target: Float[Array, "batch n_features"]
    ) -> Float[Array, " batch"]:
        """Each row's loss; L is its mean over rows. Default: mean squared error over features."""
        return jnp.mean((prediction - target) ** 2, axis=-1)

    def summed_loss(
        self, prediction: Float[Array, "batch n_features"], target: Float[Array, "batch n_features"]
    ) -> Float[Array, ""]:
        """``n_features`` times the sum of :meth:`sample_loss` over rows (an SSE for MSE)."""
        return prediction.shape[-1] * jnp.sum(self.sample_loss(prediction, target))

    def naive_loss_per_feature(self, n_features: int, d_mlp: int) -> float | None:
        """L/p of the task's naive model, where known analytically (else None)."""
        return None

    def declared_hooks(self) -> tuple[str, ...]:
        """The exact hooks this task declares."""
        return tuple(name for name in HOOKS if getattr(self, name) is not None)


def logged_terms(
    task: Task,
    params: FeatureMLP,
    x: Float[Array, "batch n_features"],
    mixing: Float[Array, "n_features n_features"],
    scale,
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """What training logs of a dense batch: the task's ``loss_split``, or (L, 0) without it."""
    if task.loss_split is not None:
        return task.loss_split(params, x, mixing, scale)
    prediction = forward(params, x)
    return jnp.mean(task.sample_loss(prediction, task.labels(x, scale * mixing))), jnp.float32(0.0)


def mixed_relu_labels(
    x: Float[Array, "batch n_features"], mixing: Float[Array, "n_features n_features"], scale=1.0
) -> Float[Array, "batch n_features"]:
    """``relu(x) + scale * M x`` for row-vector inputs (paper §2)."""
    return jax.nn.relu(x) + scale * matmul(x, mixing.T)


def unit_squared_errors(
    params: FeatureMLP, scaled_mixing: Float[AnyArray, "n_features n_features"]
) -> Float[Array, "2 n_features"]:
    """``|f(±e_j) - y(±e_j)|^2`` for the unit inputs ``+e_j`` (row 0) and ``-e_j`` (row 1).

    Along one feature the model is linear on each side of 0, so an input ``v e_j`` has
    squared error ``v^2`` times row 0 (v > 0) or row 1 (v < 0) at column j.
    """
    n_features = params.w_in.shape[0]
    mixing_columns = scaled_mixing.T  # row j is M[:, j], the label a unit x_j adds
    both_signs = jax.nn.relu(jnp.concatenate([params.w_in, -params.w_in]))  # rows j, then n + j
    unit_label = jnp.concatenate([jnp.eye(n_features, dtype=params.w_out.dtype) + mixing_columns, -mixing_columns])
    return jnp.sum((matmul(both_signs, params.w_out) - unit_label) ** 2, axis=1).reshape(2, n_features)


@dataclasses.dataclass(frozen=True)
class MixedReLU(Task):
    """The paper's task: labels ``relu(x) + s M x``, MSE (docs/paper.md §2–4), every hook."""

    def labels(self, x, scaled_mixing):
        return mixed_relu_labels(x, scaled_mixing)

    def summed_loss(self, prediction, target):
        return jnp.sum((prediction - target) ** 2)

    def naive_loss_per_feature(self, n_features: int = 100, d_mlp: int = 50) -> float:
        """``(n - d)/n · 1/6`` on clean labels (paper §5): 0.0833 at n = 100, d = 50."""
        check_width(d_mlp, n_features)
        return (n_features - d_mlp) / n_features / 6.0

    def one_feature(self, params: FeatureMLP, scaled_mixing) -> OneFeature:
        """The feature j is uniform, v ~ U[-1, 1]: the loss is ``v^2`` times a unit squared
        error over n outputs, with ``E[v^2; v > 0] = 1/6`` and ``E[v^4; v > 0] = 1/10``."""
        n = params.w_in.shape[0]
        unit_sq = unit_squared_errors(params, scaled_mixing)
        return OneFeature(unit_sq.sum() / (6.0 * n**2), jnp.sum(unit_sq**2) / (10.0 * n**3))

    def control_variate_parts(self, params: FeatureMLP, scaled_mixing) -> Float[Array, "2 n_features"]:
        return unit_squared_errors(params, scaled_mixing)

    def additive_loss(self, unit_sq: Float[Array, "2 n_features"], x: Float[Array, "batch n_features"]):
        """``A(x) = sum_i loss(x_i e_i)``: each active feature alone; ``E[A | k] = k c_1``."""
        return (matmul(jax.nn.relu(x) ** 2, unit_sq[0]) + matmul(jax.nn.relu(-x) ** 2, unit_sq[1])) / x.shape[-1]

    def loss_split(
        self,
        params: FeatureMLP,
        x: Float[Array, "batch n_features"],
        mixing: Float[Array, "n_features n_features"],
        scale,
    ) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """The paper's split of L (docs/paper.md §3): the ReLU term ``mean (f - relu(x))^2``
        and the mixing term ``mean(-2 (f - relu(x)) (s M x) + (s M x)^2)``; they sum to L."""
        relu_error = forward(params, x) - jax.nn.relu(x)
        mixed = scale * matmul(x, mixing.T)
        return jnp.mean(relu_error**2), jnp.mean(-2.0 * relu_error * mixed + mixed**2)

    def loss_bound_slope(self, params: FeatureMLP, scaled_mixing) -> Float[Array, ""]:
        """B with ``c_k <= k B``: ``|f(x)| <= ||W_in|| ||W_out|| |x|`` (ReLU is 1-Lipschitz,
        f(0) = 0), ``|y| <= (1 + ||s M||) |x|`` and ``E|x|^2 = k/3`` given k actives."""
        n_features = params.w_in.shape[0]
        spectral = lambda a: jnp.linalg.norm(a, ord=2)  # noqa: E731
        slope = spectral(params.w_in) * spectral(params.w_out) + 1.0 + spectral(scaled_mixing)
        return slope**2 / (3.0 * n_features)

    def sparse_sse(
        self, params: FeatureMLP, batch: "SparseBatch", scaled_mixing, layout, multi_capacity: int
    ) -> Float[Array, ""]:
        """SSE of a sparse batch: one-feature rows from :func:`unit_squared_errors`, rows with
        two or more actives compacted (``layout``, :func:`ccjax.loss.batch_loss`) and run densely."""
        n_features = params.w_in.shape[0]
        v, f = batch.values, batch.features
        mixing_columns = scaled_mixing.T  # row f is M[:, f], the label a unit x_f adds

        # One active feature f with value v: error = |v| * (relu(±W_in[f]) W_out - label[f, ±]).
        unit_sq = unit_squared_errors(params, scaled_mixing).reshape(-1)[jnp.where(v > 0, f, n_features + f)]
        single_sse = jnp.sum(jnp.where(layout.count == 1, v * v * unit_sq, 0.0))

        # Two or more active features: gather them into compact rows and run the MLP.
        d_mlp, dtype = params.w_in.shape[1], params.w_in.dtype
        pre = jnp.zeros((multi_capacity, d_mlp), dtype).at[layout.slot].add(v[:, None] * params.w_in[f], mode="drop")
        target = jnp.zeros((multi_capacity, n_features), dtype)
        target = target.at[layout.slot].add(v[:, None] * mixing_columns[f], mode="drop")
        target = target.at[layout.slot, f].add(jax.nn.relu(v), mode="drop")
        multi_sse = jnp.sum((matmul(jax.nn.relu(pre), params.w_out) - target) ** 2)
        return single_sse + multi_sse


MIXED_RELU = MixedReLU()
