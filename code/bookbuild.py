"""The book's build settings and its build, in one place.

``make book`` runs ``python code/bookbuild.py``, and the tests import this module;
nothing else holds a build setting. A build has two steps:

1. jupyter-cache's own execution worker, in a pool of one process per core, executes
   the chapters missing from the execution cache. A chapter that fails is not cached.
2. ``jupyter-book build --all -W -n --keep-going`` re-reads every page from a fresh
   Sphinx environment and takes each chapter's outputs from the cache. A chapter not in
   the cache is executed again here and fails the build, and any warning fails it, on
   every build, not only the first.
3. The site's downloads: the ``reparam`` wheel and the pinned requirements a reader
   installs to run a downloaded chapter (page "Run the chapters yourself").

The execution settings (timeout, errors) are read from ``_config.yml``. The cache
keys a chapter on its code cells only; what else its outputs depend on, the ``reparam``
package and the pinned requirements, empties the cache when it changes.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")
STRICT_FLAGS = ["--all", "-W", "-n", "--keep-going"]
# One math-library thread per kernel: one kernel runs per core, and more threads than
# cores slow every kernel down. Every build uses it, so a glued number does not depend
# on how the build was scheduled (floating-point sums depend on the thread count).
KERNEL_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "OPENBLAS_NUM_THREADS": "1"}


def execute_settings(book: Path = ROOT) -> dict:
    """The ``execute:`` section of the book's ``_config.yml``."""
    return yaml.safe_load((book / "_config.yml").read_text())["execute"]


def chapter_notebooks(book: Path = ROOT) -> list[Path]:
    """The book's notebooks, in the order of its table of contents (``_toc.yml``)."""
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    entries = toc.get("chapters", []) + [
        chapter for part in toc.get("parts", []) for chapter in part["chapters"]]
    paths = [book / f"{entry['file']}.ipynb" for entry in entries]
    return [path for path in paths if path.exists()]


def package_fingerprint(book: Path = ROOT) -> str:
    """A hash of what the cache key cannot see: ``code/reparam`` and requirements."""
    digest = hashlib.sha256()
    files = sorted((book / "code" / "reparam").rglob("*.py"))
    for path in [*files, book / "requirements.txt"]:
        if path.exists():
            digest.update(path.relative_to(book).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def empty_stale_cache(book: Path, cache_path: Path) -> None:
    """Empty the cache if it was filled with another package or requirements."""
    stamp = cache_path / "package-fingerprint"
    fingerprint = package_fingerprint(book)
    if stamp.exists() and stamp.read_text() != fingerprint:
        shutil.rmtree(cache_path)
    cache_path.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint)


def execute_uncached(book: Path, cache_path: Path) -> list[str]:
    """Step 1: execute the book's chapters missing from the cache, in parallel.

    Returns the chapters that failed (they are not cached). The pool takes chapters in
    reverse book order: the last chapters train models and take longest, and starting
    the longest first lets the two cores finish together.
    """
    from jupyter_cache import get_cache
    from jupyter_cache.executors.basic import ExecutionWorkerLocalMProc, ProcessData

    os.environ.update(KERNEL_ENV)  # the kernels inherit it
    empty_stale_cache(book, cache_path)
    cache = get_cache(str(cache_path))
    for record in cache.list_project_records():
        cache.remove_nb_from_project(record.pk)
    for path in reversed(chapter_notebooks(book)):
        cache.add_nb_to_project(str(path))
    settings = execute_settings(book)
    jobs = [ProcessData(record.pk, record.uri, cache, settings["timeout"],
                        settings["allow_errors"]) for record in cache.list_unexecuted()]
    # jupyter-cache's own worker, in a pool of one process per core. chunksize=1 hands
    # the next chapter to whichever kernel is free (the executor's own pool.map would
    # hand them out in pairs, so the two longest chapters could share one core).
    with multiprocessing.Pool() as pool:
        results = pool.map(ExecutionWorkerLocalMProc(), jobs, chunksize=1)
    return [uri for status, uri in results if status != 0]


def write_downloads(book: Path, html: Path) -> None:
    """Step 3: ``html/downloads/``: the package's wheel (built again only when the
    package changed) and requirements.txt without the editable install of the repo."""
    downloads = html / "downloads"
    stamp = downloads / "package-fingerprint"
    fingerprint = package_fingerprint(book) + (book / "pyproject.toml").read_text()
    if not stamp.exists() or stamp.read_text() != fingerprint:
        shutil.rmtree(downloads, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                        "--no-build-isolation", "-w", str(downloads), str(book)],
                       check=True, capture_output=True)
        stamp.write_text(fingerprint)
    pins = [line for line in (book / "requirements.txt").read_text().splitlines()
            if line.strip() != "-e ."]
    (downloads / "requirements.txt").write_text("\n".join(pins) + "\n")


def build(book: Path = ROOT, output: Path | None = None,
          capture: bool = False) -> subprocess.CompletedProcess:
    """Both steps: execute what the cache lacks, then build strictly (never raises).

    ``output``: build into ``output/_build`` (``--path-output``) instead of the book's
    own ``_build``. ``capture``: return the logs instead of printing them.
    """
    cache_path = (output or book) / "_build" / ".jupyter_cache"
    failed = execute_uncached(book, cache_path)
    note = "".join(f"failed, not cached: {uri}\n" for uri in failed)
    command = [str(JUPYTER_BOOK), "build", *STRICT_FLAGS, str(book)]
    if output is not None:
        command[2:2] = ["--path-output", str(output)]
    result = subprocess.run(command, capture_output=capture, text=True, cwd=book,
                            env={**os.environ, **KERNEL_ENV})
    if capture:
        result.stderr = note + result.stderr
    else:
        print(note, end="", file=sys.stderr)
    if result.returncode == 0 and (book / "code" / "reparam").is_dir():
        write_downloads(book, (output or book) / "_build" / "html")
    return result


def print_pdf(book: Path = ROOT, output: Path | None = None) -> Path:
    """The whole book as one PDF: a strict single-page build printed by Chromium,
    after MathJax has typeset every formula and the explorers have drawn."""
    from playwright.sync_api import sync_playwright

    build_dir = (output or book) / "_build"
    if execute_uncached(book, build_dir / ".jupyter_cache"):
        raise RuntimeError("a chapter failed: run make book to see which")
    command = [str(JUPYTER_BOOK), "build", *STRICT_FLAGS, "--builder", "singlehtml",
               str(book)] + (["--path-output", str(output)] if output else [])
    subprocess.run(command, check=True, cwd=book, env={**os.environ, **KERNEL_ENV})
    pdf, single = build_dir / "pdf" / "book.pdf", build_dir / "singlehtml"
    # The page's links are relative to the site's root, not to chapters/.
    shutil.copyfile(single / "chapters" / "index.html", single / "book.html")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        # As wide as the printed column, so that each explorer lays out to the paper.
        page = browser.new_page(viewport={"width": 660, "height": 900})
        page.goto((single / "book.html").as_uri())
        page.evaluate("() => MathJax.startup.promise")  # every formula typeset
        page.wait_for_function("() => [...document.querySelectorAll('[data-root-id]')]"
                               ".every(root => root.firstElementChild?.shadowRoot)")
        page.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
        page.pdf(path=str(pdf), format="A4", print_background=True, outline=True,
                 margin={side: "18mm" for side in ("top", "bottom", "left", "right")})
        browser.close()
    return pdf


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Build the book strictly.")
    parser.add_argument("--output", type=Path, help="build into OUTPUT/_build")
    parser.add_argument("--pdf", action="store_true", help="the book as one PDF")
    arguments = parser.parse_args()
    if arguments.pdf:
        print(print_pdf(ROOT, arguments.output))
        sys.exit(0)
    sys.exit(build(ROOT, arguments.output).returncode)
