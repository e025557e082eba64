"""Every Python block of the README and of the docs site runs (issue 21, item 4).

The rules, which ``docs/contributing.md`` states for writers:

- Every fenced block marked ``python`` in ``README.md`` and ``docs/**/*.md`` runs; nothing is
  skipped. A snippet that is not meant to run is not marked ``python`` (``text``, ``bash``).
- The blocks of one page run in order, in one namespace, in a fresh temporary working folder,
  so a page can build on its earlier blocks.
- A block that runs at paper size is shrunk by an HTML comment on the line right above it,
  ``<!-- test: {"old": "new", ...} -->``: a JSON object of text replacements. Each must apply,
  so the comment cannot silently go stale.
- A page whose blocks change what a process holds (registering a mixing family, a task or an
  axis) says ``<!-- test-page: own-process -->`` and runs in a Python process of its own.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(?:<!-- test: (\{.*?\}) -->\n)?```python\n(.*?)```", flags=re.S)
OWN_PROCESS = "<!-- test-page: own-process -->"


def pages() -> list[Path]:
    """README.md and every page of the docs site that holds a Python block."""
    candidates = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [page for page in candidates if "```python" in page.read_text(encoding="utf-8")]


def shrunk_blocks(page: Path) -> list[str]:
    """The page's Python blocks in order, each with the replacements of its ``test`` comment."""
    blocks = []
    for replacements, code in BLOCK.findall(page.read_text(encoding="utf-8")):
        for old, new in (json.loads(replacements) if replacements else {}).items():
            assert old in code, f"{page.name}: the test replacement {old!r} does not occur in its block"
            code = code.replace(old, new)
        blocks.append(code)
    return blocks


def run_page(page: Path) -> None:
    """Run the page's (shrunk) blocks in order, in one namespace."""
    namespace = {"__name__": "__doc_example__"}
    for number, code in enumerate(shrunk_blocks(page), start=1):
        exec(compile(code, f"{page.relative_to(ROOT)} (Python block {number})", "exec"), namespace)


def test_every_python_block_is_found():
    """The block pattern sees every ``python`` fence (a fence it missed would never run)."""
    for page in pages():
        text = page.read_text(encoding="utf-8")
        assert len(shrunk_blocks(page)) == text.count("```python"), page


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_page_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # what a page writes lands here
    if OWN_PROCESS in page.read_text(encoding="utf-8"):
        environment = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        command = f"from pathlib import Path; import tests.test_doc_examples as t; t.run_page(Path({str(page)!r}))"
        done = subprocess.run([sys.executable, "-c", command], capture_output=True, text=True, env=environment)
        assert done.returncode == 0, done.stderr[-4000:]
    else:
        run_page(page)
