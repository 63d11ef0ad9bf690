"""The book's build settings and its build, in one place.

``make book`` runs ``python code/bookbuild.py``, and the tests import this module;
nothing else holds a build setting. A build has two steps:

1. jupyter-cache's own execution worker, in a pool of one process per core, executes
   the chapters missing from the execution cache. A chapter that fails is not cached.
2. ``jupyter-book build --all -W -n --keep-going`` re-reads every page from a fresh
   Sphinx environment and takes each chapter's outputs from the cache. A chapter not in
   the cache is executed again here and fails the build, and any warning fails it, on
   every build, not only the first.

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
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Build the book strictly.")
    parser.add_argument("--output", type=Path, help="build into OUTPUT/_build")
    arguments = parser.parse_args()
    sys.exit(build(ROOT, arguments.output).returncode)
