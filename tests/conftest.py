"""Shared test setup: 8 fake CPU devices, strict rank promotion, small configs.

The device count must be fixed before JAX initialises its backends, so it is set here,
at conftest import time, before any test module touches a device.
"""

import dataclasses
import gc
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

# Eight host devices, so sharded sweeps run on a real 8-device mesh on any machine.
# (``jax_num_cpu_devices`` is honoured by jax 0.10.2; it must precede backend init.)
jax.config.update("jax_num_cpu_devices", 8)
# Implicit rank promotion hides shape bugs (a (n,) vector silently broadcast against
# (batch, n)); the library runs cleanly without it, so make it an error.
jax.config.update("jax_numpy_rank_promotion", "raise")

import ccjax  # noqa: E402  (after the config above)


def pytest_configure(config):
    """Compile faster in the default (``not slow``) run: LLVM at -O0.

    The default run is dominated by XLA compiles of tiny programs; the backend
    optimisation level changes code speed, not results (no fast-math either way), and
    cuts the suite's time by about a third. Paper-scale (``-m slow``) runs keep -O2.
    Set CCJAX_TEST_FAST_COMPILE=0 to opt out. XLA reads the flag once, when the backend
    starts, so it is set only around that and subprocesses do not inherit it.
    """
    if config.option.markexpr != "not slow" or os.environ.get("CCJAX_TEST_FAST_COMPILE", "1") == "0":
        return
    previous = os.environ.get("XLA_FLAGS")
    os.environ["XLA_FLAGS"] = f"{previous or ''} --xla_backend_optimization_level=0".strip()
    try:
        jax.devices()  # starts the backend, which parses XLA_FLAGS
    finally:
        if previous is None:
            del os.environ["XLA_FLAGS"]
        else:
            os.environ["XLA_FLAGS"] = previous


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    Every XLA:CPU executable keeps its JIT code in a few memory mappings of its own. One
    pytest process compiles thousands of programs, and past Linux's default limit of 65,530
    mappings per process (``vm.max_map_count``) the next compile dies with a segmentation
    fault (seen at about 80% of the suite). Modules share few programs, so little is
    recompiled.
    """
    yield
    jax.clear_caches()
    gc.collect()


# One jitted ``train`` shared by every test module, so equal configs share one compile.
train_jit = jax.jit(ccjax.train, static_argnums=0)

# The small training config of the suite: 20 features, 10 neurons, d_embed 50.
SMALL = ccjax.TrainConfig(
    n_features=20,
    d_mlp=10,
    d_embed=50,
    batch_size=128,
    steps=40,
    log_every=10,
    p=0.05,
)


def small(**changes) -> ccjax.TrainConfig:
    """The small config with some fields changed."""
    return dataclasses.replace(SMALL, **changes)


ROOT = Path(__file__).resolve().parents[1]


def run_module(module: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m experiments.<module> <args>`` from the repository root, output captured."""
    command = [sys.executable, "-m", f"experiments.{module}", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
