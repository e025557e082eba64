"""Results on disk: a directory with ``results.npz`` (arrays) and ``manifest.json``;
sweep checkpoints (:func:`save_checkpoint`, one ``.npz`` per sweep); finished stages of
a longer run (:class:`StageFiles`, one ``.npz`` per stage); a run's results folder
(:class:`ResultsFolder`: what a run may do with it, and the checkpoints of an interrupted
run, to resume it after a preempted machine or a Colab disconnect); and figures
(:func:`save_figure`).

The manifest makes a result directory explain itself: the full config, the command, the
package versions, the devices and the git commit that produced the arrays.

This is the only ccjax module that touches files. Each file is written atomically (to a
temporary file in the same directory, then ``os.replace``), so an interrupted run never
leaves a half-written file under the final name. The two files are replaced one after
the other, arrays first; a crash between the two replacements can pair new arrays with an
old manifest. The manifest therefore records the sha256 of the exact ``results.npz`` bytes,
each array's shape and dtype, and a hash of its config (the ``results_format`` block), and
:func:`load_results` checks them all, so such a pair, a corrupt or partial file or an
edited manifest gives a clear :class:`ResultsError` instead of silently wrong results.

In a multi-process run (``jax.distributed``) every process may call the save functions
with the same (gathered) values; only process 0 writes.
"""

import dataclasses
import datetime
import hashlib
import io
import json
import math
import os
import platform
import secrets
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from ._linalg import MATMUL_PRECISION_NAME
from .engine import Grid, TrainConfig, sweep_fingerprint
from .engine._checkpoint import CheckpointError, SweepCheckpoint, checkpoint_arrays, checkpoint_from_arrays

RESULTS_FILE = "results.npz"
MANIFEST_FILE = "manifest.json"
RESULTS_FORMAT_KEY = "results_format"  # the manifest's block that ties it to its results.npz
RESULTS_FORMAT_VERSION = 1  # the newest results format this ccjax writes and reads
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


def load_json_record(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON object in the file ``path`` (a run log such as ``reproduce.json``); {} if there is none.

    Args:
        path: the JSON file.

    Returns:
        The parsed object (a dict); {} when the file does not exist.
    """
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else {}


def update_json_record(path: str | os.PathLike, key: str, entry: Any) -> None:
    """Set ``key`` of the JSON object in ``path`` to ``entry``, re-reading the file first (another
    process may have written since) and replacing it atomically; the file is made if missing.

    Args:
        path: the JSON file (its folder must exist).
        key: the top-level key to set.
        entry: its new value, JSON-serialisable.
    """
    record = load_json_record(path)
    record[key] = entry
    _replace_atomically(Path(path), json.dumps(record, indent=2).encode())


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _config_sha256(config: Any) -> str:
    """sha256 of ``config`` as canonical JSON (sorted keys, no whitespace).

    ``config`` goes through :func:`_jsonable` first, so a config hashed before it is written
    and the same config read back from the manifest hash alike.
    """
    canonical = json.dumps(_jsonable(config), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return _sha256(canonical.encode())


def _describe_arrays(arrays: Mapping[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """``{name: {"shape": [...], "dtype": "float32"}}``, as the manifest records them."""
    return {name: {"shape": list(array.shape), "dtype": str(array.dtype)} for name, array in arrays.items()}


def save_results(directory: str | os.PathLike, arrays: Mapping[str, Any], manifest: Mapping[str, Any]) -> Path:
    """Write ``arrays`` to ``directory/results.npz`` and ``manifest`` to ``manifest.json``.

    Both files are serialised in memory first, so a bad value fails before anything is written. The written
    manifest gains a ``results_format`` block (replacing one it holds, e.g. from :func:`load_results`): the format
    ``version``, each array's ``shape`` and ``dtype``, the sha256 of the exact ``results.npz`` bytes
    (``results_sha256``) and of the canonical JSON of ``manifest["config"]`` (``config_sha256``; of ``null`` when
    there is no config), which :func:`load_results` checks. Only process 0 of a multi-process run writes.

    Args:
        directory: the result directory; made if missing.
        arrays: the arrays by name: numeric, boolean or string (they are loaded back without pickle).
        manifest: JSON-serialisable metadata (config, command, ...); not modified.

    Returns:
        ``directory`` as a :class:`~pathlib.Path` (in every process, after the same checks).

    Raises:
        TypeError: an array has dtype object, or the manifest is not JSON-serialisable.
    """
    directory = Path(directory)
    converted = {}
    for name, value in arrays.items():
        array = np.asarray(value)
        if array.dtype == object:
            raise TypeError(f"array {name!r} has dtype object; results hold numeric arrays only")
        converted[name] = array
    buffer = io.BytesIO()
    np.savez(buffer, **converted)
    payload = buffer.getvalue()
    try:
        written = _jsonable(manifest)
        written.pop(RESULTS_FORMAT_KEY, None)
        written[RESULTS_FORMAT_KEY] = {
            "version": RESULTS_FORMAT_VERSION,
            "arrays": _describe_arrays(converted),
            "results_sha256": _sha256(payload),
            "config_sha256": _config_sha256(written.get("config")),
        }
        text = json.dumps(written, indent=2, allow_nan=False)
    except TypeError as error:
        raise TypeError(f"the manifest must be JSON-serialisable: {error}") from None

    if jax.process_index() != 0:
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    _replace_atomically(directory / RESULTS_FILE, payload)
    _replace_atomically(directory / MANIFEST_FILE, (text + "\n").encode())
    return directory


def save_figure(figure: Any, path: str | os.PathLike, note: str | None = None) -> Path | None:
    """Write the matplotlib ``figure`` to ``path`` (creating its folder) at 150 dpi and close it.

    Args:
        figure: the matplotlib figure; closed afterwards.
        path: the image file; its suffix picks the format.
        note: a line printed in red below the axes (e.g. which models diverged), the canvas growing
            to hold it; None: no note.

    Returns:
        The path written; None in a process other than 0 of a multi-process run, which closes the
            figure without writing.
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    writer = jax.process_index() == 0
    if writer and note:
        figure.text(0.01, -0.01, note, fontsize=8, color="firebrick", ha="left", va="top")
    if writer:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=150, **({"bbox_inches": "tight"} if note else {}))
    plt.close(figure)
    return path if writer else None


def _remedy(manifest: Mapping[str, Any]) -> str:
    """What to do about results that fail a check: write them again."""
    command = manifest.get("command")
    how = f": {command}" if isinstance(command, str) and command else ""
    return f"rerun the command that produced them (experiment CLIs: add --overwrite) to write both files again{how}"


def _format_block(manifest: Mapping[str, Any], manifest_path: Path) -> dict[str, Any] | None:
    """The manifest's ``results_format`` block, validated; None for results saved before it existed."""
    if RESULTS_FORMAT_KEY not in manifest:
        return None
    block = manifest[RESULTS_FORMAT_KEY]

    def malformed(detail: str) -> ResultsError:
        return ResultsError(
            f"cannot read {manifest_path}: its {RESULTS_FORMAT_KEY!r} block is malformed ({detail}); the manifest"
            f" was edited or not written by ccjax; {_remedy(manifest)}"
        )

    if not isinstance(block, dict):
        raise malformed(f"expected a JSON object, got {type(block).__name__}")
    format_version = block.get("version")
    if not isinstance(format_version, int) or isinstance(format_version, bool) or format_version < 1:
        raise malformed(f"unknown format version {format_version!r}")
    if format_version > RESULTS_FORMAT_VERSION:
        raise ResultsError(
            f"cannot read {manifest_path}: the results use format version {format_version}, but this ccjax"
            f" ({_package_version('ccjax')}) reads versions up to {RESULTS_FORMAT_VERSION}; upgrade ccjax to"
            " load them"
        )
    for key in ("results_sha256", "config_sha256"):
        if not isinstance(block.get(key), str):
            raise malformed(f"{key!r} is missing or not a string")
    arrays = block.get("arrays")
    if not isinstance(arrays, dict) or not all(
        isinstance(entry, dict)
        and isinstance(entry.get("shape"), list)
        and all(isinstance(size, int) for size in entry["shape"])
        and isinstance(entry.get("dtype"), str)
        for entry in arrays.values()
    ):
        raise malformed("'arrays' must map each name to its 'shape' (a list of ints) and 'dtype' (a string)")
    return block


def _array_problems(arrays: Mapping[str, np.ndarray], recorded: Mapping[str, Any]) -> list[str]:
    """How ``arrays`` differ from the shapes and dtypes the manifest ``recorded``."""
    problems = [f"{name!r} is recorded but missing" for name in recorded if name not in arrays]
    problems += [f"{name!r} is not recorded" for name in arrays if name not in recorded]
    for name, actual in _describe_arrays(arrays).items():
        expected = recorded.get(name)
        if expected is None:
            continue
        for field in ("shape", "dtype"):
            if actual[field] != expected[field]:
                problems.append(f"{name!r} has {field} {actual[field]}, the manifest records {expected[field]}")
    return problems


def load_results(directory: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read the ``(arrays, manifest)`` that :func:`save_results` wrote to ``directory``.

    Checks the manifest's ``results_format`` block in order: a format version this ccjax reads; the recorded sha256
    of ``results.npz`` (else the files come from different runs, or one was modified or partially written); the
    recorded array names, shapes and dtypes; ``config_sha256`` (else the config was edited). Old results: unchecked.

    Args:
        directory: the result directory.

    Returns:
        ``(arrays, manifest)``: the arrays by name, and the manifest (a dict, the block included).

    Raises:
        FileNotFoundError: a file is missing.
        ResultsError: a file is unreadable or a check fails (a newer format asks to upgrade ccjax); names the file.
    """
    directory = Path(directory)
    results_path, manifest_path = directory / RESULTS_FILE, directory / MANIFEST_FILE
    for path in (results_path, manifest_path):
        if not path.is_file():
            raise FileNotFoundError(f"no results at {directory}: {path.name} is missing")
    try:
        payload = results_path.read_bytes()
    except OSError as error:
        raise ResultsError(f"cannot read {results_path}: {error}") from None
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(f"cannot read {manifest_path}: {error}") from None
    if not isinstance(manifest, dict):
        raise ResultsError(f"cannot read {manifest_path}: expected a JSON object, got {type(manifest).__name__}")

    block = _format_block(manifest, manifest_path)
    if block is not None and _sha256(payload) != block["results_sha256"]:
        raise ResultsError(
            f"cannot read {results_path}: it does not match {manifest_path} (its sha256 is"
            f" {_sha256(payload)[:16]}..., the manifest records {block['results_sha256'][:16]}...): the files come"
            f" from different runs (e.g. a run interrupted between writing them), or one was modified or"
            f" partially written; {_remedy(manifest)}"
        )
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ResultsError(f"cannot read {results_path}: {error}") from None
    if block is None:
        return arrays, manifest
    _check_recorded(arrays, manifest, block, results_path, manifest_path)
    return arrays, manifest


def saved_config(manifest: Mapping[str, Any], key: str = "config") -> TrainConfig:
    """The :class:`~ccjax.TrainConfig` that a manifest records under ``key``, validated as a new one is.

    A field the manifest lacks (results saved before the field existed) takes its default.

    Args:
        manifest: a results manifest, e.g. from :func:`load_results`.
        key: the manifest's block of ``TrainConfig`` fields (default ``"config"``: the run's).

    Returns:
        The validated config.

    Raises:
        ResultsError: the block is missing, has a field ``TrainConfig`` does not have, or is not a valid config.
    """
    recorded = manifest.get(key)
    if not isinstance(recorded, Mapping):
        raise ResultsError(f"the manifest has no {key!r} block of TrainConfig fields")
    unknown = sorted(set(recorded) - {field.name for field in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ResultsError(f"the manifest's {key!r} block has fields TrainConfig does not: {', '.join(unknown)}")
    try:
        return TrainConfig(**recorded)
    except (TypeError, ValueError) as error:
        raise ResultsError(f"the manifest's {key!r} block is not a valid TrainConfig: {error}") from None


def _check_recorded(arrays: dict, manifest: dict, block: dict, results_path: Path, manifest_path: Path) -> None:
    """Raise a :class:`ResultsError` unless ``arrays`` are exactly the names, shapes and
    dtypes that the manifest's ``results_format`` block records, and its config hashes to
    the recorded ``config_sha256`` (the last two checks of :func:`load_results`)."""
    problems = _array_problems(arrays, block["arrays"])
    if problems:
        raise ResultsError(
            f"cannot read {manifest_path}: the arrays it records do not match {results_path.name}"
            f" ({'; '.join(problems)}); the manifest was modified after it was written; {_remedy(manifest)}"
        )
    if _config_sha256(manifest.get("config")) != block["config_sha256"]:
        raise ResultsError(
            f"cannot read {manifest_path}: its config does not hash to the recorded config_sha256, so it was"
            f" edited after the results were saved and they may not come from it; to get results for a changed"
            f" config, run the experiment with it; otherwise {_remedy(manifest)}"
        )


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

    A wheel installed inside some other repository is not mistaken for a checkout: the
    repository root must be the directory that holds the ``ccjax`` package.

    Args:
        package_dir: the ``ccjax`` package folder; None: the one this module was imported from.

    Returns:
        ``{"sha": ..., "dirty": ...}``: the commit's hex sha and whether tracked files have uncommitted
            changes; both None when ccjax is not imported from a git checkout (an installed wheel, or git missing).
    """
    package_dir = Path(package_dir or Path(__file__).parent).resolve()
    top = _git(["rev-parse", "--show-toplevel"], package_dir)
    if top is None or Path(top).resolve() != package_dir.parent:
        return {"sha": None, "dirty": None}
    status = _git(["status", "--porcelain", "--untracked-files=no"], package_dir)
    return {"sha": _git(["rev-parse", "HEAD"], package_dir), "dirty": None if status is None else bool(status)}


def environment_info() -> dict[str, Any]:
    """What produced a result: versions, devices, matmul precision, git commit, date.

    Returns:
        A JSON-ready dict: ``versions`` (of ccjax, jax, jaxlib, optax, equinox, numpy, matplotlib and python;
            None for a missing package), ``backend``, ``device_kind``, ``device_count``, ``process_count``,
            ``matmul_precision``, ``git`` (:func:`git_info`), ``platform`` and ``date`` (UTC, ISO 8601).
    """
    devices = jax.devices()
    return {
        "versions": {name: _package_version(name) for name in VERSIONED_PACKAGES}
        | {"python": platform.python_version()},
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "process_count": jax.process_count(),
        "matmul_precision": MATMUL_PRECISION_NAME,
        "git": git_info(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _save_npz(path: Path, arrays: Mapping[str, Any]) -> None:
    """``arrays`` to the ``.npz`` file ``path``, atomically; only process 0 writes."""
    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.asarray(value) for name, value in arrays.items()})
    if jax.process_index() != 0:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace_atomically(path, buffer.getvalue())


def _load_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path`` (no pickle); unreadable: :class:`CheckpointError`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"cannot read the {what} {path}: {error}") from None


def save_checkpoint(path: str | os.PathLike, checkpoint: SweepCheckpoint) -> Path:
    """Write a sweep checkpoint to the ``.npz`` file ``path``, atomically: a kill at any
    moment leaves either the previous checkpoint or this one, never a partial file. Only
    process 0 of a multi-process run writes.

    Args:
        path: the ``.npz`` file; its folder is made if missing.
        checkpoint: the checkpoint that :func:`ccjax.sweep` passes to its ``on_checkpoint``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    _save_npz(path, checkpoint_arrays(checkpoint))
    return path


class StageFiles(MutableMapping):
    """A folder of finished stages: ``folder/stage-<key>.npz`` per key, each a dict of
    arrays, written atomically (a kill leaves the stage whole or absent). It is the
    ``cache`` that :func:`ccjax.cis.search_grid` fills and, on a rerun, reads instead of
    training again. Only process 0 of a multi-process run writes.

    Keys must be alphanumeric (else ``ValueError``); a missing key is a ``KeyError`` and an
    unreadable stage file a :class:`~ccjax.engine.CheckpointError`.

    Args:
        folder: the folder of the stage files; made on the first write.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        if not key.isalnum():
            raise ValueError(f"StageFiles: a key must be alphanumeric, got {key!r}")
        return self.folder / f"stage-{key}.npz"

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._path(key).is_file()  # without reading the file

    def __getitem__(self, key: str) -> dict[str, np.ndarray]:
        path = self._path(key)
        if not path.is_file():
            raise KeyError(key)
        return _load_npz(path, "stage")

    def __setitem__(self, key: str, arrays: Mapping[str, Any]) -> None:
        _save_npz(self._path(key), arrays)

    def __delitem__(self, key: str) -> None:
        path = self._path(key)
        if not path.is_file():
            raise KeyError(key)
        path.unlink()

    def __iter__(self) -> Iterator[str]:
        return (path.stem.removeprefix("stage-") for path in sorted(self.folder.glob("stage-*.npz")))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def load_checkpoint(path: str | os.PathLike) -> SweepCheckpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Whether it fits the sweep being resumed is checked by :func:`ccjax.sweep` (``resume=``).

    Args:
        path: the ``.npz`` file.

    Returns:
        The checkpoint.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        CheckpointError: it is unreadable (corrupt, truncated, another format).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    arrays = _load_npz(path, "checkpoint")
    try:
        return checkpoint_from_arrays(arrays)
    except CheckpointError as error:
        raise CheckpointError(f"cannot read the checkpoint {path}: {error}") from None


# The folder of one run: what a run may do with it, its record and its sweeps' checkpoints.
CHECKPOINTS_FOLDER = "checkpoints"
RUN_FILE = "run.json"
_REPLACE = "pass --overwrite to replace them"


class ResultsFolderError(ResultsError):
    """A results folder holds what a run may neither use nor replace: another experiment's
    results or checkpoints, another run's results, an interrupted run's checkpoints. The
    message says which, and what to do, in the words of the experiment CLIs: ``--resume``
    and ``--overwrite`` are :meth:`ResultsFolder.prepare`'s ``resume`` and ``overwrite``."""


class RunPlan(NamedTuple):
    """What :meth:`ResultsFolder.prepare` decided a run does with its folder.

    Attributes:
        finished: the saved ``(arrays, manifest)`` of this very run, to report instead of
            running again (None: run).
        discard: start afresh over an interrupted run's checkpoints (:meth:`ResultsFolder.start`
            removes them).
        note: a status line for the user, or None.
    """

    finished: tuple[dict[str, np.ndarray], dict[str, Any]] | None = None
    discard: bool = False
    note: str | None = None


def option_differences(
    saved: Mapping[str, Any], current: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
) -> list[str]:
    """``--scales: 0,1 there, 0,0.5,1,2 now`` for each option whose value differs.

    Floats are shown short but never rounded, so two different values never look equal.

    Args:
        saved: the saved run's option values by name, as JSON values (lists, numbers, strings).
        current: this run's option values, alike; only its options are compared.
        defaults: the values of options ``saved`` lacks (added since that run), alike; None: no defaults.

    Returns:
        One line per differing option, in the order of ``current``; [] when all agree.
    """
    defaults = defaults or {}
    differences = []
    for name, value in current.items():
        before = saved[name] if name in saved else defaults.get(name)
        if before != value:
            differences.append(f"{name}: {_show(before)} there, {_show(value)} now")
    return differences


def _show(value: Any) -> str:
    """An option value as a command line would spell it (floats short, but never rounded)."""
    if isinstance(value, list):
        return ",".join(_show(entry) for entry in value)
    if isinstance(value, float):
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    return str(value)


@dataclasses.dataclass(frozen=True)
class CheckpointFile:
    """One sweep's checkpoint file. Give it to :func:`ccjax.sweep` as ``on_checkpoint``
    (each checkpoint is saved atomically, :func:`save_checkpoint`) and its :meth:`load` as
    ``resume``: an interrupted sweep continues from its last checkpoint, to the results of
    an uninterrupted one.

    Attributes:
        path: the ``.npz`` file (a str is made a :class:`~pathlib.Path`).
    """

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    def __call__(self, checkpoint: SweepCheckpoint) -> None:
        save_checkpoint(self.path, checkpoint)

    def load(self) -> SweepCheckpoint | None:
        """The saved checkpoint; None when there is none (:func:`load_checkpoint` raises for
        an unreadable one).

        Returns:
            The checkpoint, or None when the file does not exist.
        """
        return load_checkpoint(self.path) if self.path.is_file() else None


@dataclasses.dataclass(frozen=True)
class ResultsFolder:
    """The folder ``path`` of one run of ``experiment``: ``results.npz`` and ``manifest.json``
    once it finished (:func:`save_results`); while it runs, ``checkpoints/`` with
    ``run.json`` (its record: at least ``experiment`` and ``options``) and one
    ``sweep-<fingerprint>.npz`` per training sweep (:meth:`sweep_checkpoint`).

    A run that may be interrupted calls :meth:`prepare` with its options, :meth:`start`
    before it trains, trains each sweep with its :meth:`sweep_checkpoint`, and saves with
    :meth:`finish`. Run again with ``resume=True``, it continues from the checkpoints, or
    gets the finished results back. Only process 0 of a multi-process run writes. In a
    notebook that may lose its machine::

        folder, options = ccjax.io.ResultsFolder("drive/sweep", "my_sweep"), {"seeds": [0, 1]}
        plan = folder.prepare(options, resume=True)
        if plan.finished is None:
            record = {"experiment": "my_sweep", "options": options}
            folder.start(record, discard=plan.discard)
            checkpoint = folder.sweep_checkpoint(config, ccjax.make_grid(axes))
            result = ccjax.sweep(config, axes, on_checkpoint=checkpoint, resume=checkpoint.load())
            folder.finish({"w_in": result.params.w_in}, record)

    Attributes:
        path: the run's folder (a str is made a :class:`~pathlib.Path`).
        experiment: the experiment's name; results or checkpoints recorded under another one are refused.
    """

    path: Path
    experiment: str

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @property
    def checkpoints(self) -> Path:
        """``<path>/checkpoints``: the record and sweep checkpoints of an unfinished run."""
        return self.path / CHECKPOINTS_FOLDER

    def load(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The finished results, as :func:`load_results` reads them (and raises).

        Returns:
            ``(arrays, manifest)``, as :func:`load_results` returns them.

        Raises:
            ResultsFolderError: the results are another experiment's.
        """
        arrays, manifest = load_results(self.path)
        if manifest.get("experiment") != self.experiment:
            raise ResultsFolderError(
                f"{self.path} holds results of {manifest.get('experiment')!r}, not {self.experiment}"
            )
        return arrays, manifest

    def prepare(
        self,
        options: Mapping[str, Any],
        *,
        resume: bool = False,
        overwrite: bool = False,
        defaults: Mapping[str, Any] | None = None,
        legacy_match: Callable[[list[str]], bool] | None = None,
    ) -> RunPlan:
        """Decide what the run with ``options`` may do with this folder.

        The same run means equal options (:func:`option_differences`, with ``defaults``).
        Finished results of the same run are returned under ``resume`` (and the folder's
        checkpoints removed); other results are replaced only with ``overwrite``; another
        experiment's never. An interrupted run's checkpoints are continued under ``resume``
        (when they are the same run's), else discarded with ``overwrite``.

        Args:
            options: this run's option values by name, as JSON values.
            resume: continue the same run's checkpoints, or report its finished results (``--resume``).
            overwrite: replace this experiment's other results or checkpoints (``--overwrite``).
            defaults: the values of options a saved record lacks (:func:`option_differences`).
            legacy_match: ``legacy_match(argv)``: whether a record saved before options were recorded (its
                ``argv`` only) is the same run; None: it never is.

        Returns:
            What the run does with the folder.

        Raises:
            ResultsFolderError: the run may neither use nor replace what the folder holds.
        """

        def same_run(saved: Mapping[str, Any]) -> tuple[bool, str]:
            if "options" not in saved:
                return legacy_match is not None and legacy_match(saved.get("argv", [])), ""
            differences = option_differences(saved["options"], options, defaults)
            return not differences, f"; the options differ: {'; '.join(differences)}" if differences else ""

        finished = self._finished(same_run, resume, overwrite)
        if finished is not None:
            self.discard_checkpoints()
            note = f"--resume: {self.path} already holds the finished results of this run; reporting them"
            return RunPlan(finished=finished, note=note)
        if not self.checkpoints.exists():
            return RunPlan(note=f"--resume: no checkpoints in {self.path}; starting afresh" if resume else None)
        return RunPlan(discard=self._discard(same_run, resume, overwrite))

    def _finished(self, same_run: Callable, resume: bool, overwrite: bool) -> tuple[dict, dict] | None:
        """The saved results of this very run under ``resume``; None when there are none
        to report. Refuses results it may not replace."""
        if not (self.path / MANIFEST_FILE).exists():
            return None
        try:
            arrays, manifest = load_results(self.path)
        except (FileNotFoundError, ResultsError) as error:
            if not overwrite:
                raise ResultsFolderError(f"--out {self.path} holds unreadable results ({error}); {_REPLACE}") from None
            return None
        if manifest.get("experiment") != self.experiment:
            raise ResultsFolderError(
                f"--out {self.path} holds results of the experiment {manifest.get('experiment')!r}, not "
                f"{self.experiment}; choose another --out (results of another experiment are never replaced)"
            )
        same, differing = same_run(manifest)
        if resume and same:
            return arrays, manifest
        if not overwrite:
            raise ResultsFolderError(
                f"--out {self.path} already holds results of {self.experiment} ({manifest.get('command', '?')})"
                f"{differing}; {_REPLACE}, --plot-only to redraw them, or choose another --out"
            )
        return None

    def _discard(self, same_run: Callable, resume: bool, overwrite: bool) -> bool:
        """Whether the run starts afresh over an interrupted run's checkpoints (``overwrite``);
        False to continue them (``resume``, the same run). Refuses anything else."""
        previous = self.run_record()
        if previous.get("experiment", self.experiment) != self.experiment:
            raise ResultsFolderError(
                f"--out {self.path} holds checkpoints of the experiment {previous['experiment']!r}, not "
                f"{self.experiment}; choose another --out"
            )
        same, differing = same_run(previous)
        command = previous.get("command", "unknown")
        if resume and not same and not overwrite:
            raise ResultsFolderError(
                f"--resume: the checkpoints in {self.checkpoints} belong to another command ({command}){differing}; "
                "resume with that command's options, or pass --overwrite (without --resume) to discard them"
            )
        if resume and same:
            return False
        if not overwrite:
            raise ResultsFolderError(
                f"--out {self.path} holds checkpoints of an interrupted run ({command}); "
                "pass --resume to continue it or --overwrite to discard it"
            )
        return True

    def run_record(self) -> dict[str, Any]:
        """The record :meth:`start` wrote for the run under way (or interrupted).

        Returns:
            The record (a dict); {} when there is none or it is unreadable.
        """
        try:
            return json.loads((self.checkpoints / RUN_FILE).read_text())
        except (OSError, ValueError):
            return {}

    def start(self, record: Mapping[str, Any], *, discard: bool = False) -> None:
        """Make the checkpoint folder and write ``record`` to its ``run.json``, atomically.

        Only process 0 of a multi-process run does anything.

        Args:
            record: JSON values saying what the run is: ``experiment`` and ``options`` at least.
            discard: remove the old checkpoints first (:attr:`RunPlan.discard`).
        """
        if jax.process_index() != 0:
            return
        if discard:
            self.discard_checkpoints()
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        _replace_atomically(self.checkpoints / RUN_FILE, json.dumps(record).encode())

    def sweep_checkpoint(self, config: TrainConfig, grid: Grid, initial_params: Any = None) -> CheckpointFile:
        """The checkpoint file ``checkpoints/sweep-<fingerprint>.npz`` of one sweep, named by what
        determines its results, so a rerun finds its own sweep's file.

        Args:
            config: the sweep's :class:`~ccjax.TrainConfig`.
            grid: the sweep's grid (``ccjax.make_grid``).
            initial_params: the sweep's initial weights (None: fresh weights).

        Returns:
            The sweep's checkpoint file, to pass as ``on_checkpoint`` (and its ``load()`` as ``resume``).
        """
        fingerprint = sweep_fingerprint(config, grid, initial_params)
        return CheckpointFile(self.checkpoints / f"sweep-{fingerprint[:16]}.npz")

    def finish(self, arrays: Mapping[str, Any], manifest: Mapping[str, Any]) -> Path:
        """:func:`save_results` into the folder, then remove the checkpoints.

        Args:
            arrays: the arrays by name (:func:`save_results`).
            manifest: the manifest; it holds what :meth:`prepare` reads back: ``experiment``,
                ``options`` and, for its messages, ``command``.

        Returns:
            The folder's path.
        """
        save_results(self.path, arrays, manifest)
        self.discard_checkpoints()
        return self.path

    def discard_checkpoints(self) -> None:
        """Remove the checkpoint folder and everything in it (nothing if there is none)."""
        if jax.process_index() == 0:
            shutil.rmtree(self.checkpoints, ignore_errors=True)
