"""The book's build (``make book``, ``make pdf``; the tests import its settings): (1)
execute in parallel the chapters the execution cache lacks (settings: ``_config.yml``);
(2) build strictly from the cache: a warning fails the build, and after a failed build
every page is read again; (3) write the site's downloads."""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import multiprocessing
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
STRICT_FLAGS = ["-W", "-n", "--keep-going"]
CACHE = Path("_build", ".jupyter_cache")  # myst-nb's place, under a build's output
# One math-library thread per kernel (one kernel per core), in every build: a glued
# number must not depend on the scheduling (sums depend on the thread count). No
# start-up file of the author's runs in a chapter's kernel (the tests give theirs).
KERNEL_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "OPENBLAS_NUM_THREADS": "1", "PYTHONSTARTUP": ""}


def chapter_notebooks(book: Path = ROOT) -> list[Path]:
    """The book's notebooks in ``_toc.yml``'s order (its other entries are pages)."""
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    entries = toc.get("chapters", []) + [
        chapter for part in toc.get("parts", []) for chapter in part["chapters"]]
    for entry in entries:
        if not any((book / f"{entry['file']}{s}").exists() for s in (".ipynb", ".md")):
            raise ValueError(f"_toc.yml: {entry['file']} matches no .ipynb or .md file")
    return [book / f"{e['file']}.ipynb" for e in entries
            if (book / f"{e['file']}.ipynb").exists()]


def package_fingerprint(book: Path = ROOT) -> str:
    """A hash of what the cache key cannot see: ``code/reparam``, the requirements
    and every installed package's version."""
    digest = hashlib.sha256(sys.version.encode())
    for path in [*sorted((book / "code" / "reparam").rglob("*.py")),
                 book / "requirements.txt", book / "pyproject.toml"]:
        if path.exists():
            digest.update(path.relative_to(book).as_posix().encode())
            digest.update(path.read_bytes())
    # The environment's packages, each once, whatever the caller's sys.path (a pytest-
    # xdist worker holds code/, with its reparam.egg-info, more often than a script).
    site = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
    installed = sorted({f"{d.metadata['Name']}=={d.version}"
                        for d in importlib.metadata.distributions(path=site)})
    return digest.hexdigest() + hashlib.sha256(str(installed).encode()).hexdigest()


def empty_stale_cache(book: Path, cache: Path) -> bool:
    """Empty the cache unless it was filled with this package and these packages;
    whether it is new (emptied, or not there: every chapter will run)."""
    stamp, fingerprint = cache / "package-fingerprint", package_fingerprint(book)
    stale = not stamp.exists() or stamp.read_text() != fingerprint
    if stale:
        shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint)
    return stale


def _set_environment(environment: dict) -> None:  # in each pool process, at start
    os.environ.update(environment)


def execute_uncached(book: Path, cache: Path, startup: Path | None = None) -> dict:
    """Step 1: execute the chapters missing from the cache, in parallel, the last
    chapters (they train models, the longest) first, each kernel starting by running
    ``startup``, if given; returns the failed ones, each with its traceback."""
    from jupyter_cache import get_cache
    from jupyter_cache.executors.basic import ExecutionWorkerLocalMProc, ProcessData

    empty_stale_cache(book, cache)
    store = get_cache(str(cache))
    for record in store.list_project_records():
        store.remove_nb_from_project(record.pk)
    for path in reversed(chapter_notebooks(book)):
        store.add_nb_to_project(str(path))
    settings = yaml.safe_load((book / "_config.yml").read_text())["execute"]
    jobs = [ProcessData(record.pk, record.uri, store, settings["timeout"],
                        settings["allow_errors"]) for record in store.list_unexecuted()]
    if not jobs:
        return {}
    processes = min(len(jobs), os.cpu_count() or 1)
    print(f"bookbuild: executing {len(jobs)} chapter(s) on {processes} process(es)")
    # jupyter-cache's own worker; its kernels inherit the pool processes' environment.
    # chunksize=1 hands the next chapter to whichever process is free.
    context = multiprocessing.get_context("spawn")
    environment = {**os.environ, **KERNEL_ENV, "PYTHONSTARTUP": str(startup or "")}
    with context.Pool(processes, _set_environment, (environment,)) as pool:
        results = pool.map(ExecutionWorkerLocalMProc(), jobs, chunksize=1)
    return {uri: store.get_project_record(uri).traceback
            for status, uri in results if status != 0}


def write_downloads(book: Path, output: Path) -> None:
    """Step 3: ``html/downloads/``: the wheel (from a clean copy) and the pins."""
    downloads = output / "_build" / "html" / "downloads"
    stamp = output / "_build" / "downloads-fingerprint"
    fingerprint = package_fingerprint(book)
    if not stamp.exists() or stamp.read_text() != fingerprint:
        shutil.rmtree(downloads, ignore_errors=True)
        with tempfile.TemporaryDirectory() as copy:
            for name in ("pyproject.toml", "README.md", "code/reparam"):
                (shutil.copytree if (book / name).is_dir() else shutil.copy)(
                    book / name, Path(copy) / name)
            subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                            "--no-build-isolation", "-w", str(downloads), copy],
                           check=True)
        stamp.write_text(fingerprint)
    pins = (book / "requirements.txt").read_text().split("\n# The book's helper")[0]
    (downloads / "requirements.txt").write_text(pins.rstrip() + "\n")


def jupyter_book(book: Path, output: Path | None, *options: str,
                 capture: bool = False) -> subprocess.CompletedProcess:
    """Step 2: the strict build, into ``output/_build`` if given (never raises)."""
    into = ["--path-output", str(output)] if output else []
    return subprocess.run([str(JUPYTER_BOOK), "build", *STRICT_FLAGS, *options, *into,
                           str(book)], capture_output=capture, text=True, cwd=book,
                          env={**os.environ, **KERNEL_ENV})


def build(book: Path = ROOT, output: Path | None = None, capture: bool = False,
          startup: Path | None = None) -> subprocess.CompletedProcess:
    """The three steps; ``capture``: return the logs instead of printing them;
    ``startup``: a file each chapter's kernel runs first."""
    # Sphinx re-reads all pages, not just changed ones, after a failed or stopped build
    # and after a package change (every chapter then runs again, with new outputs).
    unfinished = (output or book) / "_build" / "unfinished-build"
    if empty_stale_cache(book, (output or book) / CACHE):
        unfinished.parent.mkdir(parents=True, exist_ok=True)
        unfinished.touch()
    failed = execute_uncached(book, (output or book) / CACHE, startup)
    if failed:  # its traceback, without executing it again in step 2
        log = "".join(f"bookbuild: {uri} failed:\n{tb}\n" for uri, tb in failed.items())
        print("" if capture else log, end="", file=sys.stderr)
        return subprocess.CompletedProcess([], 1, "", log)
    reread = ["--all"] if unfinished.exists() else []
    unfinished.touch()
    result = jupyter_book(book, output, *reread, capture=capture)
    if result.returncode == 0:
        unfinished.unlink()
        if (book / "code" / "reparam").is_dir():
            write_downloads(book, output or book)
    return result


def print_pdf(book: Path = ROOT, output: Path | None = None) -> Path:
    """The whole book as one PDF: a strict single-page build printed by Chromium,
    after MathJax has typeset every formula and the explorers have drawn."""
    from playwright.sync_api import sync_playwright

    build_dir = (output or book) / "_build"
    failed = execute_uncached(book, (output or book) / CACHE)
    if failed or jupyter_book(book, output, "--all", "--builder=singlehtml").returncode:
        raise SystemExit(f"make pdf: the single-page build failed {list(failed)}")
    pdf, single = build_dir / "pdf" / "book.pdf", build_dir / "singlehtml"
    # The page's links are relative to the site's root, not to chapters/.
    shutil.copyfile(single / "chapters" / "index.html", single / "book.html")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        # As wide as the printed column, so that each explorer lays out to the paper.
        page = browser.new_page(viewport={"width": 660, "height": 900})
        # One 190,000-element page: 15-40 s to load and typeset here, more on a machine
        # busy with other tests; Playwright's 30 s default failed one CI run.
        page.set_default_timeout(180_000)
        page.goto((single / "book.html").as_uri())
        page.evaluate("() => MathJax.startup.promise")  # every formula typeset
        page.wait_for_function("() => [...document.querySelectorAll('[data-root-id]')]"
                               ".every(root => root.firstElementChild?.shadowRoot)")
        # sphinx-togglebutton opens every solution on "beforeprint".
        page.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
        page.pdf(path=str(pdf), format="A4", print_background=True, outline=True,
                 margin={side: "18mm" for side in ("top", "bottom", "left", "right")})
        browser.close()
    return pdf


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Build the book strictly.")
    parser.add_argument("--output", type=Path, help="build into OUTPUT/_build")
    parser.add_argument("--pdf", action="store_true", help="the book as one PDF")
    options = parser.parse_args()
    if options.pdf:
        print(print_pdf(ROOT, options.output))
    else:
        sys.exit(build(ROOT, options.output).returncode)
