"""Results on disk: a directory with ``results.npz`` (arrays) and ``manifest.json``.

The manifest makes a result directory explain itself: the full config, the command, the
package versions, the devices and the git commit that produced the arrays.

This is the only ccjax module that touches files. Each file is written atomically (to a
temporary file in the same directory, then ``os.replace``), so an interrupted run never
leaves a half-written file under the final name. The two files are replaced one after
the other, arrays first; a crash between the two replacements can pair new arrays with an
old manifest, and the manifest's ``date`` tells which run wrote it.
"""

import datetime
import io
import json
import math
import os
import platform
import secrets
import subprocess
import zipfile
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ._linalg import MATMUL_PRECISION_NAME

RESULTS_FILE = "results.npz"
MANIFEST_FILE = "manifest.json"
VERSIONED_PACKAGES = ("ccjax", "jax", "jaxlib", "optax", "equinox", "numpy", "matplotlib")


class ResultsError(ValueError):
    """A result directory exists but cannot be read (corrupt or not ccjax results)."""


def _jsonable(value: Any):
    """``value`` with numpy values, paths and tuples made JSON-native.

    NaN and infinities (e.g. the standard error of a single batch) become ``null``, which
    every JSON reader accepts, rather than Python's non-standard ``NaN`` token.
    """
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray | np.generic):
        return _jsonable(value.tolist())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _replace_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary sibling file and ``os.replace``."""
    # A plain exclusive open (not mkstemp, which makes 0600 files) keeps the user's umask.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def save_results(directory: str | os.PathLike, arrays: Mapping[str, Any], manifest: Mapping[str, Any]) -> Path:
    """Write ``arrays`` to ``directory/results.npz`` and ``manifest`` to ``manifest.json``.

    Arrays must be numeric, boolean or string (they are loaded back without pickle).
    Both files are serialised in memory first, so a bad value fails before anything is
    written. Returns the directory.
    """
    directory = Path(directory)
    converted = {}
    for name, value in arrays.items():
        array = np.asarray(value)
        if array.dtype == object:
            raise TypeError(f"array {name!r} has dtype object; results hold numeric arrays only")
        converted[name] = array
    try:
        text = json.dumps(_jsonable(manifest), indent=2, allow_nan=False)
    except TypeError as error:
        raise TypeError(f"the manifest must be JSON-serialisable: {error}") from None
    buffer = io.BytesIO()
    np.savez(buffer, **converted)

    directory.mkdir(parents=True, exist_ok=True)
    _replace_atomically(directory / RESULTS_FILE, buffer.getvalue())
    _replace_atomically(directory / MANIFEST_FILE, (text + "\n").encode())
    return directory


def load_results(directory: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read the ``(arrays, manifest)`` that :func:`save_results` wrote to ``directory``.

    Raises ``FileNotFoundError`` when a file is missing and :class:`ResultsError` when
    one is unreadable; both messages name the file.
    """
    directory = Path(directory)
    results_path, manifest_path = directory / RESULTS_FILE, directory / MANIFEST_FILE
    for path in (results_path, manifest_path):
        if not path.is_file():
            raise FileNotFoundError(f"no results at {directory}: {path.name} is missing")
    try:
        with np.load(results_path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ResultsError(f"cannot read {results_path}: {error}") from None
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(f"cannot read {manifest_path}: {error}") from None
    if not isinstance(manifest, dict):
        raise ResultsError(f"cannot read {manifest_path}: expected a JSON object, got {type(manifest).__name__}")
    return arrays, manifest


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_info(package_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The git commit of the checkout that holds the ccjax sources, if there is one.

    ``sha`` and ``dirty`` (uncommitted changes to tracked files) are None when ccjax is
    not imported from a git checkout (an installed wheel, or git missing). A wheel
    installed inside some other repository is not mistaken for a checkout: the
    repository root must be the directory that holds the ``ccjax`` package.
    """
    package_dir = Path(package_dir or Path(__file__).parent).resolve()
    top = _git(["rev-parse", "--show-toplevel"], package_dir)
    if top is None or Path(top).resolve() != package_dir.parent:
        return {"sha": None, "dirty": None}
    status = _git(["status", "--porcelain", "--untracked-files=no"], package_dir)
    return {"sha": _git(["rev-parse", "HEAD"], package_dir), "dirty": None if status is None else bool(status)}


def environment_info() -> dict[str, Any]:
    """What produced a result: versions, devices, matmul precision, git commit, date."""
    devices = jax.devices()
    return {
        "versions": {name: _package_version(name) for name in VERSIONED_PACKAGES}
        | {"python": platform.python_version()},
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "matmul_precision": MATMUL_PRECISION_NAME,
        "git": git_info(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
