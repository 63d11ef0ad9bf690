"""The book builds strictly from clean, every toc entry becomes a page, and strictness is real."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml

from conftest import ROOT, build_book

pytestmark = pytest.mark.book


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def test_every_toc_entry_has_a_page(built_book):
    files = toc_files()
    assert len(files) >= 7
    for entry in files:
        page = built_book / f"{entry}.html"
        assert page.exists(), f"{entry} from _toc.yml has no page {page}"


ERROR_MARKERS = [
    ("traceback", re.compile(r"Traceback \(most recent call last\)")),
    ("error output", re.compile(r'class="[^"]*\boutput\b[^"]*\b(error|traceback)\b')),
    ("stderr output", re.compile(r'class="[^"]*\boutput\b[^"]*\bstderr\b')),
    ("warning block", re.compile(r'class="[^"]*\bsystem-message\b')),
]


def test_no_page_shows_an_error_or_stderr(built_book):
    pages = sorted(built_book.rglob("*.html"))
    assert pages
    for page in pages:
        html = page.read_text(encoding="utf-8")
        for label, marker in ERROR_MARKERS:
            assert not marker.search(html), f"{page.relative_to(built_book)} contains a {label}"


def test_notebooks_in_git_have_no_outputs_or_counts():
    tracked = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    notebooks = tracked or [str(p.relative_to(ROOT)) for p in (ROOT / "chapters").glob("*.ipynb")]
    assert len(notebooks) >= 5
    for name in notebooks:
        notebook = json.loads((ROOT / name).read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                assert cell.get("outputs") == [], f"{name}: a code cell has outputs"
                assert cell.get("execution_count") is None, f"{name}: a code cell has a count"


def _minimal_book(tmp_path: Path, chapter: nbformat.NotebookNode) -> Path:
    """The real _config.yml with a two-page toc: the title page and ``chapter``."""
    book = tmp_path / "book"
    (book / "chapters").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", book / "_config.yml")
    shutil.copy(ROOT / "chapters" / "references.bib", book / "chapters" / "references.bib")
    (book / "chapters" / "index.md").write_text("# Title\n\nA page.\n")
    nbformat.write(chapter, book / "chapters" / "broken.ipynb")
    (book / "_toc.yml").write_text("format: jb-book\nroot: chapters/index\n"
                                   "chapters:\n  - file: chapters/broken\n")
    return book


def _chapter_with(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    real = nbformat.read(ROOT / "chapters" / "01_change_of_variables.ipynb", as_version=4)
    chapter = nbformat.v4.new_notebook(metadata=real.metadata)
    chapter.cells = [nbformat.v4.new_markdown_cell("# A chapter\n\nSome text."), cell]
    return chapter


@pytest.mark.parametrize("cell, expected", [
    (nbformat.v4.new_code_cell("raise RuntimeError('deliberately broken cell')"),
     "deliberately broken cell"),
    (nbformat.v4.new_markdown_cell("A reference to {ref}`a-label-that-does-not-exist`."),
     "a-label-that-does-not-exist"),
    (nbformat.v4.new_code_cell("import sys; print('a warning on stderr', file=sys.stderr)"),
     "stderr"),
], ids=["cell-error", "sphinx-warning", "stderr-output"])
def test_a_broken_chapter_fails_the_build(tmp_path, cell, expected):
    book = _minimal_book(tmp_path, _chapter_with(cell))
    result = build_book(book, tmp_path / "out")
    assert result.returncode != 0, "the strict build passed a broken chapter"
    assert expected in result.stdout + result.stderr


def test_the_same_minimal_book_builds_when_not_broken(tmp_path):
    # Guards the test above: it must fail because of the broken cell, not the set-up.
    book = _minimal_book(tmp_path, _chapter_with(nbformat.v4.new_code_cell("1 + 1")))
    result = build_book(book, tmp_path / "out")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
