"""The chapters as committed: no outputs, and visible code that teaches.

A chapter's code cell is *visible* on the website unless its input is folded or
removed (tags ``hide-input``, ``hide-cell``, ``remove-input``, ``remove-cell``).
Checks of claims sit in folded cells that print a receipt (``reparam.book.verified``);
so each chapter shows at most 15 ``assert`` lines, and no visible cell is longer than
30 lines (CONTRIBUTING.md, "Checks are folded, not hidden").
"""

from __future__ import annotations

import ast

import nbformat
import pytest
from bookbuild import chapter_notebooks

FOLDED = {"hide-input", "hide-cell", "remove-input", "remove-cell"}
MAX_VISIBLE_ASSERTS = 15
MAX_VISIBLE_CELL_LINES = 30
NOTEBOOKS = chapter_notebooks()


def visible_code_cells(notebook) -> list[list[str]]:
    cells = []
    for cell in notebook.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell.cell_type == "code" and not tags & FOLDED:
            cells.append(cell.source.splitlines())  # blank lines are scrolled past too
    return cells


def test_the_book_has_its_chapters():
    assert len(NOTEBOOKS) >= 2, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_or_counts(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_visible_code_teaches(path):
    cells = visible_code_cells(nbformat.read(path, as_version=4))
    asserts = sum(line.lstrip().startswith("assert") for cell in cells for line in cell)
    longest = max((len(cell) for cell in cells), default=0)
    assert asserts <= MAX_VISIBLE_ASSERTS, f"{asserts} visible assert lines"
    assert longest <= MAX_VISIBLE_CELL_LINES, f"a visible cell of {longest} lines"


def receipt_follows_every_assert(source: str) -> bool:
    """Whether a top-level ``verified(...)`` call comes after the cell's last assert
    (so the receipt shows only if every check above it passed)."""
    tree = ast.parse(source)
    last_assert = max((node.lineno for node in ast.walk(tree)
                       if isinstance(node, ast.Assert)), default=0)
    return any(isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
               and getattr(node.value.func, "id", None) == "verified"
               and node.lineno > last_assert for node in tree.body)


def test_receipt_rule_reads_the_code_not_the_text():
    assert receipt_follows_every_assert("assert x\nverified('x')")
    assert not receipt_follows_every_assert("verified('x')\nassert x")
    assert not receipt_follows_every_assert("assert x\n# verified('x')")
    assert not receipt_follows_every_assert("assert x\ns = \"verified('x')\"")
    in_a_loop = "for i in y:\n    verified('x')\n    assert i"
    assert not receipt_follows_every_assert(in_a_loop)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_folded_check_shows_its_receipt(path):
    # A claim's check (a hide-input cell with an assert) shows what it verified, after
    # its last assert; a guard that only keeps the prose true goes in a remove-cell.
    silent = [cell.get("id") for cell in nbformat.read(path, as_version=4).cells
              if cell.cell_type == "code"
              and "hide-input" in cell.metadata.get("tags", [])
              and "assert" in cell.source
              and not receipt_follows_every_assert(cell.source)]
    assert silent == [], f"folded checks with no receipt after their asserts: {silent}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_shown_on_the_page_fits_88_characters(path):
    # ruff's 88 columns count display width, in which a combining hat (the one in "ε̂")
    # takes none; the page's code box is sized for 88 characters, each counted.
    removed = {"remove-input", "remove-cell"}
    cells = nbformat.read(path, as_version=4).cells
    shown = [cell.source for cell in cells
             if cell.cell_type == "code"
             and not removed & set(cell.metadata.get("tags", []))]
    long = [line for source in shown for line in source.splitlines() if len(line) > 88]
    assert long == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_first_code_cell_says_what_to_install_without_reparam(path):
    # A downloaded chapter run where reparam is missing stops with one line saying what
    # to install (tests/test_downloads.py runs that), not with a traceback.
    notebook = nbformat.read(path, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert 'find_spec("reparam") is None' in first.source
    assert "raise SystemExit(" in first.source
    assert "remove-cell" in first.metadata.get("tags", [])


def test_the_count_sees_tags_and_counts_blank_lines():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("assert 1\n\nassert 2"),
        nbformat.v4.new_code_cell("assert 3", metadata={"tags": ["hide-input"]}),
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["remove-cell"]}),
    ])
    # A blank line is a line the reader scrolls past: a cell's length counts it.
    assert visible_code_cells(notebook) == [["assert 1", "", "assert 2"]]
