"""Code structure: the sweep and evaluation engines stay in small pieces (issue 13)."""

import ast
from pathlib import Path

import pytest

CCJAX = Path(__file__).resolve().parents[1] / "ccjax"
MAX_FUNCTION_LINES = 60  # docstring included; aim at about 50
MODULES = ["_sweep.py", "sweep_plan.py", "evaluate.py", "curve_plan.py"]


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


@pytest.mark.parametrize("module", MODULES)
def test_no_function_of_the_engines_is_long(module):
    assert long_functions((CCJAX / module).read_text()) == []
