"""A task is one object: its inputs, labels, loss, naive reference and exact hooks.

Strategy-object style (as optax's transformations or diffrax's solvers): a frozen
dataclass whose methods the core calls; a field is a static task parameter, and a task
is hashable, so it can be a static ``jit`` argument. One abstraction serves the paper and
the search for computation in superposition (:mod:`ccjax.cis`): :class:`MixedReLU`
(:data:`MIXED_RELU`), the paper's labels ``relu(x) + s M x`` under MSE, is the default
everywhere and declares every hook; each search task is a :class:`Task` too.

Required: :meth:`Task.labels`. Defaults: inputs U[-1, 1] when active
(:meth:`Task.sample_inputs`, :meth:`Task.input_values`), the reduced MLP
(``family = "mlp"``), :meth:`Task.sample_loss` (squared error, mean over outputs),
:meth:`Task.summed_loss`, and the generic naive model (:meth:`Task.naive_predictions`).
**Units:** :meth:`Task.naive_loss` is L, the expected loss at feature probability p
(never L/p); :func:`ccjax.naive_loss_per_feature` divides by p.

Optional exact hooks, ``None`` on :class:`Task`; the core uses a hook only when the task
declares it:

==============================  ===========================================  ===========================
hook                            what uses it                                 without it
==============================  ===========================================  ===========================
``one_feature``                 exact ``c_1`` in :func:`ccjax.loss_curve`,   ``c_1`` by Monte Carlo on
                                :func:`ccjax.measure.one_feature_loss`       exactly-1 samples; the exact
                                                                             one-feature functions raise
``control_variate_parts`` +     the control variate of ``c_k``, k >= 2       plain Monte Carlo on
``additive_loss``               (needs ``one_feature``: its mean is k c_1)   exactly-k samples
``loss_bound_slope``            skipping k of negligible binomial weight     every k of non-zero weight
                                                                             is estimated
``sparse_sse``                  the sparse training/evaluation loss path     the exact dense path
                                (:func:`ccjax.problem.batch_loss`)
``compact_dense_sse``           the dense training path on the non-empty     the dense path over every
                                rows only (empty rows cost 0; fewer bytes)   row of the batch
``loss_split``                  the ReLU/mixing split of the loss that       the ReLU term is the whole
                                training logs (``History.relu_term_per_      loss, the mixing term 0
                                feature``, ``mixing_term_per_feature``)
==============================  ===========================================  ===========================

The labels see ``scaled_mixing`` (the model's ``s M``); a task may ignore it, and the
search tasks do (their trainer passes ``None``). Training (:func:`ccjax.train`,
:func:`ccjax.sweep`, ``task=``) takes any task whose model is the reduced MLP on the
default inputs (:meth:`Task.check_feature_mlp`); :func:`ccjax.cis.train_models` takes
every task. Not routed through tasks: :func:`ccjax.loss_terms` (the ReLU/mixing split of
the paper's labels), :mod:`ccjax.baselines` and :mod:`ccjax.analysis`, which are about
the CC labels by nature.
"""

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from .._checks import check_width
from .._linalg import matmul
from .._types import Array, Float, PRNGKeyArray
from ._data import sample_sparse, to_dense
from ._model import FeatureMLP, forward
from ._sparse_sse import direct_sparse_sse, gram_sparse_sse, unit_squared_errors

if TYPE_CHECKING:
    from ._data import SparseBatch

HOOKS = (
    "one_feature",
    "control_variate_parts",
    "additive_loss",
    "loss_bound_slope",
    "sparse_sse",
    "compact_dense_sse",
    "loss_split",
)


class OneFeature(NamedTuple):
    """Exact moments of a model's loss L given exactly one active feature.

    ``c_1`` of the evaluation by the number of active features (docs/paper.md §4).

    Attributes:
        c1: ``E[L | k = 1]``, a scalar in units of L (the per-sample loss, mean over outputs).
        second_moment: ``E[L^2 | k = 1]``, a scalar.
    """

    c1: Float[Array, ""]  # E[L | k = 1]
    second_moment: Float[Array, ""]  # E[L^2 | k = 1]


@dataclasses.dataclass(frozen=True)
class Task:
    """Inputs, labels, loss and naive reference; subclass, override :meth:`labels`, and
    declare hooks.

    ``name`` and ``description`` label a task in registries and manifests
    (:data:`ccjax.cis.SEARCH_TASKS`); ``family`` names its model
    (:data:`ccjax.cis.MODEL_FAMILIES`; ``"mlp"`` is the paper's reduced MLP). Declaring a
    hook (a method named as in :data:`HOOKS`) promises that it is exact for this task's
    labels and loss; the table in the module docstring says what each one replaces.
    ``control_variate_parts`` and ``additive_loss`` come together, and need
    ``one_feature``. A subclass that redefines ``labels`` or ``sample_loss`` must restate
    (or set to None) every hook, and ``summed_loss``, it would otherwise inherit.

    Attributes:
        name: The task's name in registries and manifests (a class variable).
        description: One line on the task's labels, inputs and loss (a class variable).
        family: The model family it trains (a class variable; ``"mlp"``: the reduced MLP).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    family: ClassVar[str] = "mlp"

    one_feature: ClassVar[Any] = None
    control_variate_parts: ClassVar[Any] = None
    additive_loss: ClassVar[Any] = None
    loss_bound_slope: ClassVar[Any] = None
    sparse_sse: ClassVar[Any] = None
    compact_dense_sse: ClassVar[Any] = None
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
        self, x: Float[Array, "batch n_features"], scaled_mixing: Float[Array, "n_features n_features"] | None
    ) -> Float[Array, "batch n_out"]:
        """The target of each input row (``scaled_mixing``: the model's ``s M``, or None).

        Args:
            x: Input rows, (batch, n_features).
            scaled_mixing: The model's label map ``s M``, (n_features, n_features), or None for a
                task that ignores it.

        Returns:
            The labels, (batch, n_out).
        """
        raise NotImplementedError

    def sample_loss(
        self, prediction: Float[Array, "batch n_out"], target: Float[Array, "batch n_out"]
    ) -> Float[Array, " batch"]:
        """Each row's loss; L is its mean over rows. Default: mean squared error over outputs.

        Args:
            prediction: Model outputs, (batch, n_out).
            target: Labels, (batch, n_out).

        Returns:
            Each row's loss, (batch,), in units of L.
        """
        return jnp.mean((prediction - target) ** 2, axis=-1)

    def summed_loss(
        self, prediction: Float[Array, "batch n_out"], target: Float[Array, "batch n_out"]
    ) -> Float[Array, ""]:
        """``n_out`` times the sum of :meth:`sample_loss` over rows (an SSE for MSE).

        Args:
            prediction: the model outputs and ``target`` the labels, as for :meth:`sample_loss`.

        Returns:
            The scalar summed loss, ``batch * n_out`` times L.
        """
        return prediction.shape[-1] * jnp.sum(self.sample_loss(prediction, target))

    def n_outputs(self, n_features: int) -> int:
        """How many outputs the model predicts (the labels' width).

        Args:
            n_features: Number of input features n.

        Returns:
            n_out; the default is ``n_features``.
        """
        return n_features

    def input_values(self, uniform: Float[Array, "batch n_features"]) -> Float[Array, "batch n_features"]:
        """The inputs, from features that are U[-1, 1] when active and 0 otherwise (paper §4).

        Args:
            uniform: The features, (batch, n_features): U[-1, 1] when active, 0 otherwise.

        Returns:
            The model's inputs, (batch, n_features); the default returns ``uniform`` unchanged.
        """
        return uniform

    def sample_inputs(
        self, key: PRNGKeyArray, batch: int, n_features: int, p, capacity: int, axis_name: str | None = None
    ) -> Float[Array, "batch n_features"]:
        """Each feature active with probability ``p``, its value :meth:`input_values` of a
        U[-1, 1] draw. Drawn sparsely by :func:`ccjax.sample_sparse` (exact at any
        ``capacity``; :func:`ccjax.problem.default_capacity` at the largest p makes the
        dense fallback rare).

        Args:
            key: PRNG key.
            batch: Rows (samples) to draw.
            n_features: Features per row.
            p (float | Array): Feature probability in (0, 1]: a float or a (possibly traced) scalar.
            capacity: Sparse entry slots (static).
            axis_name: The enclosing ``vmap`` axis over models, or None (:func:`ccjax.problem.to_dense`).

        Returns:
            The inputs, (batch, n_features).
        """
        sparse = sample_sparse(key, batch, n_features, p, capacity)
        return self.input_values(to_dense(sparse, batch, n_features, axis_name))

    def naive_constant(self, p) -> Float[Array, " n_out"] | float:
        """What the naive model predicts for an output it does not compute: 0 (no bias).

        Args:
            p (float | Array): Feature probability (a task whose best constant depends on it may use it).

        Returns:
            The constant, a scalar or one per output, (n_out,).
        """
        return 0.0

    def served_outputs(self, n_features: int, d_mlp: int) -> Array:
        """The outputs the naive model computes: the first ``d_mlp`` (all alike by symmetry).

        Args:
            n_features: Number of input features n.
            d_mlp: Number of neurons, one per computed output.

        Returns:
            A boolean mask, (n_out,), True at the computed outputs.
        """
        return jnp.arange(self.n_outputs(n_features)) < d_mlp

    def naive_predictions(
        self, target: Float[Array, "batch n_out"], n_features: int, d_mlp: int, p
    ) -> Float[Array, "batch n_out"]:
        """The naive model's output (paper §5, generalised): the ``d_mlp`` served labels
        exact, the best constant elsewhere.

        Args:
            target: The labels, (batch, n_out).
            n_features: Number of input features n.
            d_mlp: Number of neurons (served outputs).
            p (float | Array): Feature probability, passed to :meth:`naive_constant`.

        Returns:
            The naive predictions, (batch, n_out).
        """
        return jnp.where(self.served_outputs(n_features, d_mlp)[None, :], target, self.naive_constant(p))

    def naive_loss(self, n_features: int, d_mlp: int, p: float) -> float | None:
        """L (not L/p) of the naive model at feature probability ``p``, where known in closed
        form; None otherwise (:func:`ccjax.cis.naive_monte_carlo` estimates it).

        Args:
            n_features: Number of input features n.
            d_mlp: Number of neurons.
            p: Feature probability in (0, 1].

        Returns:
            L, or None where no closed form is known (the default).
        """
        return None

    def declared_hooks(self) -> tuple[str, ...]:
        """The exact hooks this task declares.

        Returns:
            The names of the hooks that are not None, in the order of :data:`HOOKS`.
        """
        return tuple(name for name in HOOKS if getattr(self, name) is not None)

    def check_feature_mlp(self, n_features: int) -> None:
        """Raise unless the task trains the paper's reduced MLP on the default inputs, as
        :func:`ccjax.train` and :func:`ccjax.sweep` do (else: :func:`ccjax.cis.train_models`).

        Args:
            n_features: Number of input features n of the run.

        Raises:
            ValueError: If the task's model family is not ``"mlp"``, it has other than
                ``n_features`` outputs, or it draws its own inputs.
        """
        reasons = []
        if self.family != "mlp":
            reasons.append(f"its model family is {self.family!r}")
        if self.n_outputs(n_features) != n_features:
            reasons.append(f"it has {self.n_outputs(n_features)} outputs for {n_features} features")
        if type(self).input_values is not Task.input_values or type(self).sample_inputs is not Task.sample_inputs:
            reasons.append("it draws its own inputs")
        if reasons:
            raise ValueError(
                f"{type(self).__name__} cannot be trained by ccjax.train/ccjax.sweep, which train the reduced "
                f"MLP relu(x W_in) W_out on U[-1, 1] inputs: {'; '.join(reasons)}. "
                "Train it with ccjax.cis.train_models."
            )


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
    """``relu(x) + scale * M x`` for row-vector inputs (paper §2).

    Args:
        x: Input rows, (batch, n_features).
        mixing: The mixing matrix M, (n_features, n_features) (or ``s M`` with ``scale`` 1).
        scale: The mixing scale s (a float or scalar array; default 1).

    Returns:
        The labels ``relu(x) + scale * x @ M.T``, (batch, n_features).
    """
    return jax.nn.relu(x) + scale * matmul(x, mixing.T)


@jax.custom_vjp
def mixed_relu_sse(
    params: FeatureMLP, x: Float[Array, "rows n_features"], scaled_mixing: Float[Array, "n_features n_features"]
) -> Float[Array, ""]:
    """Sum of squared errors of ``relu(x W_in) W_out`` against ``relu(x) + x (s M)ᵀ``, with a
    hand-written backward pass that moves fewer bytes than autodiff's (docs/paper.md §2–4).

    The forward pass reads x once for both of its matmuls (``x [W_in | (s M)ᵀ]``). The
    backward pass never scales the (rows, n) error by the loss's cotangent (it scales the
    small weight gradients instead) and keeps the hidden activations, not the
    pre-activations. The products are autodiff's; only float32 rounding order differs.

    Args:
        params: One model's feature-space weights.
        x: Dense input rows, (rows, n_features).
        scaled_mixing: The label map ``s M``, (n_features, n_features).

    Returns:
        The scalar SSE over rows and outputs.
    """
    return _mixed_relu_sse_forward(params, x, scaled_mixing)[0]


def _mixed_relu_sse_forward(params, x, scaled_mixing):
    d_mlp = params.w_in.shape[1]
    joined = matmul(x, jnp.concatenate([params.w_in.T, scaled_mixing]).T)  # [x W_in | x (s M)ᵀ]
    hidden = jax.nn.relu(joined[:, :d_mlp])
    error = matmul(hidden, params.w_out) - (jax.nn.relu(x) + joined[:, d_mlp:])
    return jnp.sum(error * error), (hidden, error, x, params.w_out)


def _mixed_relu_sse_backward(residuals, cotangent):
    hidden, error, x, w_out = residuals
    two = 2.0 * cotangent  # d(sum error²) = 2 error; the factor goes on the (small) results
    d_pre = jnp.where(hidden > 0, matmul(error, w_out.T), 0.0)  # relu' = 1 where the neuron fired
    grads = FeatureMLP(w_in=two * matmul(x.T, d_pre), w_out=two * matmul(hidden.T, error))
    return grads, jnp.zeros_like(x), -two * matmul(error.T, x)


mixed_relu_sse.defvjp(_mixed_relu_sse_forward, _mixed_relu_sse_backward)


@dataclasses.dataclass(frozen=True)
class MixedReLU(Task):
    """The paper's task: labels ``relu(x) + s M x``, MSE (docs/paper.md §2–4), every hook."""

    name = "mixed-relu"
    description = "y = relu(x) + s M x, x_i ~ U[-1, 1] w.p. p; MSE (the paper's CC task)"

    def labels(self, x, scaled_mixing):
        """``relu(x) + s M x`` (docs/paper.md §2–3).

        Args:
            x (Array): Input rows, (batch, n_features).
            scaled_mixing (Array): The model's label map ``s M``, (n_features, n_features).

        Returns:
            (Array): The labels, (batch, n_features).

        Raises:
            ValueError: If ``scaled_mixing`` is None.
        """
        if scaled_mixing is None:
            raise ValueError("the paper's labels relu(x) + s M x need the scaled mixing matrix s M")
        return mixed_relu_labels(x, scaled_mixing)

    def summed_loss(self, prediction, target):
        """The sum of squared errors over rows and outputs (:meth:`Task.summed_loss` for MSE).

        Args:
            prediction (Array): Model outputs, (batch, n_features).
            target (Array): Labels, (batch, n_features).

        Returns:
            (Array): The scalar SSE, ``batch * n_features`` times L.
        """
        return jnp.sum((prediction - target) ** 2)

    def naive_loss(self, n_features: int, d_mlp: int, p: float) -> float:
        """``(n - d)/n · p/6`` on clean labels (paper §5): L/p = 0.0833 at n = 100, d = 50.
        Each of the ``n - d`` outputs the naive model leaves at 0 misses ``relu(x_j)``, with
        ``E[relu(x_j)^2] = p/6``.

        Args:
            n_features: Number of input features n.
            d_mlp: Number of neurons d, at most ``n_features``.
            p: Feature probability in (0, 1].

        Returns:
            L of the naive model on clean labels (the mixing is not counted).

        Raises:
            ValueError: If ``d_mlp`` is negative or exceeds ``n_features``.
        """
        check_width(d_mlp, n_features)
        return (n_features - d_mlp) / n_features * p / 6.0

    def one_feature(self, params: FeatureMLP, scaled_mixing) -> OneFeature:
        """The feature j is uniform, v ~ U[-1, 1]: the loss is ``v^2`` times a unit squared
        error over n outputs, with ``E[v^2; v > 0] = 1/6`` and ``E[v^4; v > 0] = 1/10``.

        Args:
            params: One model's feature-space weights.
            scaled_mixing (Array): The label map ``s M``, (n_features, n_features).

        Returns:
            ``c_1 = E[L | k = 1]`` and ``E[L^2 | k = 1]`` (docs/paper.md §4).
        """
        n = params.w_in.shape[0]
        unit_sq = unit_squared_errors(params, scaled_mixing)
        return OneFeature(unit_sq.sum() / (6.0 * n**2), jnp.sum(unit_sq**2) / (10.0 * n**3))

    def control_variate_parts(self, params: FeatureMLP, scaled_mixing) -> Float[Array, "2 n_features"]:
        """What :meth:`additive_loss` needs: the :func:`unit_squared_errors` of the model.

        Args:
            params: One model's feature-space weights.
            scaled_mixing (Array): The label map ``s M``, (n_features, n_features).

        Returns:
            The unit squared errors, (2, n_features).
        """
        return unit_squared_errors(params, scaled_mixing)

    def additive_loss(self, unit_sq: Float[Array, "2 n_features"], x: Float[Array, "batch n_features"]):
        """``A(x) = sum_i loss(x_i e_i)``: each active feature alone; ``E[A | k] = k c_1``.

        Args:
            unit_sq: The model's :meth:`control_variate_parts`, (2, n_features).
            x: Input rows, (batch, n_features).

        Returns:
            (Array): A of each row, (batch,), in units of L (per-sample loss, mean over outputs).
        """
        return (matmul(jax.nn.relu(x) ** 2, unit_sq[0]) + matmul(jax.nn.relu(-x) ** 2, unit_sq[1])) / x.shape[-1]

    def loss_split(
        self,
        params: FeatureMLP,
        x: Float[Array, "batch n_features"],
        mixing: Float[Array, "n_features n_features"],
        scale,
    ) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """The paper's split of L (docs/paper.md §3): the ReLU term ``mean (f - relu(x))^2``
        and the mixing term ``mean(-2 (f - relu(x)) (s M x) + (s M x)^2)``; they sum to L.

        Args:
            params: One model's feature-space weights.
            x: Dense input rows, (batch, n_features).
            mixing: The unscaled mixing matrix M, (n_features, n_features).
            scale (float | Array): The mixing scale s (a float or scalar array).

        Returns:
            ``(relu_term, mixing_term)``, scalars in units of L (not L/p).
        """
        relu_error = forward(params, x) - jax.nn.relu(x)
        mixed = scale * matmul(x, mixing.T)
        return jnp.mean(relu_error**2), jnp.mean(-2.0 * relu_error * mixed + mixed**2)

    def loss_bound_slope(self, params: FeatureMLP, scaled_mixing) -> Float[Array, ""]:
        """B with ``c_k <= k B``: ``|f(x)| <= ||W_in|| ||W_out|| |x|`` (ReLU is 1-Lipschitz,
        f(0) = 0), ``|y| <= (1 + ||s M||) |x|`` and ``E|x|^2 = k/3`` given k actives.

        Args:
            params: One model's feature-space weights.
            scaled_mixing (Array): The label map ``s M``, (n_features, n_features).

        Returns:
            B, a scalar in units of L per active feature.
        """
        n_features = params.w_in.shape[0]
        spectral = lambda a: jnp.linalg.norm(a, ord=2)  # noqa: E731
        slope = spectral(params.w_in) * spectral(params.w_out) + 1.0 + spectral(scaled_mixing)
        return slope**2 / (3.0 * n_features)

    def compact_dense_sse(self, params: FeatureMLP, x, scaled_mixing) -> Float[Array, ""]:
        """SSE of the batch's non-empty rows, :func:`mixed_relu_sse` (an empty row's error is 0:
        the MLP has no biases and its label is 0).

        Args:
            params: One model's feature-space weights.
            x (Array): The non-empty rows, compacted, (rows, n_features); padding rows are 0.
            scaled_mixing (Array): The label map ``s M``, (n_features, n_features).

        Returns:
            The scalar SSE, ``batch_size * n_features`` times L for the whole batch.
        """
        return mixed_relu_sse(params, x, scaled_mixing)

    def sparse_sse(
        self, params: FeatureMLP, batch: "SparseBatch", scaled_mixing, layout, multi_capacity: int
    ) -> Float[Array, ""]:
        """SSE of a sparse batch: one-feature rows from a per-feature table, rows with two or more
        actives run through the MLP, in the Gram form where the layout lists the extras and in the
        direct form otherwise (:mod:`ccjax.problem._sparse_sse`).

        Args:
            params: One model's feature-space weights.
            batch: The model's sparse batch.
            scaled_mixing (Array): The label map ``s M``, (n_features, n_features).
            layout (RowLayout): The batch's row layout (:func:`ccjax.problem.row_layout`, made by
                :func:`ccjax.problem.batch_loss`).
            multi_capacity: Compact rows available for rows with two or more actives (static).

        Returns:
            The scalar SSE, ``batch_size * n_features`` times L; exact when the batch did not overflow
                and its rows fit the layout's capacities (else ``batch_loss`` falls back).
        """
        if layout.firsts is None:
            return direct_sparse_sse(params, batch, scaled_mixing, layout, multi_capacity)
        return gram_sparse_sse(params, batch, scaled_mixing, layout)


MIXED_RELU = MixedReLU()
