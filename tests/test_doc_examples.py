"""Every Python block of the README and of the docs site runs (issue 21, item 4).

The rules, which ``docs/contributing.md`` states for writers:

- Every fenced block marked ``python`` in ``README.md`` and ``docs/**/*.md`` runs; nothing is
  skipped. A snippet that is not meant to run is not marked ``python`` (``text``, ``bash``).
- The blocks of one page run in order, in one namespace, in a fresh temporary working folder,
  so a page can build on its earlier blocks.
- A block that runs at paper size is shrunk by an HTML comment on the line right above it,
  ``<!-- test: {"old": "new", ...} -->``: a JSON object of text replacements. Each must apply,
  so the comment cannot silently go stale.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(?:<!-- test: (\{.*?\}) -->\n)?```python\n(.*?)```", flags=re.S)


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
    run_page(page)
