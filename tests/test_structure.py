"""Code structure: the library's layers, its public surface, and small functions (issue 20).

ccjax is three layers you can see in ``ls ccjax``: ``problem`` (what a CC model is),
``engine`` (training many at once) and ``measure`` (what is measured on them), with the
shared helpers below them and ``io``, ``plot`` and ``cis`` above them. A lower layer never
imports a higher one; nothing outside ``ccjax/`` imports a private name.
"""

import ast
import inspect
import types
from pathlib import Path

import pytest

import ccjax

ROOT = Path(__file__).resolve().parents[1]
CCJAX = ROOT / "ccjax"
MAX_FUNCTION_LINES = 50  # docstring included
MAX_PUBLIC_NAMES = 45
# The layer of every part of ccjax, lowest first: a module may import its own layer and lower ones.
LAYERS = {
    "_types": 0,
    "_linalg": 0,
    "_checks": 0,
    "problem": 1,
    "engine": 2,
    "measure": 3,
    "io": 4,
    "report": 4,
    "plot": 4,
    "cis": 5,
}


def python_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if "__pycache__" not in path.parts)


def ccjax_imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level part of ccjax) for every import of ccjax in ``path`` (function-level ones too)."""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])  # e.g. ["ccjax", "engine"]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                module = package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
            else:
                module = node.module.split(".") if node.module else []
            if module[:1] != ["ccjax"]:
                continue
            parts = module[1:2] or [alias.name for alias in node.names]  # "from .. import io, plot"
            found += [(node.lineno, part) for part in parts]
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, alias.name.split(".")[1]) for alias in node.names if alias.name.startswith("ccjax.")
            ]
    return [(line, part) for line, part in found if part in LAYERS]


def layer_of(path: Path) -> str:
    first = path.relative_to(CCJAX).parts[0]
    return first.removesuffix(".py")


def layer_violations(paths: list[Path]) -> list[str]:
    wrong = []
    for path in paths:
        own = LAYERS.get(layer_of(path))
        if own is None:
            continue  # ccjax/__init__.py re-exports every layer
        for line, part in ccjax_imports(path):
            if LAYERS[part] > own:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports ccjax.{part}")
    return wrong


def test_every_part_of_ccjax_has_a_layer():
    parts = {path.name.removesuffix(".py") for path in CCJAX.iterdir() if path.suffix == ".py" or path.is_dir()}
    assert parts - {"__init__", "__pycache__", "py"} == set(LAYERS)


def test_no_layer_imports_a_higher_one():
    assert layer_violations(python_files(CCJAX)) == []


def test_a_wrong_way_import_is_found(tmp_path, monkeypatch):
    fake = tmp_path / "ccjax" / "problem"
    fake.mkdir(parents=True)
    (fake / "_data.py").write_text("import jax\nfrom ..engine._config import TrainConfig\nfrom .._types import X\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__), "CCJAX", tmp_path / "ccjax")
    assert layer_violations([fake / "_data.py"]) == [f"{Path('ccjax/problem/_data.py')}:2 imports ccjax.engine"]


def private_imports(path: Path) -> list[str]:
    """Imports in ``path`` of a private ccjax module or of a private name from ccjax."""
    wrong = []
    for node in ast.walk(ast.parse(path.read_text())):
        modules = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ccjax":
            modules = [node.module]
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names if alias.name.split(".")[0] == "ccjax"]
            names = []
        private_module = any(part.startswith("_") for module in modules for part in module.split("."))
        if private_module or (modules and any(name.startswith("_") for name in names)):
            wrong.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return wrong


@pytest.mark.parametrize("folder", ["experiments", "benchmarks"])
def test_nothing_outside_ccjax_imports_a_private_name(folder):
    assert [line for path in python_files(ROOT / folder) for line in private_imports(path)] == []


def test_the_public_namespace_is_small_and_documented():
    assert len(ccjax.__all__) <= MAX_PUBLIC_NAMES
    assert len(set(ccjax.__all__)) == len(ccjax.__all__)
    for layer in ("problem", "engine", "measure", "cis"):
        names = getattr(ccjax, layer).__all__
        undocumented = [
            name
            for name in names
            if isinstance(value := getattr(getattr(ccjax, layer), name), type | types.FunctionType | types.ModuleType)
            and not inspect.getdoc(value)
        ]
        assert undocumented == [], f"ccjax.{layer}: {undocumented}"


@pytest.mark.parametrize("name", ccjax.__all__)
def test_every_top_level_name_comes_from_a_layer(name):
    value = getattr(ccjax, name)
    if isinstance(value, types.ModuleType):
        return
    homes = [layer for layer in ("problem", "engine", "measure", "io") if name in getattr(ccjax, layer).__dict__]
    assert homes, f"ccjax.{name} is in no layer"
    assert all(getattr(getattr(ccjax, layer), name) is value for layer in homes)


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``name: lines`` for every function (methods and nested ones too) longer than ``limit`` lines."""
    nodes = ast.walk(ast.parse(source))
    functions = (node for node in nodes if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))
    lengths = ((node.name, node.end_lineno - node.lineno + 1) for node in functions)
    return [f"{name}: {lines}" for name, lines in lengths if lines > limit]


def test_long_functions_are_found():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert long_functions(f"def f():\n{body}\n") == [f"f: {MAX_FUNCTION_LINES + 1}"]
    assert long_functions(f"class C:\n    def g(self):\n    {body.replace(chr(10), chr(10) + '    ')}\n") != []


@pytest.mark.parametrize("folder", ["ccjax", "benchmarks", "experiments"])
def test_no_function_is_long(folder):
    long = {str(path.relative_to(ROOT)): long_functions(path.read_text()) for path in python_files(ROOT / folder)}
    assert {path: names for path, names in long.items() if names} == {}


def config_call_paths(run) -> set[tuple[str, ...]]:
    """Every call path (repository files, outermost first, a file's consecutive frames as one)
    that reaches a function holding the configuration (a ``ccjax.TrainConfig``, ``args.config``
    or a saved manifest) while ``run()`` runs: the route the configuration takes."""
    import argparse
    import sys

    root, tests = f"{ROOT}/", f"{ROOT}/tests/"
    ours = {}  # code file -> its path in the repository, or None (not ours)

    def our_file(code) -> str | None:
        name = code.co_filename
        if name not in ours:
            inside = name.startswith(root) and not name.startswith(tests) and "/.venv/" not in name
            ours[name] = name.removeprefix(root) if inside else None
        return ours[name]

    def holds_config(value) -> bool:
        if isinstance(value, argparse.Namespace):
            value = getattr(value, "config", None)
        elif isinstance(value, dict) and "experiment" in value:
            value = value.get("config")
        return isinstance(value, (ccjax.TrainConfig, dict))

    def files_above(frame) -> tuple[str, ...]:
        files = []
        while frame is not None:
            name = our_file(frame.f_code)
            if name is not None and (not files or files[-1] != name):
                files.append(name)
            frame = frame.f_back
        return tuple(reversed(files))

    paths = set()

    def trace(frame, event, arg):
        code = frame.f_code
        if event == "call" and our_file(code) is not None:
            names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
            if any(holds_config(frame.f_locals.get(name)) for name in names):
                paths.add(files_above(frame))

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        run()
    finally:
        sys.settrace(previous)
    return paths


def test_the_config_enters_no_file_twice_on_its_way_to_the_weights_and_the_figure(tmp_path):
    """Issue 20: following ``config`` from ``python -m experiments.scale_sweep`` to the weights
    and the figure, no call path enters a file twice (no callbacks back into a caller) or passes
    more than 8 files, and the experiment's part of the route is its runner, its own module and the training helpers."""
    from experiments import scale_sweep

    tiny = ["--scales", "0,1", "--seeds", "1", "--steps", "10", "--batch-size", "32", "--d-embed", "20"]
    tiny += ["--eval-rel-sem", "0.2", "--out", str(tmp_path / "out")]
    paths = config_call_paths(lambda: scale_sweep.main(tiny))
    assert any("ccjax/engine/_train.py" in path for path in paths)  # the trace reached the training
    assert any(path[-1] == "ccjax/io.py" for path in paths)  # and the saved config, read for the figure
    assert [path for path in paths if len(set(path)) < len(path)] == []
    assert max(map(len, paths)) <= 8, max(paths, key=len)  # issue 20: at most 8 files on the way
    experiment_files = {name for path in paths for name in path if name.startswith("experiments/")}
    runner = ("_spec", "scale_sweep", "_experiment", "_distributed")
    assert experiment_files <= {f"experiments/{name}.py" for name in runner}
