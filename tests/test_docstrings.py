"""Every public name documents itself (issue 21, item 3), in the Google style the API pages render.

A public function (or method of a public class) with parameters has an ``Args:`` section that
names each of them (in an entry of its own, or in another's: "``x`` and ``y`` label ..."); one
that returns something has ``Returns:`` (or ``Yields:``); a public class names its fields under
``Attributes:`` or ``Args:``. The public names are those of each public module's ``__all__``
(or, without one, its names not starting with ``_`` defined in it).
"""

import dataclasses
import importlib
import inspect
import re
import types

import pytest

MODULES = (
    "ccjax",
    "ccjax.problem",
    "ccjax.engine",
    "ccjax.measure",
    "ccjax.measure.analysis",
    "ccjax.measure.baselines",
    "ccjax.measure.statistics",
    "ccjax.cis",
    "ccjax.plot",
    "ccjax.io",
    "ccjax.report",
)


def public_objects() -> dict[str, object]:
    """Qualified name -> object, each object once (under the first module that exports it)."""
    found, seen = {}, set()
    for name in MODULES:
        module = importlib.import_module(name)
        names = getattr(module, "__all__", None)
        if names is None:
            defined_here = [n for n, v in vars(module).items() if getattr(v, "__module__", None) == name]
            names = [n for n in defined_here if not n.startswith("_")]
        for attribute in names:
            value = getattr(module, attribute)
            if isinstance(value, types.ModuleType) or not (inspect.isclass(value) or inspect.isfunction(value)):
                continue
            if id(value) not in seen:
                seen.add(id(value))
                found[f"{name}.{attribute}"] = value
    return found


def _section(doc: str, *headings: str) -> str:
    """The text of the first of ``headings`` in ``doc`` (up to the next Google-style heading), or ""."""
    for heading in headings:
        match = re.search(rf"^\s*{heading}:\s*$(.*?)(?=^\s*[A-Z][A-Za-z ]+:\s*$|\Z)", doc, flags=re.M | re.S)
        if match:
            return match.group(1)
    return ""


def _parameters(function) -> list[str]:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [n for n, p in signature.parameters.items() if n not in ("self", "cls") and p.kind not in kinds]


def _returns_something(function) -> bool:
    annotation = inspect.signature(function).return_annotation
    return annotation not in (None, "None", inspect.Signature.empty, type(None))


def function_problems(name: str, function) -> list[str]:
    doc = inspect.getdoc(function) or ""
    if not doc:
        return [f"{name}: no docstring"]
    problems = []
    parameters = _parameters(function)
    args = _section(doc, "Args", "Arguments", "Parameters")
    missing = [p for p in parameters if not re.search(rf"\b{re.escape(p)}\b", args)]
    if missing:
        problems.append(f"{name}: Args does not name {', '.join(missing)}")
    if _returns_something(function) and not _section(doc, "Returns", "Yields"):
        problems.append(f"{name}: no Returns section")
    return problems


def _fields(cls) -> list[str]:
    if dataclasses.is_dataclass(cls):
        return [field.name for field in dataclasses.fields(cls) if not field.name.startswith("_")]
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return [field for field in cls._fields if not field.startswith("_")]
    return []


def class_problems(name: str, cls) -> list[str]:
    doc = inspect.getdoc(cls) or ""
    if not doc or doc == inspect.getdoc(object):
        return [f"{name}: no docstring"]
    fields = _fields(cls)
    section = _section(doc, "Attributes", "Args")
    missing = [f for f in fields if not re.search(rf"^\s*{re.escape(f)}\b", section, flags=re.M)]
    problems = [f"{name}: Attributes does not name {', '.join(missing)}"] if missing else []
    for method_name, method in vars(cls).items():
        if method_name.startswith("_") or not inspect.isfunction(method):
            continue
        problems += function_problems(f"{name}.{method_name}", method)
    return problems


OBJECTS = public_objects()


def test_the_public_surface_is_found():
    assert len(OBJECTS) > 150 and "ccjax.sweep" in OBJECTS and "ccjax.TrainConfig" in OBJECTS


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_documents_its_arguments_and_result(module):
    problems = []
    for name, value in OBJECTS.items():
        if name.rsplit(".", 1)[0] != module:
            continue
        problems += class_problems(name, value) if inspect.isclass(value) else function_problems(name, value)
    assert not problems, f"{len(problems)} undocumented:\n" + "\n".join(problems)


def test_the_api_reference_renders_every_public_module():
    """mkdocstrings renders a module's public names where a page says ``::: <module>``: each
    public module has such a page entry, so every public name is in the API reference."""
    from pathlib import Path

    pages = Path(__file__).resolve().parents[1] / "docs" / "api"
    rendered = set(re.findall(r"^::: ([\w.]+)\s*$", "\n".join(p.read_text() for p in pages.glob("*.md")), re.M))
    assert set(MODULES) <= rendered, sorted(set(MODULES) - rendered)
