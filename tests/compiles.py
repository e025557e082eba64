"""Counting XLA compilations, for tests that a computation compiles once (or not at all)."""

import contextlib

import jax

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # jax._src.dispatch.BACKEND_COMPILE_EVENT
# A program read back from the session's on-disk cache (conftest) instead of compiled: counted
# as a compile, so "compiles nothing" still means that no new program was needed.
CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"


_counters: list[list[str]] = []  # the name lists of the counting_compiles blocks now open


def _listener(event, duration, **kwargs):
    if event == BACKEND_COMPILE_EVENT:
        for names in _counters:
            names.append(kwargs.get("fun_name", "?"))


def _hit_listener(event, **kwargs):
    if event == CACHE_HIT_EVENT:
        for names in _counters:
            names.append("(read from the compilation cache)")


# Registered once, never removed: jax.monitoring has no unregister function at the jax floor (0.6.1).
jax.monitoring.register_event_duration_secs_listener(_listener)
jax.monitoring.register_event_listener(_hit_listener)


@contextlib.contextmanager
def counting_compiles():
    """Yields a list that collects the name of every function XLA compiles in the block."""
    names: list[str] = []
    _counters.append(names)
    try:
        yield names
    finally:
        _counters.remove(names)
