"""mkdocs hook: the repository's committed figures (``figures/*.png``) and its reproduction report
(``REPRODUCTION.md``, as ``reproduction.md``) join the site, so pages link to them where they live."""

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]


def on_files(files, config):
    def add(source: Path, destination: str) -> None:
        files.append(File.generated(config, destination, abs_src_path=str(source)))

    for figure in sorted((ROOT / "figures").glob("*.png")):
        add(figure, f"figures/{figure.name}")
    add(ROOT / "REPRODUCTION.md", "reproduction.md")
    return files
