"""Readers who leave the website: a downloaded chapter runs anywhere.

Each chapter page's download button gives the executed notebook; the site ships the
helper package as a wheel with the pinned requirements; and a downloaded chapter runs
in a new virtual environment outside the repository with just those two installed.
Without the wheel its first cell says what to install, instead of a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
import zipfile

import bookbuild
import nbformat
import pytest
import yaml
from bs4 import BeautifulSoup

# A group, so that the long new-environment test starts early
# (conftest.pytest_collection_modifyitems says why).
pytestmark = [pytest.mark.book, pytest.mark.xdist_group("downloads")]
SHORT_CHAPTER = "02_seeing_the_map"
# Executes a notebook as Jupyter's "run all" does (stopping at the first error) and
# writes it back, so that the test can read what each cell did.
EXECUTE = """
import sys, nbformat, nbclient
notebook = nbformat.read(sys.argv[1], as_version=4)
try:
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": sys.argv[2]}}).execute()
finally:
    nbformat.write(notebook, sys.argv[1])
"""


def test_the_site_ships_the_wheel_and_the_pinned_requirements(built_book):
    downloads = built_book / "downloads"
    (wheel,) = downloads.glob("reparam-*.whl")
    page = (built_book / "chapters" / "run_yourself.html").read_text(encoding="utf-8")
    assert f'href="../downloads/{wheel.name}"' in page
    assert 'href="../downloads/requirements.txt"' in page
    ours = (bookbuild.ROOT / "requirements.txt").read_text().splitlines()
    shipped = (downloads / "requirements.txt").read_text().splitlines()
    assert "-e ." in ours and shipped == ours[:len(shipped)]  # our pins, in order,
    assert not any(line.strip() == "-e ." for line in shipped)  # but not the repo
    assert "torch==" in "".join(shipped) and "jupyterlab==" in "".join(shipped)
    package = bookbuild.ROOT / "code"
    modules = {p.relative_to(package).as_posix()
               for p in (package / "reparam").rglob("*.py")}
    in_wheel = {name for name in zipfile.ZipFile(wheel).namelist()
                if name.endswith(".py")}
    assert in_wheel == modules  # no module missing, none left over from before


@pytest.mark.parametrize("path", bookbuild.chapter_notebooks(), ids=lambda p: p.stem)
def test_the_download_button_gives_the_executed_notebook(built_book, path):
    page = (built_book / "chapters" / f"{path.stem}.html").read_text(encoding="utf-8")
    assert f'href="../_sources/chapters/{path.name}"' in page
    download = nbformat.read(built_book / "_sources" / "chapters" / path.name, 4)
    source = nbformat.read(path, 4)
    assert [c.source for c in download.cells] == [c.source for c in source.cells]
    assert any(cell.get("outputs") for cell in download.cells), "no outputs"


def executed_in(environment, notebook, folder) -> list:
    """The code cells of ``notebook`` after executing it in ``environment``."""
    python = environment / "bin" / "python"
    clean = {name: value for name, value in os.environ.items()
             if not name.startswith(("PYTHON", "JUPYTER", "IPYTHON", "VIRTUAL_ENV"))}
    clean["PATH"] = f"{environment / 'bin'}{os.pathsep}{clean.get('PATH', '')}"
    subprocess.run([str(python), "-c", EXECUTE, str(notebook), str(folder)],
                   cwd=folder, env=clean)
    return [c for c in nbformat.read(notebook, 4).cells if c.cell_type == "code"]


def errors(cell) -> list:
    return [o for o in cell.outputs if o.output_type == "error"]


def test_a_downloaded_chapter_runs_in_a_new_environment(built_book, tmp_path):
    downloads, reader = built_book / "downloads", tmp_path / "reader"
    reader.mkdir()
    download = built_book / "_sources" / "chapters" / f"{SHORT_CHAPTER}.ipynb"
    environment = tmp_path / "env"
    venv.create(environment, with_pip=True)
    # (--no-compile: no bytecode for the 2 GB installed, which costs minutes of CPU and
    # changes nothing the test looks at.)
    pip = [str(environment / "bin" / "python"), "-m", "pip", "install", "-q",
           "--no-compile"]
    # Without the helper package: the first cell stops the chapter with one line.
    subprocess.run([*pip, "-r", str(downloads / "requirements.txt")], check=True)
    shutil.copy(download, reader)
    before = [c for c in nbformat.read(download, 4).cells if c.cell_type == "code"]
    first, *rest = executed_in(environment, reader / download.name, reader)
    (error,) = errors(first)
    assert error.ename == "SystemExit"
    assert error.evalue.startswith("This chapter needs the book's helper package")
    # Nothing else ran: every later cell is as the download had it.
    assert [c.execution_count for c in rest] == [c.execution_count for c in before[1:]]
    # As "Run the chapters yourself" says: the wheel and the pinned requirements.
    (wheel,) = downloads.glob("reparam-*.whl")
    subprocess.run([*pip, str(wheel), "-r", str(downloads / "requirements.txt")],
                   check=True)
    # The outputs the build left are cleared first, so that every one seen was made
    # here, in the new environment.
    notebook = nbformat.read(download, 4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(notebook, reader / download.name)
    cells = executed_in(environment, reader / download.name, reader)
    assert [errors(cell) for cell in cells] == [[]] * len(cells)
    assert all(cell.execution_count for cell in cells)


def test_the_title_page_citation_agrees_with_citation_cff(built_book):
    citation = yaml.safe_load((bookbuild.ROOT / "CITATION.cff").read_text())
    page = (bookbuild.ROOT / "chapters" / "index.md").read_text()
    bibtex = page[page.index("```bibtex"):]
    assert f"title   = {{{citation['title']}}}" in bibtex
    assert f"author  = {{{{{citation['authors'][0]['name']}}}}}" in bibtex
    assert f"year    = {{{citation['preferred-citation']['year']}}}" in bibtex
    assert f"version = {{{citation['version']}}}" in bibtex
    pyproject = (bookbuild.ROOT / "pyproject.toml").read_text()
    assert f'version = "{citation["version"]}"' in pyproject
    assert "CC BY-SA 4.0" in page and (bookbuild.ROOT / "LICENSE-TEXT").exists()
    html = (built_book / "chapters" / "index.html").read_text(encoding="utf-8")
    block = BeautifulSoup(html, "html.parser").select_one("div.highlight-bibtex")
    assert block is not None and "@book{reparambook2026," in block.get_text()
