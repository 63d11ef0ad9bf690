"""Every chapter glues the same numbers whatever the global random state.

The determinism check. The session's strict build executed every chapter once, in
kernels that start as a reader's do. Here every chapter is executed a second time, in
kernels whose global random generators (Python's, NumPy's, PyTorch's) are seeded
differently at start-up and whose string hashes are salted differently. Every glued
number must be the same in both executions (except wall-clock timings a chapter glues:
names with "seconds", "elapsed", or ending "_time").

Why this comparison, and not two plain executions: PyTorch's global generator starts
from the same fixed seed in every new process, so an unseeded ``torch.randn`` in a
chapter, or a package function that draws from the global generator, would give the
same numbers twice and pass. Changing the start-up state makes any number that depends
on global random state, or on the order of a set of strings, differ.
"""

from __future__ import annotations

import ast
from pathlib import Path

import bookbuild
import nbformat
import pytest
from conftest import ROOT, once_per_session
from jupyter_cache import get_cache

GLUE_PREFIX = "application/papermill.record/"
CHAPTERS = [path.stem for path in bookbuild.chapter_notebooks()]
# Run by every kernel of the second execution before the chapter's first cell.
OTHER_GLOBAL_STATE = """
c.InteractiveShellApp.exec_lines = [
    "import random, numpy, torch",
    "random.seed(20261206); numpy.random.seed(20261206); torch.manual_seed(20261206)",
]
"""


def read_glue(notebook: nbformat.NotebookNode) -> dict:
    """Every glued value's text form, parsed to a Python value where it is a literal."""
    glued = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            for mime, value in output.get("data", {}).items():
                if mime.startswith(GLUE_PREFIX) and mime.endswith("text/plain"):
                    key = output["metadata"]["scrapbook"]["name"]
                    try:
                        glued[key] = ast.literal_eval(value)
                    except (ValueError, SyntaxError):
                        glued[key] = value
    return glued


def glued_from_cache(book: Path, cache_path: Path) -> dict[str, dict]:
    """Each chapter's glued values, from the executed notebook in ``cache_path``.

    (The build's jupyter_execute/ copies are no use: myst-nb removes the outputs of
    ``glue(..., display=False)`` from them.)
    """
    cache = get_cache(str(cache_path))
    glued = {}
    for path in bookbuild.chapter_notebooks(book):
        try:
            _, executed = cache.merge_match_into_notebook(nbformat.read(path, 4))
        except KeyError:
            pytest.fail(f"{path.name} has no execution in {cache_path}")
        glued[path.stem] = read_glue(executed)
    return glued


@pytest.fixture(scope="session")
def glued_by_the_build(built_book) -> dict[str, dict]:
    return glued_from_cache(ROOT, built_book.parent / ".jupyter_cache")


def execute_with_other_global_state(book: Path, folder: Path) -> Path:
    """Execute ``book``'s chapters into a new cache in ``folder``, in kernels that start
    with other global random states and string hashes; returns the cache's path."""
    profile = folder / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(OTHER_GLOBAL_STATE)
    other = {"IPYTHONDIR": str(folder / "ipython"), "PYTHONHASHSEED": "12345"}
    failed = bookbuild.execute_uncached(book, folder / "cache", env=other)
    assert failed == {}, f"failed in the second execution: {failed}"
    return folder / "cache"


@pytest.fixture(scope="session")
def glued_by_a_second_execution(tmp_path_factory) -> dict[str, dict]:
    # Once per session, whichever pytest-xdist worker asks first (the tests below share
    # a group, so one worker runs them all while the others go on). It does not wait
    # for the book build: the two overlap, and the cores stay busy while Sphinx builds
    # on one of them (a suite's first minute used 82-91 % of both cores before, 99-100 %
    # after; one run each).
    def execute(folder: Path) -> Path:
        return execute_with_other_global_state(ROOT, folder)

    folder = once_per_session(tmp_path_factory, "second-execution", execute)
    return glued_from_cache(ROOT, folder / "cache")


def is_a_timing(key: str) -> bool:
    """Glued wall-clock timings (names with "seconds", "elapsed" or ending "_time")."""
    return "seconds" in key or "elapsed" in key or key.endswith("_time")


def numbers(glued: dict) -> dict:
    return {k: v for k, v in glued.items()
            if isinstance(v, (int, float, complex)) and not isinstance(v, bool)}


@pytest.mark.book
@pytest.mark.xdist_group("second-execution")
@pytest.mark.parametrize("name", CHAPTERS)
def test_two_executions_glue_identical_values(glued_by_a_second_execution,
                                              glued_by_the_build, name):
    first = glued_by_the_build[name]
    second = glued_by_a_second_execution[name]
    assert first.keys() == second.keys()
    for key, value in first.items():
        if not is_a_timing(key):
            assert second[key] == value, key


@pytest.mark.book
def test_the_chapters_glue_many_numbers(glued_by_the_build):
    # Guards the test above against comparing nothing.
    counts = {name: len(numbers(glued)) for name, glued in glued_by_the_build.items()}
    assert sum(counts.values()) >= 40, counts
    assert min(counts.values()) >= 3, counts


@pytest.mark.book
def test_the_other_global_state_changes_an_unseeded_draw(tmp_path):
    # Guards the comparison above: a chapter that draws from PyTorch's or NumPy's
    # global generator must glue other values in the second execution.
    book = tmp_path / "book"
    (book / "chapters").mkdir(parents=True)
    (book / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    (book / "_toc.yml").write_text("format: jb-book\nroot: chapters/index\n"
                                   "chapters:\n  - file: chapters/draw\n")
    cell = ("import numpy, torch\nfrom myst_nb import glue\n"
            "glue('torch_draw', float(torch.rand(1)), display=False)\n"
            "glue('numpy_draw', float(numpy.random.rand()), display=False)")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    notebook.metadata = nbformat.read(bookbuild.chapter_notebooks()[0], 4).metadata
    nbformat.write(notebook, book / "chapters" / "draw.ipynb")
    plain = tmp_path / "plain"
    assert bookbuild.execute_uncached(book, plain) == {}
    other = execute_with_other_global_state(book, tmp_path / "other")
    first = glued_from_cache(book, plain)["draw"]
    second = glued_from_cache(book, other)["draw"]
    assert first["torch_draw"] != second["torch_draw"]
    assert first["numpy_draw"] != second["numpy_draw"]
