"""The execution cache: what a rebuild reuses and what it executes again.

jupyter-cache keys a notebook on its code cells (source and metadata) and kernelspec: an
edit of the prose must reuse the cached outputs, an edit of a code cell must execute
that chapter again and only that one. Each chapter here glues a fresh random token, so a
chapter that was executed again shows a new token. Failures: see test_book_build.py.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, book_skeleton, build_book

pytestmark = pytest.mark.book

TOKEN_CELL = ("import uuid\nfrom myst_nb import glue\n"
              "glue('token_{name}', uuid.uuid4().hex, display=False)")


def two_chapter_book(tmp_path: Path) -> Path:
    book = book_skeleton(tmp_path)
    real = nbformat.read(ROOT / "chapters" / "01_change_of_variables.ipynb", 4)
    for name in ("a", "b"):
        chapter = nbformat.v4.new_notebook(metadata=real.metadata)
        chapter.cells = [
            nbformat.v4.new_markdown_cell(
                f"# Chapter {name}\n\nToken {{glue:}}`token_{name}`."),
            nbformat.v4.new_code_cell(TOKEN_CELL.format(name=name)),
        ]
        nbformat.write(chapter, book / "chapters" / f"{name}.ipynb")
    (book / "_toc.yml").write_text("format: jb-book\nroot: chapters/index\nchapters:\n"
                                   "  - file: chapters/a\n  - file: chapters/b\n")
    return book


def build_and_read_tokens(book: Path, output: Path) -> dict[str, str]:
    result = build_book(book, output)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    tokens = {}
    for name in ("a", "b"):
        html = (output / "_build" / "html" / "chapters" / f"{name}.html").read_text()
        found = re.findall(r"\b[0-9a-f]{32}\b", html)
        assert len(set(found)) == 1, f"chapter {name}'s page shows no single token"
        tokens[name] = found[0]
    return tokens


def edit_cell(path: Path, index: int, text: str) -> None:
    notebook = nbformat.read(path, 4)
    notebook.cells[index].source += text
    nbformat.write(notebook, path)


def test_prose_edit_reuses_the_cache_and_code_edit_reexecutes_one_chapter(tmp_path):
    book = two_chapter_book(tmp_path)
    out = tmp_path / "out"
    first = build_and_read_tokens(book, out)
    assert first["a"] != first["b"]

    edit_cell(book / "chapters" / "a.ipynb", 0, "\n\nA new sentence of prose.")
    after_prose = build_and_read_tokens(book, out)
    assert after_prose == first, "a prose edit executed a chapter again"
    page = (out / "_build" / "html" / "chapters" / "a.html").read_text()
    assert "A new sentence of prose." in page

    edit_cell(book / "chapters" / "a.ipynb", 1, "\nx = 1  # a code edit")
    after_code = build_and_read_tokens(book, out)
    assert after_code["a"] != first["a"], "a code edit did not execute its chapter"
    assert after_code["b"] == first["b"], "a code edit in a executed chapter b too"


def test_make_empties_the_cache_when_the_package_changes():
    # The cache key ignores the reparam package that the chapters import; the Makefile
    # empties the cache when it changes (a dry run: `make -n` builds nothing).
    package_file = next((ROOT / "code" / "reparam").glob("*.py")).relative_to(ROOT)
    dry = subprocess.run(["make", "-n", "-W", str(package_file), "book"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert "rm -rf _build/.jupyter_cache" in dry
    assert dry.index("rm -rf _build/.jupyter_cache") < dry.index("jupyter-book build")


def test_the_execution_order_names_every_chapter_once():
    # The Makefile hands chapters to the kernels in EXECUTION_ORDER (tuned to their
    # measured times); a chapter missing from it would still run, but last.
    database = subprocess.run(["make", "-p", "-n", "book"], cwd=ROOT,
                              capture_output=True, text=True).stdout
    variables = dict(x.split(" := ", 1) for x in database.splitlines() if " := " in x)
    ordered = variables["NOTEBOOKS_ORDERED"].split()
    chapters = sorted(f"chapters/{p.name}" for p in (ROOT / "chapters").glob("*.ipynb"))
    assert sorted(ordered) == chapters
    assert ordered[0] == "chapters/09_diffusion.ipynb"  # the longest starts first
    names = sorted(variables["EXECUTION_ORDER"].split())
    assert names == [Path(p).stem for p in chapters]
