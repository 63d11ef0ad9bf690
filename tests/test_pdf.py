"""`make pdf`: the whole book as one PDF, with its math typeset and its numbers.

The PDF is printed once per session from the session's build (its execution cache is
reused, so nothing is executed again).
"""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata

import bookbuild
import nbformat
import pytest
from conftest import build_started, once_per_session, require_browser
from myst_nb.core.variables import format_plain_text
from pypdf import PdfReader
from test_chapters import glued_from_cache
from test_math_rendering import LEFT_AS_TEX_JS

# One worker prints the PDF and runs its tests; as a group they start early
# (conftest.pytest_collection_modifyitems says why).
pytestmark = [pytest.mark.book, pytest.mark.browser, pytest.mark.xdist_group("pdf")]

GLUE_TEXT = re.compile(r"\{glue:text\}`([A-Za-z0-9_]+)(?::([^`]*))?`")


@pytest.fixture(scope="session")
def pdf_text(built_book, tmp_path_factory) -> list[str]:
    """The text of each page of the PDF printed from the session's build."""
    output = built_book.parents[1]
    require_browser()  # make pdf prints with Chromium

    def make(folder):
        # `make pdf` itself (a process of its own: Playwright's sync API cannot run
        # inside this worker's, which the browser tests may have started).
        script = bookbuild.ROOT / "code" / "bookbuild.py"
        done = subprocess.run([sys.executable, str(script), "--pdf", "--output",
                               str(output)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        # The session's build filled this cache: make pdf must execute nothing again
        # (unless the build is an author's, made before an edit: REPARAM_BUILT_BOOK).
        if build_started(built_book) is not None:
            assert "bookbuild: executing" not in done.stdout, done.stdout[-3000:]
        (folder / "path").write_text(done.stdout.strip().splitlines()[-1])

    folder = once_per_session(tmp_path_factory, "pdf", make)
    reader = PdfReader((folder / "path").read_text())
    # Ligatures ("ﬁ", "ﬀ") and line breaks are undone, so that phrases can be found.
    return [" ".join(unicodedata.normalize("NFKC", page.extract_text()).split())
            for page in reader.pages]


def glued_numbers_in_prose(path) -> list[tuple[str, str]]:
    """The numbers a chapter's prose glues, in order: each key and its format."""
    found = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            found += [(match.group(1), match.group(2) or "")
                      for match in GLUE_TEXT.finditer(cell.source)]
    return found


def printed(value, spec: str) -> str:
    """The value as ``{glue:text}`key:spec``` prints it (myst-nb's own formatting)."""
    return format_plain_text(repr(value), spec)


def test_every_chapter_is_in_the_pdf_in_order_with_a_glued_number(pdf_text, built_book):
    glued = glued_from_cache(bookbuild.ROOT, built_book.parent / ".jupyter_cache")
    chapters = bookbuild.chapter_notebooks()
    starts = []
    for path in chapters:
        heading = nbformat.read(path, as_version=4).cells[0].source
        title = next(line[2:] for line in heading.splitlines() if line.startswith("# "))
        # Each chapter starts a page, after the one before it.
        pages = [i for i, page in enumerate(pdf_text) if page.startswith(title)]
        assert pages and pages[0] > max(starts, default=0), f"no page starts {title!r}"
        starts.append(pages[0])
    for path, start, end in zip(chapters, starts, [*starts[1:], len(pdf_text)],
                                strict=True):
        # The first glued number with at least three digits (a "6" proves nothing),
        # looked for in the chapter's own pages.
        values = glued[path.stem]
        found = next(((k, s) for k, s in glued_numbers_in_prose(path)
                      if sum(c.isdigit() for c in printed(values[k], s)) >= 3), None)
        assert found, f"{path.stem} glues no number of three digits or more"
        number = printed(values[found[0]], found[1])
        chapter_text = " ".join(pdf_text[start:end])
        assert number in chapter_text, f"{path.stem}: {found[0]} = {number} not shown"


def test_the_pdf_has_its_front_and_back_matter_and_no_tex_source(pdf_text):
    text = " ".join(pdf_text)
    assert "The reparameterization trick, derived and tested" in pdf_text[0]
    assert "Bibliography" in text and "Kingma" in text
    assert "Solution" in text  # solutions print after their exercises
    assert "interactive figure on the website" in text
    # MathJax removes its delimiters as it typesets: one left means a formula that
    # was not typeset.
    assert not re.search(r"\\\(|\\\)|\\\[|\\\]", text)
    assert len(pdf_text) >= 10 * len(bookbuild.chapter_notebooks())


def test_the_printed_page_has_every_formula_typeset(pdf_text, built_book, offline_page):
    # The page make pdf printed, as the printer saw it (see test_math_rendering.py).
    printed_page = built_book.parents[1] / "_build" / "singlehtml" / "book.html"
    found = offline_page.open(printed_page).evaluate(LEFT_AS_TEX_JS)
    assert found["tex"] == [] and found["errors"] == 0
    assert found["typeset"] >= 100
