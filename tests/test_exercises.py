"""Exercises: in every chapter, numbered, each with a solution that code checks.

On the website a solution starts hidden and opens when its title is clicked
(sphinx-exercise's dropdown class, toggled by sphinx-togglebutton); in the notebook it
is ordinary visible markdown. Every solution holds a code cell that asserts its result,
so the strict build fails if a stated answer is wrong. (Clicking a solution open:
tests/test_chapter_pages.py.)
"""

from __future__ import annotations

import re

import bookbuild
import nbformat
import pytest
from bs4 import BeautifulSoup
from conftest import ROOT

CHAPTERS = [path.stem for path in bookbuild.chapter_notebooks()]
SOLUTION_START = re.compile(r"```\{solution-start\}\s+(\S+)")


def _soup(built_book, chapter):
    html = built_book / "chapters" / f"{chapter}.html"
    return BeautifulSoup(html.read_text(encoding="utf-8"), "html.parser")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_solution_in_the_notebook_has_a_checking_cell(chapter):
    """Between solution-start and solution-end stands a code cell with an assert."""
    notebook = nbformat.read(ROOT / "chapters" / f"{chapter}.ipynb", as_version=4)
    open_label, checked, labels = None, set(), []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            # A markdown cell may close one solution and open the next: the state after
            # the cell is set by whichever directive comes last in it.
            starts = list(SOLUTION_START.finditer(cell.source))
            labels += [start.group(1) for start in starts]
            last_end = cell.source.rfind("{solution-end}")
            if starts and starts[-1].start() > last_end:
                open_label = starts[-1].group(1)
            elif last_end >= 0:
                open_label = None
        elif open_label and "assert" in cell.source:
            checked.add(open_label)
            tags = cell.metadata.get("tags", [])
            assert "remove-cell" not in tags, f"{chapter}: {open_label} hides its check"
    assert 3 <= len(labels) <= 5, f"{chapter}: {len(labels)} solutions"
    assert set(labels) == checked, f"{chapter}: unchecked {set(labels) - checked}"


@pytest.mark.book
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_exercises_are_numbered_and_each_has_a_solution(built_book, chapter):
    soup = _soup(built_book, chapter)
    exercises = soup.select("div.exercise")
    solutions = soup.select("div.solution")
    assert 3 <= len(exercises) <= 5, f"{chapter}: {len(exercises)} exercises"
    assert len(solutions) == len(exercises)
    for exercise in exercises:
        title = exercise.select_one(".admonition-title").get_text(" ", strip=True)
        assert re.match(r"Exercise \d+", title), title
        assert exercise.get("id"), f"{chapter}: an exercise without a label"
    for solution in solutions:
        link = solution.select_one(".admonition-title a")
        assert link and link["href"].startswith("#"), (
            "solution not linked to its exercise"
        )
        cells = solution.select("div.cell")
        assert cells and any("assert" in c.get_text() for c in cells)
