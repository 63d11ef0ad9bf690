"""The book's build settings and its build, in one place: ``make book`` runs
``python code/bookbuild.py`` (``--pdf`` for ``make pdf``), and the tests import it.

1. Execute the chapters missing from the execution cache, in parallel, with
   jupyter-cache's own worker; settings from ``_config.yml``. A failed chapter is not
   cached. The cache keys a chapter on its code cells; it is emptied when what else
   the outputs depend on changes: the ``reparam`` package or the requirements.
2. ``jupyter-book build --all -W -n --keep-going``: every page read again, outputs
   from the cache; an uncached chapter executes again and fails the build, and so does
   any warning, on every build, not only the first.
3. The site's downloads: the ``reparam`` wheel and the pinned requirements.
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
    """Step 1: execute the chapters missing from the cache, in parallel, the last
    chapters (they train models, the longest) first; returns those that failed."""
    from jupyter_cache import get_cache
    from jupyter_cache.executors.basic import ExecutionWorkerLocalMProc, ProcessData

    os.environ.update(KERNEL_ENV)  # the kernels inherit it
    empty_stale_cache(book, cache_path)
    cache = get_cache(str(cache_path))
    for record in cache.list_project_records():
        cache.remove_nb_from_project(record.pk)
    for path in reversed(chapter_notebooks(book)):
        cache.add_nb_to_project(str(path))
    settings = yaml.safe_load((book / "_config.yml").read_text())["execute"]
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
    pins = (book / "requirements.txt").read_text().splitlines()
    (downloads / "requirements.txt").write_text("".join(f"{line}\n" for line in pins
                                                        if line.strip() != "-e ."))


def jupyter_book(book: Path, output: Path | None, *options: str,
                 capture: bool = False) -> subprocess.CompletedProcess:
    """Step 2: the strict build, into ``output/_build`` if given (never raises)."""
    into = ["--path-output", str(output)] if output else []
    return subprocess.run([str(JUPYTER_BOOK), "build", *STRICT_FLAGS, *options, *into,
                           str(book)], capture_output=capture, text=True, cwd=book,
                          env={**os.environ, **KERNEL_ENV})


def build(book: Path = ROOT, output: Path | None = None,
          capture: bool = False) -> subprocess.CompletedProcess:
    """The three steps; ``capture``: return the logs instead of printing them."""
    failed = execute_uncached(book, (output or book) / "_build" / ".jupyter_cache")
    note = "".join(f"failed, not cached: {uri}\n" for uri in failed)
    result = jupyter_book(book, output, capture=capture)
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
    jupyter_book(book, output, "--builder", "singlehtml").check_returncode()
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
        sys.exit(print(print_pdf(ROOT, arguments.output)))
    sys.exit(build(ROOT, arguments.output).returncode)
