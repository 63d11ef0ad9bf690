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

pytestmark = pytest.mark.book
SHORT_CHAPTER = "02_seeing_the_map"
EXECUTE = """
import sys, nbformat, nbclient
notebook = nbformat.read(sys.argv[1], as_version=4)
nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                        resources={"metadata": {"path": sys.argv[2]}}).execute()
"""


def test_the_site_ships_the_wheel_and_the_pinned_requirements(built_book):
    downloads = built_book / "downloads"
    (wheel,) = downloads.glob("reparam-*.whl")
    page = (built_book / "chapters" / "run_yourself.html").read_text(encoding="utf-8")
    assert f'href="../downloads/{wheel.name}"' in page
    assert 'href="../downloads/requirements.txt"' in page
    ours = (bookbuild.ROOT / "requirements.txt").read_text().splitlines()
    shipped = (downloads / "requirements.txt").read_text().splitlines()
    assert shipped == [line for line in ours if line.strip() != "-e ."]
    package = bookbuild.ROOT / "code"
    modules = {p.relative_to(package).as_posix()
               for p in (package / "reparam").rglob("*.py")}
    assert modules <= set(zipfile.ZipFile(wheel).namelist())


@pytest.mark.parametrize("path", bookbuild.chapter_notebooks(), ids=lambda p: p.stem)
def test_the_download_button_gives_the_executed_notebook(built_book, path):
    page = (built_book / "chapters" / f"{path.stem}.html").read_text(encoding="utf-8")
    assert f'href="../_sources/chapters/{path.name}"' in page
    download = nbformat.read(built_book / "_sources" / "chapters" / path.name, 4)
    source = nbformat.read(path, 4)
    assert [c.source for c in download.cells] == [c.source for c in source.cells]
    assert any(cell.get("outputs") for cell in download.cells), "no outputs"


def run_in(environment, notebook, folder) -> subprocess.CompletedProcess:
    python = environment / "bin" / "python"
    clean = {name: value for name, value in os.environ.items()
             if not name.startswith(("PYTHON", "JUPYTER", "IPYTHON", "VIRTUAL_ENV"))}
    clean["PATH"] = f"{environment / 'bin'}{os.pathsep}{clean.get('PATH', '')}"
    return subprocess.run([str(python), "-c", EXECUTE, str(notebook), str(folder)],
                          cwd=folder, env=clean, capture_output=True, text=True)


def test_a_downloaded_chapter_runs_in_a_new_environment(built_book, tmp_path):
    downloads, reader = built_book / "downloads", tmp_path / "reader"
    reader.mkdir()
    notebook = reader / f"{SHORT_CHAPTER}.ipynb"
    shutil.copy(built_book / "_sources" / "chapters" / notebook.name, notebook)
    environment = tmp_path / "env"
    venv.create(environment, with_pip=True)
    pip = [str(environment / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "-r", str(downloads / "requirements.txt")], check=True)
    without = run_in(environment, notebook, reader)
    assert without.returncode != 0
    assert "needs the book's helper package reparam" in without.stderr
    (wheel,) = downloads.glob("reparam-*.whl")
    subprocess.run([*pip, str(wheel)], check=True)
    with_wheel = run_in(environment, notebook, reader)
    assert with_wheel.returncode == 0, with_wheel.stderr[-3000:]


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
