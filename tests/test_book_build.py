"""The book builds strictly from clean, every toc entry is a page, strictness is real.

The book is built with the execution cache (`execute_notebooks: cache`): a broken
chapter must fail the first build AND the next one, with the first one's cache kept; see
tests/test_build_cache.py for what the cache reuses and what it re-executes.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import bookbuild
import nbformat
import pytest
import yaml
from conftest import ROOT, book_skeleton, build_book, build_started, cache_folder
from jupyter_cache import get_cache

pytestmark = pytest.mark.book


def test_every_toc_entry_has_a_page(built_book):
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [chapter["file"] for part in toc["parts"]
                             for chapter in part["chapters"]]
    # Every notebook in chapters/ is in the table of contents (none left out).
    listed = {ROOT / f"{entry}.ipynb" for entry in files}
    assert set((ROOT / "chapters").glob("*.ipynb")) <= listed
    for entry in files:
        page = built_book / f"{entry}.html"
        assert page.exists(), f"{entry} from _toc.yml has no page {page}"


def test_step_one_executed_every_chapter_and_step_two_none(built_book):
    # The session's build started from an empty cache: every chapter must have been
    # executed by step 1 (a cache record created after the build started), and the
    # strict build (step 2) must have taken every chapter from the cache: if step 1
    # silently did nothing, myst-nb would execute them all one by one, and pass.
    started = build_started(built_book)
    if started is None:
        pytest.skip("REPARAM_BUILT_BOOK: testing a build made earlier")
    cache = get_cache(str(cache_folder(built_book.parents[1])))
    for path in bookbuild.chapter_notebooks():
        record = cache.match_cache_notebook(nbformat.read(path, as_version=4))
        # jupyter-cache stores UTC; SQLite drops the time zone.
        created = record.created.replace(tzinfo=dt.UTC).timestamp()
        assert created >= started - 1, path.name
        log = (built_book.parents[1] / "build.log").read_text()
        assert f"{path}: Using cached notebook" in log, path.name
    assert "Executing notebook" not in log


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
            where = page.relative_to(built_book)
            assert not marker.search(html), f"{where} contains a {label}"


def minimal_book(tmp_path: Path, chapter: nbformat.NotebookNode) -> Path:
    """The real _config.yml with a two-page toc: the title page and ``chapter``."""
    book = book_skeleton(tmp_path)
    nbformat.write(chapter, book / "chapters" / "broken.ipynb")
    (book / "_toc.yml").write_text("format: jb-book\nroot: chapters/index\n"
                                   "chapters:\n  - file: chapters/broken\n")
    return book


def chapter_with(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    real = nbformat.read(ROOT / "chapters" / "01_change_of_variables.ipynb", 4)
    chapter = nbformat.v4.new_notebook(metadata=real.metadata)
    chapter.cells = [nbformat.v4.new_markdown_cell("# A chapter\n\nSome text."), *cells]
    return chapter


CELL_ERROR = nbformat.v4.new_code_cell("raise RuntimeError('deliberately broken cell')")
# Each breaks the build through one Sphinx warning (-W makes any warning fatal),
# reported on its own chapter's file: (chapter, breaking cell, the warning's text).
WARNED = [
    ("sphinx_warning",
     nbformat.v4.new_markdown_cell("See {ref}`a-label-that-does-not-exist`."),
     "WARNING: undefined label: 'a-label-that-does-not-exist'"),
    ("stderr_output",
     nbformat.v4.new_code_cell("import sys; print('on stderr', file=sys.stderr)"),
     "ERROR: stderr was found in the cell outputs"),
    # A Python warning is printed on stderr: the same failure, named by myst-nb.
    ("python_warning",
     nbformat.v4.new_code_cell("import warnings; warnings.warn('a real warning')"),
     "ERROR: stderr was found in the cell outputs"),
]


def test_a_failing_cell_fails_this_build_and_the_next(tmp_path):
    # The "second build reports success" trap: the second build keeps the first one's
    # cache and output folder, as an author's `make book` does; it must fail again.
    good = nbformat.v4.new_code_cell("1 + 1")
    book = minimal_book(tmp_path, chapter_with(good, CELL_ERROR))
    for attempt in ("first", "second"):
        result = build_book(book, tmp_path / "out")
        log = result.stdout + result.stderr
        assert result.returncode != 0, f"the {attempt} build passed a broken chapter"
        assert "deliberately broken cell" in log, f"{attempt} build: {log[-3000:]}"
    # A failed notebook is never in the cache (so it cannot be served as good).
    cache = get_cache(str(cache_folder(tmp_path / "out")))
    assert cache.list_cache_records() == []


def test_a_draw_from_a_global_generator_fails_the_build_even_in_a_removed_cell(
        tmp_path):
    # tests/global_draw_watch.py fails the cell itself (tests/test_chapters.py: which
    # draws), so no tag can hide it: myst-nb never looks at a removed cell's outputs.
    draw = nbformat.v4.new_code_cell("import torch\nx = torch.rand(1)",
                                     metadata={"tags": ["remove-cell"]})
    good = nbformat.v4.new_code_cell("1 + 1")
    book = minimal_book(tmp_path, chapter_with(good, draw))
    result = build_book(book, tmp_path / "out")
    log = result.stdout + result.stderr
    assert result.returncode != 0, "a build passed a draw from a global generator"
    assert "GlobalRandomDraw" in log and "PyTorch's global random generator" in log, log


def test_no_start_up_file_of_the_authors_runs_in_a_chapter(tmp_path, monkeypatch):
    # make book's kernels run no PYTHONSTARTUP of the author's shell (it could print to
    # stderr, draw random numbers or fill the namespace); only the suite's watch runs.
    startup = tmp_path / "authors_startup.py"
    startup.write_text("AUTHORS_STARTUP_RAN = True\n")
    monkeypatch.setenv("PYTHONSTARTUP", str(startup))
    cell = nbformat.v4.new_code_cell('assert "AUTHORS_STARTUP_RAN" not in globals()')
    book = minimal_book(tmp_path, chapter_with(cell))
    result = bookbuild.build(book, tmp_path / "out", capture=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_each_warning_fails_this_build_and_the_next(tmp_path):
    # One book, one broken chapter per kind of warning (one build instead of three):
    # each chapter must be reported by its own warning line, and the build must count
    # exactly that many warnings, so each one alone fails a -W build. Built twice.
    book = book_skeleton(tmp_path)
    for name, cell, _ in WARNED:
        chapter = chapter_with(nbformat.v4.new_code_cell("1 + 1"), cell)
        nbformat.write(chapter, book / "chapters" / f"{name}.ipynb")
    (book / "_toc.yml").write_text(
        "format: jb-book\nroot: chapters/index\nchapters:\n"
        + "".join(f"  - file: chapters/{name}\n" for name, _, _ in WARNED))
    for attempt in ("first", "second"):
        result = build_book(book, tmp_path / "out")
        log = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
        assert result.returncode != 0, f"the {attempt} build passed broken chapters"
        for name, _, warning in WARNED:
            line = re.compile(rf"chapters/{name}\.ipynb:\d+: {re.escape(warning)}")
            assert line.search(log), f"{attempt} build, {name}: {log[-3000:]}"
        count = f"build finished with problems, {len(WARNED)} warnings"
        assert count in log, log[-3000:]


def test_the_same_minimal_book_builds_when_not_broken(tmp_path):
    # Guards the test above: it must fail because of the broken cell, not the set-up.
    book = minimal_book(tmp_path, chapter_with(nbformat.v4.new_code_cell("1 + 1")))
    result = build_book(book, tmp_path / "out")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
