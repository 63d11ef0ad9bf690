"""Every chapter's numbers come from its own seeded generators: the determinism check.

The suite's builds watch the global random generators as they execute the chapters
(``tests/global_draw_watch.py``, run at each kernel's start): a cell that draws from
Python's, NumPy's or PyTorch's global generator, or seeds it, fails with an error
naming the generator, and the build stops there, whatever the cell's tags. (``make
book`` does not watch: an author learns of such a draw from ``make test``.) A chapter
whose numbers come only from generators it seeds itself gives every reader, and every
build, the same numbers.

Why this check, and not a second execution of every chapter with other global states
(the check until December 2026): that second execution cost as much as the build's
own (about 160 s of CPU, a fifth of ``make test``), and the watch sees more. A draw
from a global generator fails the build even when no glued number depends on it, and
so does a seeded one (``torch.manual_seed``), which a second execution passes. What
only a second execution would see:

- a generator seeded from the operating system (``numpy.random.default_rng()``,
  ``torch.Generator().seed()``): a static check below finds these calls in the
  chapters and the package;
- a number that depends on the order of a set (the string-hash salt differs from
  kernel to kernel): not checked. That is what the cheaper check gives up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import bookbuild
import nbformat
import pytest
from conftest import ROOT, WATCH
from jupyter_cache import get_cache

GLUE_PREFIX = "application/papermill.record/"


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


# (a cell's code, whether the watch must fail it)
CELLS = [
    ("import random, numpy, torch\nx = 1", False),
    ("torch.rand(1)", True),  # an unseeded draw from PyTorch's global generator
    ("torch.rand(1, generator=torch.Generator().manual_seed(0))", False),
    ("numpy.random.rand()", True),
    # Again: most NumPy draws leave the key array as it was (its position moves).
    ("numpy.random.rand()", True),
    ("numpy.random.seed(0)", True),
    ("numpy.random.default_rng(0).random()", False),
    ("random.random()", True),
    ("torch.manual_seed(0)", True),  # deterministic, but it changes the reader's state
    ("with torch.random.fork_rng(devices=[]):\n"
     "    torch.manual_seed(0)\n    torch.distributions.Gamma(2.0, 1.0).rsample()",
     False),
    ("import torch.nn\ntorch.nn.Linear(2, 2)", True),  # initialised from the global one
    ("y = 2", False),  # judged on its own, after the cells above
]


def executed(cells: list[str], watched: bool, monkeypatch) -> nbformat.NotebookNode:
    """``cells`` executed in one kernel, every error kept; ``watched``: in the
    environment the suite's builds give chapter kernels (conftest.build_book)."""
    from nbclient import NotebookClient

    for name, value in bookbuild.KERNEL_ENV.items():
        monkeypatch.setenv(name, value)
    if watched:
        monkeypatch.setenv("PYTHONSTARTUP", str(WATCH))
    else:
        monkeypatch.delenv("PYTHONSTARTUP", raising=False)
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(code) for code in cells])
    NotebookClient(notebook, kernel_name="python3", allow_errors=True,
                   timeout=120).execute()
    return notebook


def test_the_watch_fails_exactly_the_cells_that_draw_from_a_global_generator(
        monkeypatch):
    notebook = executed([code for code, _ in CELLS], True, monkeypatch)
    failed = [[output.get("ename") for output in cell.outputs
               if output["output_type"] == "error"] for cell in notebook.cells]
    assert failed == [["GlobalRandomDraw"] if fails else [] for _, fails in CELLS]


def test_the_watch_leaves_the_chapters_namespace_as_a_readers(monkeypatch):
    probe = ["sorted(dir())"]
    names = [executed(probe, watched, monkeypatch).cells[0].outputs[0]["data"]
             for watched in (True, False)]
    assert names[0] == names[1]
    assert "_i" in names[0]["text/plain"]  # the probe sees IPython's own names


def python_sources() -> dict[str, str]:
    """The code of every package module and every chapter (magics dropped), by name."""
    sources = {path.relative_to(ROOT).as_posix(): path.read_text()
               for path in sorted((ROOT / "code" / "reparam").rglob("*.py"))}
    for path in bookbuild.chapter_notebooks():
        cells = nbformat.read(path, as_version=4).cells
        code = "\n".join(c.source for c in cells if c.cell_type == "code")
        sources[path.name] = "\n".join(line for line in code.splitlines()
                                       if not line.lstrip().startswith(("%", "!")))
    return sources


def unseeded_generators(code: str) -> list[str]:
    """Calls that seed a generator from the operating system: ``default_rng()`` and
    ``.seed()`` without an argument."""
    return [ast.unparse(node) for node in ast.walk(ast.parse(code))
            if isinstance(node, ast.Call) and not node.args and not node.keywords
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("default_rng", "seed")]


def test_no_chapter_or_package_module_seeds_a_generator_from_the_system():
    sources = python_sources()
    assert len(sources) > 20, sorted(sources)
    assert {name: found for name, code in sources.items()
            if (found := unseeded_generators(code))} == {}


@pytest.mark.parametrize(("code", "found"), [
    ("rng = np.random.default_rng()", ["np.random.default_rng()"]),
    ("from numpy.random import default_rng\nr = default_rng()", ["default_rng()"]),
    ("g = torch.Generator()\ng.seed()", ["g.seed()"]),
    ("rng = np.random.default_rng(0)\ng = torch.Generator().manual_seed(1)", []),
])
def test_the_unseeded_generator_check(code, found):
    assert unseeded_generators(code) == found


@pytest.mark.book
def test_the_chapters_glue_numbers(built_book):
    # The PDF's test and the expert readers rely on glued numbers from every chapter.
    glued = glued_from_cache(ROOT, built_book.parent / ".jupyter_cache")
    counts = {name: sum(isinstance(v, (int, float)) and not isinstance(v, bool)
                        for v in values.values()) for name, values in glued.items()}
    assert sum(counts.values()) >= 40, counts
    assert min(counts.values()) >= 3, counts
