"""mkdocs hooks: the repository's committed figures (``figures/*.png``) and its reproduction report
(``REPRODUCTION.md``, as ``reproduction.md``) join the site, so pages link to them where they live; and
the docstrings' Sphinx roles (``:func:`ccjax.train```) become links into the API reference."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A role as mkdocstrings renders a docstring's :role:`name` (``~`` shows the last part only) or
# :role:`title <name>`.
ROLE = re.compile(r":(?:func|class|data|meth|mod|attr|exc|obj):<code>(~?)([\w.]+)(?:\s+&lt;([\w.]+)&gt;)?</code>")


def on_files(files, config):
    from mkdocs.structure.files import File  # here, so that the tests import this file without mkdocs

    def add(source: Path, destination: str) -> None:
        files.append(File.generated(config, destination, abs_src_path=str(source)))

    for figure in sorted((ROOT / "figures").glob("*.png")):
        add(figure, f"figures/{figure.name}")
    add(ROOT / "REPRODUCTION.md", "reproduction.md")
    return files


def on_page_content(html, page, config, files):
    """Each role becomes an optional cross-reference for mkdocs-autorefs, which runs after this hook:
    a link where the API reference renders the name (as written, or else relative to the page's
    module, e.g. ``traced`` on the ``ccjax.engine`` page), else the name as plain code."""
    module = _page_module(page.file.src_uri)

    def reference(match: re.Match) -> str:
        short, name = match[1], match[3] or match[2]
        shown = match[2] if match[3] else name.rsplit(".", 1)[-1] if short else name
        relative = f' slug="{module}.{name}"' if module and not name.startswith("ccjax") else ""
        return f'<autoref identifier="{name}"{relative} optional><code>{shown}</code></autoref>'

    return ROLE.sub(reference, html)


def _page_module(source: str) -> str | None:
    """The module an API page documents (``api/engine.md``: ``ccjax.engine``), None for other pages."""
    if not source.startswith("api/") or source == "api/index.md":
        return None
    stem = Path(source).stem
    return "ccjax" if stem in ("ccjax", "io-report") else f"ccjax.{stem}"
