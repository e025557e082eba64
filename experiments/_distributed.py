"""One experiment over several processes (hosts): JAX's multi-controller runtime,
``jax.distributed``, as docs/running.md ("Several hosts") describes. Every process runs the
same command and trains its share of one sweep (:mod:`ccjax.engine`); only process 0 writes.
A process that dies stops the others at their next collective, with an error that says so;
rerunning every process with ``--resume`` (``--out`` on a shared file system) finishes the job.
"""

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Iterator

import jax

from ccjax.engine import CheckpointError

from ._cli import Option, positive_int, say


def _address(text: str) -> str:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return text


def _process_id(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative integer")
    return int(text)


# None of these changes the results (``_experiment.result_identity``): the processes of one
# run differ in --process-id, and a run may resume with another process count.
GROUP = "more than one host (jax.distributed; see docs/running.md, Several hosts)"
COORDINATOR = "join a multi-process run whose process 0 listens at HOST:PORT (with --num-processes, --process-id)"
ENVIRONMENT = (
    "join the multi-process run the environment describes (TPU pod slice, SLURM, ...): "
    "jax.distributed.initialize() with no arguments"
)
OPTIONS = (
    Option("--coordinator", _address, None, COORDINATOR, "HOST:PORT", group=GROUP),
    Option("--num-processes", positive_int, None, "processes in the run", "N", group=GROUP),
    Option("--process-id", _process_id, None, "this process's index, 0 .. N-1", "I", group=GROUP),
    Option("--distributed", None, False, ENVIRONMENT, group=GROUP),
)


def initialize(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Join the multi-process run that ``args`` ask for (nothing when they ask for none). Must run before JAX starts
    its backends. CPU processes exchange data over gloo."""
    explicit = (args.coordinator, args.num_processes, args.process_id)
    if not args.distributed and all(value is None for value in explicit):
        return
    if not args.distributed and any(value is None for value in explicit):
        parser.error("--coordinator, --num-processes and --process-id go together (or use --distributed)")
    if args.num_processes is not None and args.process_id is not None and args.process_id >= args.num_processes:
        parser.error(f"--process-id {args.process_id} must be below --num-processes {args.num_processes}")
    if jax.config.jax_cpu_collectives_implementation in (None, "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=args.coordinator, num_processes=args.num_processes, process_id=args.process_id
        )
    except (RuntimeError, ValueError) as error:
        parser.error(f"could not join the multi-process run: {error}")


def is_writer() -> bool:
    """True in the process that writes files: process 0 (the only one without jax.distributed)."""
    return jax.process_index() == 0


@contextlib.contextmanager
def stop_on_failure() -> Iterator[None]:
    """Run the ``with`` block; but in a multi-process run, an error (often a collective that
    failed because another process died) stops this process at once with a message, rather
    than waiting at exit for a process that will never come."""
    try:
        yield
    except CheckpointError:
        raise  # the same in every process, and reported as a usage error
    except Exception:
        if jax.process_count() == 1:
            raise
        traceback.print_exc()
        say(
            f"error: process {jax.process_index()} of {jax.process_count()} stopped (above); if it says a "
            "connection was closed or reset, or a task is unhealthy, another process of this run died. Every "
            "process stops: rerun all of them with the same command plus --resume to continue from the last "
            "checkpoint"
        )
        sys.stdout.flush()  # stderr is flushed by say
        os._exit(1)  # not sys.exit: jax.distributed's exit barrier would wait for the dead process


def synchronize(name: str) -> None:
    """Wait until every process of a multi-process run gets here (nothing in one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
