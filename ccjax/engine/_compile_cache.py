"""JAX's persistent compilation cache: compiled programs kept on disk, read back by later processes.

ccjax changes no JAX setting on import. :func:`enable_compile_cache` turns the cache on for a
process (the experiment CLIs call it first thing, unless ``--no-compile-cache``), and
:func:`counting_compile_cache` counts what a block of code compiled and read back.
"""

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import jax

CACHE_DIR_VARIABLE = "CCJAX_CACHE_DIR"
_EVENTS = {"/jax/compilation_cache/cache_hits": "hits", "/jax/compilation_cache/cache_misses": "misses"}


def default_compile_cache_dir() -> Path:
    """Where :func:`enable_compile_cache` keeps compiled programs by default.

    Returns:
        ``$CCJAX_CACHE_DIR`` if set; else ``ccjax/jax`` in the user's cache folder
        (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS,
        ``%LOCALAPPDATA%`` on Windows).
    """
    if os.environ.get(CACHE_DIR_VARIABLE):
        return Path(os.environ[CACHE_DIR_VARIABLE]).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ccjax" / "jax"


def enable_compile_cache(directory: str | os.PathLike | None = None) -> Path:
    """Turn on JAX's persistent compilation cache for this process, for every program compiled.

    A later process with the same programs (same shapes, options, jax, jaxlib and device)
    reads them back instead of compiling them. Call it before the process compiles anything:
    JAX decides at its first compile whether to use the cache (creating an array compiles too)
    and ignores a cache turned on later. The results are the same with and without the cache.

    Args:
        directory: the cache folder, created if missing; None: :func:`default_compile_cache_dir`.

    Returns:
        The cache folder.
    """
    path = Path(directory).expanduser() if directory is not None else default_compile_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # every program, not only slow ones
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # whatever its size
    return path


@dataclasses.dataclass
class CompileCacheCounts:
    """What the persistent compilation cache did inside :func:`counting_compile_cache`.

    Attributes:
        hits: programs read back from the cache instead of compiled.
        misses: programs compiled and written to the cache (0 with the cache off).
    """

    hits: int = 0
    misses: int = 0


@contextlib.contextmanager
def counting_compile_cache() -> Iterator[CompileCacheCounts]:
    """Count the programs read back from, and written to, the persistent cache while the ``with``
    block runs (in this process, by JAX's monitoring events).

    Yields:
        The counts, filled in as the block compiles (read them after it).
    """
    counts, counting = CompileCacheCounts(), [True]

    def listener(event: str, *args, **kwargs) -> None:
        if counting[0] and event in _EVENTS:
            setattr(counts, _EVENTS[event], getattr(counts, _EVENTS[event]) + 1)

    jax.monitoring.register_event_listener(listener)
    try:
        yield counts
    finally:
        counting[0] = False  # jax before 0.7 cannot unregister a listener: this one stops counting
        unregister = getattr(jax.monitoring, "unregister_event_listener", None)
        if unregister is not None:
            unregister(listener)
