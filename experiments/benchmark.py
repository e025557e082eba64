"""Training throughput: K models in one jitted sweep vs one after another.

    python -m experiments.benchmark                       # K = 1, 8, 64, 256 at paper shapes
    python -m experiments.benchmark --ks 1,8 --steps 100  # quicker
    python -m experiments.benchmark --torch               # also time a PyTorch reference loop

Reports model-steps per second (training steps of one model per second of wall time,
compile excluded), compile time, device and matmul precision. "sequential" trains the
same K models one after another, each with the per-model jitted ``ccjax.train``
(compiled once, reused, after one untimed warm-up run). A sweep is timed from the end
of its first 100-step chunk. The optional PyTorch reference is a plain single-threaded
training loop written for this benchmark (same shapes, data and AdamW), standing in for
the authors' PyTorch code; it needs ``torch`` installed.
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import jax

import ccjax
from ccjax.io import environment_info
from experiments._cli import HelpFormatter, positive_int, use_every_cpu_core

MODES = ("sweep", "sequential")


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


def torch_reference_ms_per_step(steps: int, batch_size: int = 2048, p: float = 0.01, threads: int = 1) -> float:
    """ms per step of a plain PyTorch training loop of the reduced CC model."""
    import torch

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    n, d = 100, 50
    w_e = torch.randn(n, 1000, generator=gen)
    w_e = w_e / w_e.norm(dim=1, keepdim=True)
    mixing = torch.eye(n) - w_e @ w_e.T
    w_in = torch.nn.Parameter(torch.empty(n, d).uniform_(-((6 / d) ** 0.5), (6 / d) ** 0.5, generator=gen))
    w_out = torch.nn.Parameter(torch.empty(d, n).uniform_(-((6 / n) ** 0.5), (6 / n) ** 0.5, generator=gen))
    optimizer = torch.optim.AdamW([w_in, w_out], lr=3e-3, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)

    def step():
        active = torch.rand(batch_size, n, generator=gen) < p
        x = torch.where(active, torch.rand(batch_size, n, generator=gen) * 2 - 1, torch.zeros(()))
        y = torch.relu(x) + x @ mixing.T
        loss = ((torch.relu(x @ w_in) @ w_out - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()

    for _ in range(20):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1e3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmark", description=__doc__, formatter_class=HelpFormatter
    )
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
    parser.add_argument("--out", default="results/benchmark", help="directory for benchmark.json")
    args = parser.parse_args(argv)
    use_every_cpu_core()
    paths = [p for p in args.input_paths.split(",") if p]
    modes = [m for m in args.modes.split(",") if m]
    if any(p not in ("sparse", "dense") for p in paths) or any(m not in MODES for m in modes):
        parser.error("--input-paths takes sparse,dense and --modes takes sweep,sequential")

    if args.steps < 200:
        parser.error("--steps must be at least 200: the first 100 steps of a sweep are its warm-up")
    config = ccjax.TrainConfig(steps=args.steps, log_every=100)
    env = environment_info()
    print(f"device: {env['device_kind']} x{env['device_count']}  precision: {env['matmul_precision']}")
    print(
        f"shapes: batch {config.batch_size}, n {config.n_features}, d_mlp {config.d_mlp}, p {config.p}, "
        f"{config.total_steps} steps per model"
    )
    rows = []
    print(f"{'path':>6} {'mode':>10} {'K':>5} {'model-steps/s':>14} {'ms/model-step':>14} {'compile s':>10}")
    for path in paths:
        for k in args.ks:
            for mode in modes:
                if mode == "sweep":
                    rate, compile_s = _sweep_rate(config, k, path, args.group_size)
                else:
                    rate, compile_s = _sequential_rate(config, k, path)
                rows.append({"path": path, "mode": mode, "k": k, "model_steps_per_s": rate, "compile_s": compile_s})
                print(f"{path:>6} {mode:>10} {k:>5} {rate:>14.0f} {1e3 / rate:>14.3f} {compile_s:>10.1f}", flush=True)
    report = {"environment": env, "steps": config.total_steps, "rows": rows}
    if args.torch:
        ms = torch_reference_ms_per_step(args.steps)
        report["torch_reference_ms_per_step"] = ms
        print(f"PyTorch reference loop (1 thread): {ms:.3f} ms/step = {1e3 / ms:.0f} model-steps/s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {out / 'benchmark.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
