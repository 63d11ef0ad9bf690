"""The execution cache: what a rebuild reuses and what it executes again.

jupyter-cache keys a notebook on its code cells (source and metadata) and kernelspec: an
edit of the prose must reuse the cached outputs, an edit of a code cell must execute
that chapter again and only that one. Each chapter here glues a fresh random token, so a
chapter that was executed again shows a new token. Failures: see test_book_build.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import bookbuild
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
    other_page = out / "_build" / "html" / "chapters" / "b.html"
    written = other_page.stat().st_mtime_ns

    edit_cell(book / "chapters" / "a.ipynb", 0, "\n\nA new sentence of prose.")
    after_prose = build_and_read_tokens(book, out)
    assert after_prose == first, "a prose edit executed a chapter again"
    page = (out / "_build" / "html" / "chapters" / "a.html").read_text()
    assert "A new sentence of prose." in page
    # After a good build Sphinx re-reads and rewrites only the edited page.
    assert other_page.stat().st_mtime_ns == written, "a prose edit of a rewrote b"

    edit_cell(book / "chapters" / "a.ipynb", 1, "\nx = 1  # a code edit")
    after_code = build_and_read_tokens(book, out)
    assert after_code["a"] != first["a"], "a code edit did not execute its chapter"
    assert after_code["b"] == first["b"], "a code edit in a executed chapter b too"


def test_after_a_package_edit_every_page_shows_the_new_outputs(tmp_path):
    # An edit of code/reparam or requirements.txt empties the cache, so every chapter
    # is executed again; Sphinx must then read every page again, not only the pages
    # whose source changed (here none), or the site keeps the old outputs.
    book, out = two_chapter_book(tmp_path), tmp_path / "out"
    (book / "requirements.txt").write_text("numpy\n")
    first = build_and_read_tokens(book, out)
    (book / "requirements.txt").write_text("numpy  # another pin\n")
    after = build_and_read_tokens(book, out)
    assert after["a"] != first["a"] and after["b"] != first["b"], (first, after)
    shutil.rmtree(out / bookbuild.CACHE)  # the cache deleted by hand, alone
    again = build_and_read_tokens(book, out)
    assert again["a"] != after["a"] and again["b"] != after["b"], (after, again)


def test_a_package_or_requirements_edit_empties_the_cache(tmp_path):
    # The cache key ignores what a chapter imports; bookbuild empties the cache when
    # code/reparam or requirements.txt changes, and keeps it otherwise.
    book, cache = tmp_path / "book", tmp_path / "cache"
    (book / "code" / "reparam").mkdir(parents=True)
    module, requirements = book / "code" / "reparam" / "m.py", book / "requirements.txt"
    module.write_text("x = 1\n")
    requirements.write_text("numpy==2.0\n")
    kept = cache / "executed.db"
    bookbuild.empty_stale_cache(book, cache)
    kept.write_text("a cached execution")
    for path, text, emptied in [(None, None, False), (module, "x = 2\n", True),
                                (book / "README.md", "prose\n", False),
                                (requirements, "numpy==2.1\n", True)]:
        if path:
            path.write_text(text)
        bookbuild.empty_stale_cache(book, cache)
        assert kept.exists() != emptied, path
        kept.write_text("a cached execution")


class Installed:
    """A stand-in for an installed package's importlib.metadata distribution."""

    def __init__(self, name: str, version: str):
        self.metadata, self.version = {"Name": name}, version


def test_an_unstamped_cache_or_other_installed_packages_empty_it(tmp_path,
                                                                 monkeypatch):
    # A cache made without bookbuild (no stamp: which package filled it?) is emptied,
    # and so is one filled while other versions of the packages were installed; the
    # same packages listed more than once keep it.
    book, cache = tmp_path / "book", tmp_path / "cache"
    book.mkdir()
    cache.mkdir()
    (cache / "executed.db").write_text("a cached execution")
    bookbuild.empty_stale_cache(book, cache)
    assert not (cache / "executed.db").exists()
    numpy, torch = Installed("numpy", "2.4.6"), Installed("torch", "2.13.0")
    for installed, emptied in [([numpy, torch], True), ([numpy, torch], False),
                               ([torch, numpy, torch], False),
                               ([Installed("numpy", "9.9.9"), torch], True)]:
        (cache / "executed.db").write_text("a cached execution")
        monkeypatch.setattr(bookbuild.importlib.metadata, "distributions",
                            lambda path, installed=installed: installed)
        bookbuild.empty_stale_cache(book, cache)
        assert (cache / "executed.db").exists() != emptied, installed


def test_a_script_and_a_test_worker_compute_the_same_fingerprint():
    # `make pdf`, run by the tests as a script, must find the session's cache its own:
    # the fingerprint must not depend on the caller's sys.path (code/ is on a pytest-
    # xdist worker's path more often than on a script's).
    code = "import bookbuild; print(bookbuild.package_fingerprint())"
    script = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "code",
                            capture_output=True, text=True, check=True)
    assert script.stdout.strip() == bookbuild.package_fingerprint()


def test_the_extension_version_follows_its_code_and_static_files(
        tmp_path, monkeypatch):
    # Sphinx reads and writes every page again when an extension's env_version changes
    # (a new environment); otherwise mostly the pages whose sources changed. book_ext's
    # env_version follows its code and book_static/, so a change there reaches every
    # page of the next build.
    import book_ext

    before = book_ext.source_version()
    assert book_ext.setup(mock.MagicMock())["env_version"] == before
    static = tmp_path / "book_static"
    shutil.copytree(book_ext.STATIC_DIR, static)
    monkeypatch.setattr(book_ext, "STATIC_DIR", static)
    assert book_ext.source_version() == before
    (static / "book.css").write_text((static / "book.css").read_text() + "/* edit */\n")
    edited_static = book_ext.source_version()
    assert edited_static != before
    module = tmp_path / "book_ext.py"
    module.write_text(Path(book_ext.__file__).read_text() + "# an edit\n")
    monkeypatch.setattr(book_ext, "__file__", str(module))
    assert book_ext.source_version() not in (before, edited_static)
