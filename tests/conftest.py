"""Shared test setup: 8 fake CPU devices, strict rank promotion, small configs.

The device count must be fixed before JAX initialises its backends, so it is set here,
at conftest import time, before any test module touches a device.
"""

import atexit
import contextlib
import dataclasses
import gc
import importlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import jaxtyping
import pytest

# Eight host devices, so sharded sweeps run on a real 8-device mesh on any machine.
# (``jax_num_cpu_devices`` is honoured by jax 0.10.2; it must precede backend init.)
jax.config.update("jax_num_cpu_devices", 8)
# Implicit rank promotion hides shape bugs (a (n,) vector silently broadcast against
# (batch, n)); the library runs cleanly without it, so make it an error.
jax.config.update("jax_numpy_rank_promotion", "raise")

import ccjax  # noqa: E402  (after the config above)

# XLA flags of the default run's fast compiles (see pytest_configure).
FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"


def pytest_configure(config):
    """Compile faster in every run but the paper-scale one (``-m slow``): LLVM at -O0, no fusion emitters.

    The default run is dominated by XLA compiles of tiny programs; the backend
    optimisation level changes code speed, not results (no fast-math either way), and
    cuts the suite's time by about a third. XLA:CPU's fusion emitters (MLIR) compile about
    three times slower than its classic elemental emitters, which compute the same
    operations: without them a tiny sweep compiles in 0.8 s instead of 2.6 s of CPU time,
    and the suite takes another third less. The flags stay in the environment, so the
    experiment processes that tests start compile fast too (an extension walkthrough's
    process: 18 s -> 8 s). Paper-scale (``-m slow``) runs keep the defaults. Set
    CCJAX_TEST_FAST_COMPILE=0 to opt out.
    """
    _share_compiled_programs_between_modules()
    paper_scale = "slow" in config.option.markexpr and "not slow" not in config.option.markexpr
    if paper_scale or os.environ.get("CCJAX_TEST_FAST_COMPILE", "1") == "0":
        return
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE_FLAGS}".strip()
    jax.devices()  # starts the backend, which parses XLA_FLAGS once


def _share_compiled_programs_between_modules():
    """Keep every compiled program of this session in a temporary on-disk cache.

    :func:`_release_compiled_programs` drops the in-memory programs after each module, and
    many modules compile the same ones (``train`` of the small config, the evaluation
    kernels, the experiments' sweeps): they are then read back from disk instead of compiled
    again. The cache lives and dies with the session (a fresh clone starts empty), this
    process only (subprocesses compile for themselves), and holds exactly what XLA compiled:
    results do not change. ``tests/compiles.py`` counts a program read from it as a compile.
    """
    directory = tempfile.mkdtemp(prefix="ccjax-test-compiles-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    # The experiment CLIs run as subprocesses turn on a persistent cache of their own: a folder
    # of this session's too, never the user's cache folder.
    os.environ["CCJAX_CACHE_DIR"] = os.path.join(directory, "subprocesses")
    ccjax.enable_compile_cache(directory)  # every program, whatever its compile time or size


# The longest test files, as measured on the 2-core machine (seconds of test time, idle):
# sent to the workers first, so that no long file starts last and leaves one core idle
# (``--dist loadfile`` hands files out in collection order).
LONGEST_FIRST = (
    "test_every_choice.py",  # 48
    "test_experiments.py",  # 42
    "test_sweep.py",  # 35
    "test_cis.py",  # 31
    "test_doc_examples.py",  # 28
    "test_rank_sweep.py",  # 24
    "test_multihost.py",  # 22
    "test_evaluate.py",  # 21
    "test_baselines.py",  # 21
    "test_resume_cli.py",  # 20
    "test_properties.py",  # 20
)


def pytest_collection_modifyitems(items):
    """Collect the files of :data:`LONGEST_FIRST` first, in that order (the rest as collected)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: tests keep their order


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


def _qualified(module: str) -> str:
    """``scale_sweep`` -> ``experiments.scale_sweep``; a dotted name (``benchmarks.throughput``) as it is."""
    return module if "." in module else f"experiments.{module}"


def run_module(module: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m experiments.<module> <args>`` (or a dotted module) from the repository root, output captured."""
    command = [sys.executable, "-m", _qualified(module), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def annotations_unchecked():
    """Switch off the session's jaxtyping run-time checks (pyproject ``addopts``) inside.

    For tests that pass deliberately ill-typed arguments to check ccjax's own error
    messages, which users without run-time checks see.
    """
    previous = jaxtyping.config.jaxtyping_disable
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        yield
    finally:
        jaxtyping.config.update("jaxtyping_disable", previous)


def run_main(module: str, *args: str, timeout: int | None = None) -> subprocess.CompletedProcess:
    """``experiments.<module>.main(args)`` in this process, as :func:`run_module` would report it.

    No Python or JAX start-up and no recompiles of programs an earlier test compiled. The exit
    status is ``main``'s return value or argparse's ``SystemExit``; stdout and stderr are
    captured as text. An unexpected exception propagates (a subprocess would exit 1 with a
    traceback), so a test expecting success or a clean usage error still fails on it.
    Runs from the repository root like :func:`run_module`; ``timeout`` is accepted and ignored.
    """
    main = importlib.import_module(_qualified(module)).main
    stdout, stderr = io.StringIO(), io.StringIO()
    cwd = os.getcwd()  # contextlib.chdir is Python 3.11+
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                returncode = main(list(args))
            except SystemExit as exit:
                returncode = exit.code
                if isinstance(returncode, str):
                    print(returncode, file=sys.stderr)
                    returncode = 1
    finally:
        os.chdir(cwd)
    returncode = 0 if returncode is None else returncode
    return subprocess.CompletedProcess([module, *args], returncode, stdout.getvalue(), stderr.getvalue())
