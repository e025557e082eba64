"""Training throughput: K models in one jitted sweep vs one after another.

    python -m benchmarks.throughput                                    # K = 1, 8, 64, 256, paper shapes
    python -m benchmarks.throughput --ks 1,64 --modes sweep --no-cost  # quicker
    python -m benchmarks.throughput --torch                            # also time a PyTorch loop

How long: the default run (16 timings, mostly K = 256) takes about 6.5 minutes on a
2-core CPU, and several times that when other jobs share the machine: the quicker line
above (4 timings) took 7-8 minutes with a load average of 15-20 on 2 cores. A progress
line with an ETA goes to stderr before each timing.

Reports model-steps per second (training steps of one model per second of wall time,
compile excluded), compile time, device and matmul precision. "sequential" trains the
same K models one after another, each with the per-model jitted ``ccjax.train``
(compiled once, reused, after one untimed warm-up run). A sweep is timed from the end
of its first 100-step chunk. The optional PyTorch reference is a plain single-threaded
training loop written for this benchmark (same shapes, data and AdamW), standing in for
the authors' PyTorch code; it needs ``torch`` installed.

It also reports, on any machine (no accelerator needed), what the accelerator layout (all of a device's
models vmapped together, dense path) costs per model-step according to XLA's cost
analysis of the compiled training step: FLOPs and bytes accessed, against the step's
matmul minimum, and the model-steps/s those imply at the published fp32 peaks of an
H100 and a TPU v5e. A regression that adds work to every step shows up here.

And it times one model's sparse training step in its Gram form (the default) and in the
direct form it replaced, in the same process (``--no-forms`` skips this), so the two are
compared on the same machine under the same load.
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp

import ccjax
from ccjax.engine import hyper_from_config, init_run, shapes_for, train_step
from ccjax.io import environment_info
from experiments._cli import ArgumentParser, HelpFormatter, format_duration, positive_int, use_every_cpu_core

MODES = ("sweep", "sequential")
COST_MODELS = 64  # models vmapped together in the step whose cost is analysed
MODELS_AXIS = "group"  # the vmap axis name of the models analysed together, as a sweep names it


class Peak(NamedTuple):
    """A chip's published peak fp32 matmul rate and memory bandwidth."""

    flops_per_s: float
    bytes_per_s: float
    source: str


PEAKS = {
    # NVIDIA H100 SXM5 and H200 SXM datasheets (https://www.nvidia.com/en-us/data-center/h100/,
    # https://www.nvidia.com/en-us/data-center/h200/): FP32 67 TFLOP/s on the CUDA cores
    # (ccjax asks for Precision.HIGHEST, which on GPU is plain fp32, not TF32 tensor cores);
    # HBM3 3.35 TB/s, HBM3e 4.8 TB/s.
    "H100 SXM": Peak(67e12, 3.35e12, "fp32 67 TFLOP/s, 3.35 TB/s"),
    "H200 SXM": Peak(67e12, 4.8e12, "fp32 67 TFLOP/s, 4.8 TB/s"),
    # Google Cloud TPU v5e (https://cloud.google.com/tpu/docs/v5e): 197 TFLOP/s bf16 per
    # chip, HBM2 819 GB/s. No fp32 matmul peak is published; Precision.HIGHEST on TPU
    # runs each fp32 matmul as 6 bf16 passes (jax.lax.Precision's documentation), so
    # the fp32 peak is taken as 197 / 6 = 32.8 TFLOP/s (an upper bound: the non-matmul
    # FLOPs run on the slower vector unit).
    "TPU v5e": Peak(197e12 / 6, 819e9, "bf16 197 TFLOP/s / 6 passes for fp32, 819 GB/s"),
}
# The dense step's bytes per model-step the common path must stay under (XLA's cost analysis
# at paper shapes, default XLA:CPU flags): 19.36 MB before the non-empty rows were compacted,
# 11.97 MB after.
COMMON_PATH_BYTES_CEILING = 12e6


def mlp_matmul_flops(batch_size: int, n_features: int, d_mlp: int) -> int:
    """Forward + backward matmul FLOPs of one step of the n -> d -> n MLP (2 per multiply-add).

    Forward: x W_in and relu(.) W_out, 2 B n d each. Backward: dW_out = hᵀ dy, dh = dy W_outᵀ
    and dW_in = xᵀ dpre, 2 B n d each (no gradient flows into the input x). In all
    10 B n d: 102.4 MFLOP at B = 2048, n = 100, d = 50.
    """
    return 10 * batch_size * n_features * d_mlp


def label_matmul_flops(batch_size: int, n_features: int) -> int:
    """FLOPs of the labels' mixing term x (sM)ᵀ: 2 B n², 41.0 MFLOP at paper shapes."""
    return 2 * batch_size * n_features**2


def step_matmul_minimum(config: ccjax.TrainConfig, rows: int | None = None) -> int:
    """The dense step's unavoidable matmul FLOPs on ``rows`` rows (default: the whole batch):
    the MLP's forward and backward plus the labels."""
    rows = config.batch_size if rows is None else rows
    return mlp_matmul_flops(rows, config.n_features, config.d_mlp) + label_matmul_flops(rows, config.n_features)


def _implied(flops: float, bytes_accessed: float) -> dict:
    """The model-steps/s each chip's peaks allow a step of ``flops`` and ``bytes_accessed``."""
    return {
        name: {
            "compute_bound": peak.flops_per_s / flops,
            "memory_bound": peak.bytes_per_s / bytes_accessed,
            "roofline": min(peak.flops_per_s / flops, peak.bytes_per_s / bytes_accessed),
            "peak": peak.source,
        }
        for name, peak in PEAKS.items()
    }


def _step_cost(shapes, state, hyper, n_models: int, rare_branches: bool) -> tuple[float, float]:
    """XLA's (FLOPs, bytes accessed) per model-step of the vmapped ``train_step`` of ``shapes``."""

    def step(state, hyper, step):
        one = lambda s, h: train_step(shapes, h, s, step, MODELS_AXIS, rare_branches)  # noqa: E731
        return jax.vmap(one, axis_name=MODELS_AXIS)(state, hyper)

    # The state is donated: in the sweep's scan it is updated in place, not copied per step.
    cost = jax.jit(step, donate_argnums=0).lower(state, hyper, jnp.int32(0)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost  # a list of one dict in older jax
    return cost["flops"] / n_models, cost["bytes accessed"] / n_models


def accelerator_step_cost(config: ccjax.TrainConfig, n_models: int = COST_MODELS) -> dict:
    """XLA's cost analysis of one training step of the accelerator layout, per model-step.

    The step is the library's own (``ccjax.engine.train_step``: sample, loss and gradient,
    AdamW update) on the dense path, vmapped over ``n_models`` models with the sweep's
    axis name, as :func:`ccjax.sweep` runs a device's models on GPU/TPU, compiled for this
    machine's backend. Three compilations: the common path (``rare_branches=False``: the
    path a step takes unless a batch overflows a capacity, about once in a million
    model-steps), the step as compiled (XLA counts each ``cond`` as its costlier branch, so
    the rare branches' cost is the difference), and the common path of the dense step
    before the non-empty rows were compacted (``row_capacity=None``).
    """
    config = dataclasses.replace(config, input_path="dense")
    shapes = shapes_for(config)
    hyper = jax.tree.map(lambda leaf: jnp.broadcast_to(leaf, (n_models,)), hyper_from_config(config))
    keys = jax.random.split(jax.random.key(0), n_models)
    state = jax.eval_shape(jax.vmap(lambda key, h: init_run(config, key, h)), keys, hyper)
    flops, bytes_accessed = _step_cost(shapes, state, hyper, n_models, rare_branches=False)
    compiled = _step_cost(shapes, state, hyper, n_models, rare_branches=True)
    before = _step_cost(shapes._replace(row_capacity=None), state, hyper, n_models, rare_branches=False)
    minimum = step_matmul_minimum(config)
    return {
        "n_models": n_models,
        "row_capacity": shapes.row_capacity,
        "flops_per_model_step": flops,  # the common path
        "bytes_per_model_step": bytes_accessed,
        "as_compiled": {"flops": compiled[0], "bytes": compiled[1]},
        "rare_branches": {"flops": compiled[0] - flops, "bytes": compiled[1] - bytes_accessed},
        "whole_batch": {"flops": before[0], "bytes": before[1]},
        "mlp_matmul_flops": mlp_matmul_flops(config.batch_size, config.n_features, config.d_mlp),
        "label_matmul_flops": label_matmul_flops(config.batch_size, config.n_features),
        "matmul_minimum_flops": minimum,
        "flops_over_minimum": flops / minimum,
        "rows_matmul_minimum_flops": step_matmul_minimum(config, shapes.row_capacity),
        "implied_model_steps_per_s": _implied(flops, bytes_accessed),
        "implied_as_compiled": _implied(*compiled),
    }


def print_cost(cost: dict) -> None:
    """Print :func:`accelerator_step_cost`'s report."""
    rows = cost["row_capacity"] or "every"
    print(
        f"accelerator layout ({cost['n_models']} models vmapped, dense path), XLA cost analysis per model-step:\n"
        f"  common path ({rows} rows of the batch run): {cost['flops_per_model_step'] / 1e6:.1f} MFLOP, "
        f"{cost['bytes_per_model_step'] / 1e6:.2f} MB accessed"
    )
    for name, what in (("rare_branches", "the rare branches add, counted as taken"), ("whole_batch", "whole batch")):
        print(f"  {what}: {cost[name]['flops'] / 1e6:.1f} MFLOP, {cost[name]['bytes'] / 1e6:.2f} MB")
    print(
        f"  matmul minimum {cost['matmul_minimum_flops'] / 1e6:.1f} MFLOP on the whole batch (MLP forward+backward "
        f"{cost['mlp_matmul_flops'] / 1e6:.1f} + labels {cost['label_matmul_flops'] / 1e6:.1f}), "
        f"{(cost['rows_matmul_minimum_flops'] or cost['matmul_minimum_flops']) / 1e6:.1f} on the rows run: "
        f"the common path does {cost['flops_over_minimum']:.2f}x the whole batch's"
    )
    for name, rates in cost["implied_model_steps_per_s"].items():
        compiled = cost["implied_as_compiled"][name]["roofline"]
        print(
            f"  at {name} peaks ({rates['peak']}): {rates['compute_bound']:,.0f} model-steps/s compute-bound, "
            f"{rates['memory_bound']:,.0f} memory-bound, roofline {rates['roofline']:,.0f} "
            f"(every branch counted: {compiled:,.0f})"
        )


FORM_STEPS = 400  # steps per timed call of one model's sparse step


def sparse_form_rates(config: ccjax.TrainConfig, repeats: int = 5, steps: int = FORM_STEPS, devices=None) -> dict:
    """Model-steps/s of the training step on the sparse path, in the Gram form and in the direct
    form (the step before it, ``Shapes(extra_capacity=None)``), timed in one process.

    One model per device on every local device (or on ``devices``) at once, not vmapped: the
    programs a CPU sweep runs side by side (its groups hold one model, one device per core). Each form's
    ``train_step`` runs in a compiled scan of ``steps`` steps; the best of ``repeats``
    calls after a warm-up call counts.
    """
    config = dataclasses.replace(config, input_path="sparse")
    shapes, hyper = shapes_for(config), hyper_from_config(config)
    state = init_run(config, jax.random.key(0), hyper)
    states = [jax.device_put(state, device) for device in devices or jax.local_devices()]
    rates = {}
    for form, form_shapes in (("gram", shapes), ("direct", shapes._replace(extra_capacity=None))):

        def scan(state, form_shapes=form_shapes):
            step = lambda s, t: train_step(form_shapes, hyper, s, t)  # noqa: E731
            return jax.lax.scan(step, state, jnp.arange(steps))

        run = jax.jit(scan)
        jax.block_until_ready([run(state) for state in states])
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready([run(state) for state in states])  # dispatched to every device, then awaited
            seconds.append(time.perf_counter() - start)
        rates[form] = len(states) * steps / min(seconds)
    rates["devices"] = len(states)
    return rates


def print_forms(rates: dict) -> None:
    """Print :func:`sparse_form_rates`'s report."""
    print(
        f"sparse step, one model on each of {rates['devices']} devices: Gram form {rates['gram']:,.0f} model-steps/s, "
        f"direct form (the step before) {rates['direct']:,.0f}: {rates['gram'] / rates['direct']:.2f}x"
    )


def _job_work(k: int, steps: int, mode: str) -> float:
    """Rough cost of one timing in model-steps, for the ETA: the sequential mode trains one
    extra warm-up model, and compiling costs about as much as 3,000 model-steps."""
    return (k + (mode == "sequential")) * steps + 3000


def say_progress(done: int, total: int, work_done: float, work_total: float, elapsed: float, what: str) -> None:
    eta = elapsed / work_done * (work_total - work_done) if work_done else float("nan")
    print(
        f"[{done}/{total}] {what}; elapsed {format_duration(elapsed)}, ETA {format_duration(eta)}",
        file=sys.stderr,
        flush=True,
    )


def _sweep_rate(config, k, input_path, group_size):
    """Model-steps/s of one sweep, timed from the end of its first chunk (warm-up)."""
    config = dataclasses.replace(config, input_path=input_path)
    marks = []
    on_progress = lambda progress: marks.append((progress.steps_done, time.perf_counter()))  # noqa: E731
    result = ccjax.sweep(
        config, {"seed": list(range(k))}, chunk_intervals=1, group_size=group_size, on_progress=on_progress
    )
    (first_steps, first_time), (last_steps, last_time) = marks[0], marks[-1]
    return k * (last_steps - first_steps) / (last_time - first_time), result.compile_seconds


def _sequential_rate(config, k, input_path):
    """Model-steps/s training the K models one after another with the jitted ``train``."""
    config = dataclasses.replace(config, input_path=input_path)
    start = time.perf_counter()
    compiled = jax.jit(ccjax.train, static_argnums=0).lower(config, jax.random.key(0)).compile()
    compile_seconds = time.perf_counter() - start
    jax.block_until_ready(compiled(jax.random.key(k)))  # warm-up run, not timed
    start = time.perf_counter()
    for seed in range(k):
        jax.block_until_ready(compiled(jax.random.key(seed)))
    return k * config.total_steps / (time.perf_counter() - start), compile_seconds


def torch_reference_ms_per_step(
    steps: int, batch_size: int = 2048, p: float = 0.01, threads: int = 1, device: str = "cpu"
) -> float:
    """ms per step of a plain PyTorch training loop of the reduced CC model, on ``device``
    (``"cpu"`` with ``threads`` threads, or e.g. ``"cuda"``)."""
    import torch

    torch.set_num_threads(threads)
    gen = torch.Generator(device=device).manual_seed(0)
    n, d = 100, 50
    w_e = torch.randn(n, 1000, generator=gen, device=device)
    w_e = w_e / w_e.norm(dim=1, keepdim=True)
    mixing = torch.eye(n, device=device) - w_e @ w_e.T
    bound_in, bound_out = (6 / d) ** 0.5, (6 / n) ** 0.5
    w_in = torch.nn.Parameter(torch.empty(n, d, device=device).uniform_(-bound_in, bound_in, generator=gen))
    w_out = torch.nn.Parameter(torch.empty(d, n, device=device).uniform_(-bound_out, bound_out, generator=gen))
    optimizer = torch.optim.AdamW([w_in, w_out], lr=3e-3, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)

    def step():
        active = torch.rand(batch_size, n, generator=gen, device=device) < p
        x = torch.where(active, torch.rand(batch_size, n, generator=gen, device=device) * 2 - 1, 0.0)
        y = torch.relu(x) + x @ mixing.T
        loss = ((torch.relu(x @ w_in) @ w_out - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()

    synchronize = torch.cuda.synchronize if device.startswith("cuda") else lambda: None
    for _ in range(20):
        step()
    synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize()
    return (time.perf_counter() - start) / steps * 1e3


def build_parser() -> argparse.ArgumentParser:
    """The command line: its options, defaults and help texts."""
    parser = ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument(
        "--ks",
        type=lambda text: [positive_int(k) for k in text.split(",")],
        default=[1, 8, 64, 256],
        help="model counts K, comma-separated",
    )
    parser.add_argument(
        "--steps",
        type=positive_int,
        default=300,
        help="training steps per model (the sweep times all but the first 100)",
    )
    parser.add_argument(
        "--input-paths", default="sparse,dense", help="loss paths to time, comma list of sparse,dense (default both)"
    )
    parser.add_argument("--modes", default="sweep,sequential", help="comma list of sweep,sequential (default both)")
    parser.add_argument("--group-size", type=int, default=None, help="models vmapped together per device")
    parser.add_argument("--torch", action="store_true", help="also time a single-threaded PyTorch reference loop")
    parser.add_argument(
        "--torch-device", default="cpu", help="torch device of the --torch loop (cpu: one thread; or e.g. cuda)"
    )
    parser.add_argument(
        "--cost",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="report XLA's cost analysis of the accelerator layout's training step (compiling it takes 10-30 s)",
    )
    parser.add_argument(
        "--forms",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time one model's sparse step in the Gram form and in the direct form, the step before it (about 10 s)",
    )
    parser.add_argument("--out", default="results/benchmark", help="directory for benchmark.json")
    return parser


def paths_and_modes(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The loss paths and modes asked for; a usage error on an unknown one or on too few --steps."""
    paths = [p for p in args.input_paths.split(",") if p]
    modes = [m for m in args.modes.split(",") if m]
    if any(p not in ("sparse", "dense") for p in paths) or any(m not in MODES for m in modes):
        parser.error("--input-paths takes sparse,dense and --modes takes sweep,sequential")

    if args.steps < 200:
        parser.error("--steps must be at least 200: the first 100 steps of a sweep are its warm-up")
    return paths, modes


def print_setup(config: ccjax.TrainConfig, env: dict) -> None:
    """Print the device, the matmul precision and the training shapes."""
    print(f"device: {env['device_kind']} x{env['device_count']}  precision: {env['matmul_precision']}")
    print(
        f"shapes: batch {config.batch_size}, n {config.n_features}, d_mlp {config.d_mlp}, p {config.p}, "
        f"{config.total_steps} steps per model"
    )


def time_one(config: ccjax.TrainConfig, path: str, k: int, mode: str, group_size: int | None) -> dict:
    """Time K models on one loss path in one mode; print and return its table row."""
    if mode == "sweep":
        rate, compile_s = _sweep_rate(config, k, path, group_size)
    else:
        rate, compile_s = _sequential_rate(config, k, path)
    print(f"{path:>6} {mode:>10} {k:>5} {rate:>14.0f} {1e3 / rate:>14.3f} {compile_s:>10.1f}", flush=True)
    return {"path": path, "mode": mode, "k": k, "model_steps_per_s": rate, "compile_s": compile_s}


def time_all(
    config: ccjax.TrainConfig, paths: list[str], ks: list[int], modes: list[str], group_size: int | None
) -> list[dict]:
    """Time every (path, K, mode) under a table header, with a progress line and ETA before each."""
    rows = []
    jobs = [(path, k, mode) for path in paths for k in ks for mode in modes]
    work_total = sum(_job_work(k, config.total_steps, mode) for _, k, mode in jobs)
    work_done, start = 0.0, time.perf_counter()
    print(f"{'path':>6} {'mode':>10} {'K':>5} {'model-steps/s':>14} {'ms/model-step':>14} {'compile s':>10}")
    for index, (path, k, mode) in enumerate(jobs):
        say_progress(
            index, len(jobs), work_done, work_total, time.perf_counter() - start, f"timing {path} {mode} K={k}"
        )
        row = time_one(config, path, k, mode, group_size)
        work_done += _job_work(k, config.total_steps, mode)
        rows.append(row)
    say_progress(len(jobs), len(jobs), work_done, work_total, time.perf_counter() - start, "timings done")
    return rows


def add_torch_reference(report: dict, steps: int, device: str) -> None:
    """Time the PyTorch reference loop on ``device``, print its rate and add it to ``report``."""
    ms = torch_reference_ms_per_step(steps, device=device)
    report["torch_reference_ms_per_step"] = ms
    report["torch_device"] = device
    where = "1 thread" if device == "cpu" else device
    print(f"PyTorch reference loop ({where}): {ms:.3f} ms/step = {1e3 / ms:.0f} model-steps/s")


def write_report(report: dict, out: Path) -> None:
    """Write ``report`` to ``out``/benchmark.json and say where."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {out / 'benchmark.json'}")


def main(argv=None) -> int:
    """Run the benchmark from the command line; exit status 0 (2 on a usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    use_every_cpu_core()
    paths, modes = paths_and_modes(parser, args)
    config = ccjax.TrainConfig(steps=args.steps, log_every=100)
    env = environment_info()
    print_setup(config, env)
    rows = time_all(config, paths, args.ks, modes, args.group_size)
    report = {"environment": env, "steps": config.total_steps, "rows": rows}
    if args.forms:
        report["sparse_forms"] = forms = sparse_form_rates(config)
        print_forms(forms)
    if args.cost:
        report["accelerator_step_cost"] = cost = accelerator_step_cost(config)
        print_cost(cost)
    if args.torch:
        add_torch_reference(report, args.steps, args.torch_device)
    write_report(report, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
