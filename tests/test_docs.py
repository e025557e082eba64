"""The repository stands alone: its docs cite the paper and the authors' code, never files
outside the repository, and every ``docs/paper.md §N`` citation names a section that exists."""

import importlib.util
import re
import subprocess
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "docs" / "paper.md"
# Names of the notes that lived outside the repository while ccjax was written.
OUTSIDE = ("paper-spec", "design.md", "style.md", "../shared")


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / name for name in listed.split() if name.endswith((".py", ".md", ".toml", ".txt")) or "/" not in name]


def test_no_file_cites_notes_outside_the_repository():
    offenders = []
    for path in tracked_text_files():
        if path == Path(__file__).resolve() or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{path.relative_to(ROOT)}: {name}" for name in OUTSIDE if name in text]
    assert not offenders


def paper_sections() -> set[str]:
    """'1', '2', ..., '6', and '6.1' ... '6.8' from the headings and the numbered list of §6."""
    text = PAPER.read_text()
    sections = set(re.findall(r"^## §(\d+)", text, flags=re.M))
    experiments = text.split("## §6", 1)[1]
    sections |= {f"6.{n}" for n in re.findall(r"^(\d+)\. \*\*", experiments, flags=re.M)}
    return sections


def test_every_paper_citation_names_an_existing_section():
    sections = paper_sections()
    assert {"1", "2", "3", "4", "5", "6", "6.1", "6.8"} <= sections
    cited = set()
    for path in tracked_text_files():
        if path.is_file():
            text = path.read_text(errors="replace")
            for group in re.findall(r"docs/paper\.md,? ((?:§[0-9.]+[–-]?[0-9.]*(?:, )?)+)", text):
                for number in re.findall(r"(\d+(?:\.\d+)?)", group):
                    cited.add((number, str(path.relative_to(ROOT))))
    assert cited, "no citations found: the pattern is broken"
    missing = sorted(item for item in cited if item[0] not in sections)
    assert not missing


def test_the_paper_and_the_authors_code_are_cited_with_ids():
    for text in (PAPER.read_text(), (ROOT / "README.md").read_text()):
        assert "arXiv:2606.14673" in text
        assert "Stefan-Heimersheim/toy-model-of-computation-in-superposition" in text
        assert re.search(r"commit `?[0-9a-f]{7}", text)


def test_the_docs_hook_turns_docstring_roles_into_optional_api_links():
    """docs/_hooks.py: a docstring's Sphinx role (rendered by mkdocstrings as ``:func:<code>x</code>``)
    becomes an optional mkdocs-autorefs reference, relative names tried in the page's module."""
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    page = types.SimpleNamespace(file=types.SimpleNamespace(src_uri="api/engine.md"))
    html = (
        "see :func:<code>~ccjax.engine.traced</code>, :class:<code>TrainConfig</code> and "
        ":meth:<code>MixedReLU.loss_split\n&lt;ccjax.problem.MixedReLU.loss_split&gt;</code>"
    )
    assert hooks.on_page_content(html, page, None, None) == (
        'see <autoref identifier="ccjax.engine.traced" optional><code>traced</code></autoref>, '
        '<autoref identifier="TrainConfig" slug="ccjax.engine.TrainConfig" optional><code>TrainConfig</code></autoref>'
        ' and <autoref identifier="ccjax.problem.MixedReLU.loss_split" optional><code>MixedReLU.loss_split</code>'
        "</autoref>"
    )
    guide = types.SimpleNamespace(file=types.SimpleNamespace(src_uri="guide.md"))
    assert 'identifier="x" optional' in hooks.on_page_content(":func:<code>x</code>", guide, None, None)  # no module
