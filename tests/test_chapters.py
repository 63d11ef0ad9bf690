"""Every chapter's numbers come from its own seeded generators: the determinism check.

Every build watches the global random generators as it executes the chapters
(``code/global_draw_watch.py``, run at each kernel's start): a cell that draws from
NumPy's or PyTorch's global generator, or seeds it, prints so on stderr, and the
strict build fails at that cell. A chapter whose numbers come only from generators it
seeds itself gives every reader, and every build, the same numbers.

Why this check, and not a second execution of every chapter with other global states
(the check until December 2026): that second execution cost as much as the build's
own (about 160 s of CPU, a fifth of ``make test``), and the watch sees more. A draw
from a global generator fails the build even when no glued number depends on it, and
a seeded draw from a global generator (``torch.manual_seed``), which a second
execution passes, fails it too. Two things only a second execution saw are checked
otherwise, or given up:

- Python's own ``random``: the kernel draws from it between cells, so it cannot be
  watched; no chapter and no package module may import it (a test below).
- A number that depends on the order of a set (the string-hash salt differs from
  kernel to kernel): no longer compared. That is what the cheaper check gives up.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import bookbuild
import nbformat
import pytest
from conftest import ROOT
from jupyter_cache import get_cache

GLUE_PREFIX = "application/papermill.record/"
WATCH_MESSAGE = "drew from (or seeded) NumPy's or PyTorch's global random generator"


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


# (a cell's code, whether the watch must report it)
CELLS = [
    # The watch leaves the chapter's namespace as a fresh kernel's.
    ("assert sorted(n for n in dir() if n[0] != '_') == "
     "['In', 'Out', 'exit', 'get_ipython', 'open', 'quit']\nimport numpy, torch",
     False),
    ("torch.rand(1)", True),  # an unseeded draw from torch's global generator
    ("torch.rand(1, generator=torch.Generator().manual_seed(0))", False),
    ("numpy.random.rand()", True),
    ("numpy.random.default_rng(0).random()", False),
    ("torch.manual_seed(0)", True),  # deterministic, but it changes the reader's state
    ("with torch.random.fork_rng(devices=[]):\n"
     "    torch.manual_seed(0)\n    torch.distributions.Gamma(2.0, 1.0).rsample()",
     False),
    ("import torch.nn\ntorch.nn.Linear(2, 2)", True),  # initialised from the global one
    ("y = 2", False),  # judged on its own, after the cells above
]


def test_the_watch_reports_exactly_the_cells_that_draw_from_a_global_generator(
        tmp_path):
    # Executed as the build executes chapters (bookbuild's kernel environment).
    book = tmp_path / "book"
    (book / "chapters").mkdir(parents=True)
    (book / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    (book / "_toc.yml").write_text("format: jb-book\nroot: chapters/index\n"
                                   "chapters:\n  - file: chapters/draws\n")
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(code) for code, _ in CELLS])
    notebook.metadata = nbformat.read(bookbuild.chapter_notebooks()[0], 4).metadata
    nbformat.write(notebook, book / "chapters" / "draws.ipynb")
    assert bookbuild.execute_uncached(book, tmp_path / "cache") == {}
    _, executed = get_cache(str(tmp_path / "cache")).merge_match_into_notebook(
        nbformat.read(book / "chapters" / "draws.ipynb", 4))
    reported = [any(output.get("name") == "stderr" and WATCH_MESSAGE in output["text"]
                    for output in cell.outputs) for cell in executed.cells]
    assert reported == [expected for _, expected in CELLS]


def python_sources() -> dict[str, str]:
    """The code of every chapter and of every package module, by name."""
    sources = {path.relative_to(ROOT).as_posix(): path.read_text()
               for path in sorted((ROOT / "code" / "reparam").rglob("*.py"))}
    for path in bookbuild.chapter_notebooks():
        cells = json.loads(path.read_text())["cells"]
        sources[path.name] = "\n".join("".join(c["source"]) for c in cells
                                       if c["cell_type"] == "code")
    return sources


IMPORTS_RANDOM = re.compile(r"^\s*(import random\b|from random import)", re.MULTILINE)


def test_no_chapter_or_package_module_uses_pythons_random_module():
    sources = python_sources()
    assert len(sources) > 20, sorted(sources)
    assert [name for name, code in sources.items() if IMPORTS_RANDOM.search(code)] == []


@pytest.mark.parametrize("code", ["import random", "from random import random",
                                  "x = 1\n    import random as r"])
def test_the_random_module_check_sees_an_import(code):
    assert IMPORTS_RANDOM.search(code)


@pytest.mark.book
def test_the_chapters_glue_numbers(built_book):
    # The PDF's test and the expert readers rely on glued numbers from every chapter.
    glued = glued_from_cache(ROOT, built_book.parent / ".jupyter_cache")
    counts = {name: sum(isinstance(v, (int, float)) and not isinstance(v, bool)
                        for v in values.values()) for name, values in glued.items()}
    assert sum(counts.values()) >= 40, counts
    assert min(counts.values()) >= 3, counts
