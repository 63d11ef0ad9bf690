"""`make bench`: the book's speed and its estimators, measured side by side in one run.

Prints one table and writes benchmarks/results.json (machine, versions, date, figures).
Every timing is a median over repeats with its spread (5th-95th percentile), or one run
where a repeat would cost minutes (the book builds, `make test`); nothing is asserted:
goals are reported as met or not, and speed never fails the test suite.

    python benchmarks/run.py [--baseline REV] [--skip-book] [--skip-test]
                             [--skip-browser]

The book's figures (builds, `make test`, each chapter's execution alone on one core,
the lines of build machinery, each page's first paint on a slow phone network) are
measured for HEAD and, side by side in the same run, for an earlier commit (--baseline,
by default the main of 6 Dec 2026 before the house redesign). benchmarks/README.md
explains each figure and holds the latest table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
RESULTS = ROOT / "benchmarks" / "results.json"


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def spread(samples: list[float]) -> dict:
    values = np.asarray(samples, dtype=float)
    return {
        "median": float(np.median(values)),
        "p5": float(np.percentile(values, 5)),
        "p95": float(np.percentile(values, 95)),
        "repeats": len(values),
    }


def timed(function, repeats: int, warmup: int = 1) -> dict:
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return spread(samples)


# 1. The book --------------------------------------------------------------------------
#
# Measured on a copy of the tracked tree (never the live work tree or its _build), with
# `make book` itself: the copy's Makefile, this .venv, the copy's `reparam` first.

BOOK_GOAL_CLEAN = 90.0
BOOK_GOAL_PROSE = 10.0
BOOK_GOAL_NO_CHANGE = 3.0
BOOK_GOAL_CODE_SLACK = 10.0  # a code edit: that chapter's execution time + this
MAKE_TEST_GOAL = 420.0
MACHINERY_GOAL = 300  # lines of Python in code/ outside the reparam package
# Each alone on one core, in a fresh kernel with its imports (seconds).
CHAPTER_BUDGETS = {"07_vae": 20.0, "08_flows": 20.0, "09_diffusion": 45.0}
FIRST_PAINT_GOAL = 3.0  # seconds, every page, slow 4G
EDITED_CHAPTER = "01_change_of_variables"
BASELINE = "0d5b089"  # main on 6 Dec 2026, before the house redesign


def copy_of_the_book(revision: str = "HEAD") -> Path:
    """The committed tree at ``revision``, unpacked in a temporary folder."""
    copy = Path(tempfile.mkdtemp(prefix="bench-book-"))
    archive = subprocess.run(
        ["git", "archive", revision], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(copy)], input=archive, check=True)
    return copy


def make(copy: Path, *targets: str, check: bool = True) -> tuple[float, int, str]:
    env = dict(
        os.environ,
        # No empty entry (it would put the working folder on the path).
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(copy / "code"), os.environ.get("PYTHONPATH")])
        ),
    )
    venv = BIN.parent
    # -o: never re-install into this .venv from the copy (its files are newer than the
    # .venv's stamps, and `pip install -e` would point the .venv at the copy).
    keep = [
        f"-o{venv}/{stamp}" for stamp in (".python-ok", ".installed", ".installed-test")
    ]
    start = time.perf_counter()
    done = subprocess.run(
        ["make", "-C", str(copy), f"VENV={venv}", *keep, *targets],
        capture_output=True,
        text=True,
        env=env,
    )
    seconds = time.perf_counter() - start
    if check and done.returncode != 0:
        raise RuntimeError(
            f"make {' '.join(targets)} failed:\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return seconds, done.returncode, done.stdout + done.stderr


def edit_chapter(path: Path, cell_type: str, text: str) -> None:
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    cell = next(c for c in reversed(notebook.cells) if c.cell_type == cell_type)
    cell.source += text
    nbformat.write(notebook, path)


def execution_times(copy: Path) -> dict:
    """Each chapter's execution time as the clean build's cache recorded it."""
    import nbformat
    from jupyter_cache import get_cache

    cache = get_cache(str(copy / "_build" / ".jupyter_cache"))
    times = {}
    for path in sorted((copy / "chapters").glob("*.ipynb")):
        try:
            record = cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:  # not in the book's table of contents
            continue
        times[path.stem] = record.data.get("execution_seconds")
    return times


EXECUTE_ALONE = """
import sys, time, nbformat, nbclient
notebook = nbformat.read(sys.argv[1], as_version=4)
start = time.perf_counter()
nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                        resources={"metadata": {"path": sys.argv[2]}}).execute()
print(time.perf_counter() - start)
"""


def chapter_alone_seconds(copy: Path) -> dict:
    """The budgeted chapters, each executed alone on one core (taskset -c 0, one math
    thread) in a fresh kernel, its imports included: kernel start to last cell."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(copy / "code"),
                                                        os.environ.get("PYTHONPATH")])))
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    times = {}
    for name in CHAPTER_BUDGETS:
        path = copy / "chapters" / f"{name}.ipynb"
        if path.exists():
            command = [*pin, sys.executable, "-c", EXECUTE_ALONE, str(path),
                       str(path.parent)]
            done = subprocess.run(command, capture_output=True, text=True, env=env,
                                  check=True)
            times[name] = float(done.stdout.split()[-1])
    return times


def machinery_lines(copy: Path) -> dict:
    """Lines of each Python file of the book's machinery: code/ outside reparam."""
    return {p.name: len(p.read_text().splitlines())
            for p in sorted((copy / "code").glob("*.py"))}


def executed_since(copy: Path, since: float) -> list[str]:
    """The notebooks executed (cached) after ``since``, a time.time() value."""
    from jupyter_cache import get_cache

    cache = get_cache(str(copy / "_build" / ".jupyter_cache"))
    # jupyter-cache stores UTC; SQLite drops the time zone.
    return [
        Path(r.uri).stem
        for r in cache.list_cache_records()
        if r.created.replace(tzinfo=dt.UTC).timestamp() >= since
    ]


def bench_book(copy: Path, run_tests: bool) -> dict:
    chapter = copy / "chapters" / f"{EDITED_CHAPTER}.ipynb"
    log("clean `make book` (every chapter executed, in parallel, empty cache)...")
    clean, _, _ = make(copy, "book")
    chapters = execution_times(copy)
    log("`make book` with nothing changed...")
    no_change = [make(copy, "book")[0] for _ in range(3)]
    log(f"`make book` after a prose edit of {EDITED_CHAPTER}...")
    edit_chapter(chapter, "markdown", "\n\nA sentence added by the benchmark.")
    before_prose = time.time()
    prose, _, _ = make(copy, "book")
    prose_executed = executed_since(copy, before_prose)
    log(f"`make book` after a code edit of {EDITED_CHAPTER}...")
    edit_chapter(chapter, "code", "\n_benchmark_edit = 1")
    before_code = time.time()
    code, _, _ = make(copy, "book")
    code_executed = executed_since(copy, before_code)
    # The goal is the edited chapter's execution as this build recorded it.
    code_edit_execution = execution_times(copy).get(EDITED_CHAPTER) or 0
    results = {
        "clean_build_seconds": clean,
        "no_change_make_book_seconds": spread(no_change),
        "prose_edit_make_book_seconds": prose,
        "prose_edit_reexecuted": len(prose_executed),
        "prose_edit_executed": prose_executed,
        "code_edit_make_book_seconds": code,
        "code_edit_reexecuted": len(code_executed),
        "code_edit_executed": code_executed,
        "code_edit_execution_seconds": code_edit_execution,
        "code_edit_goal_seconds": code_edit_execution + BOOK_GOAL_CODE_SLACK,
        "chapter_execution_seconds": chapters,
        "chapter_execution_note": (
            "recorded by the clean build's cache, chapters running in parallel"
        ),
        "slowest_chapter": max(chapters, key=lambda k: chapters[k] or 0),
        "machinery_lines": machinery_lines(copy),
    }
    log("the budgeted chapters, each alone on one core...")
    results["chapter_alone_one_core_seconds"] = chapter_alone_seconds(copy)
    if run_tests:
        results["cpu_probe_before_make_test_seconds"] = cpu_probe()
        log("`make test` (lint, then the whole suite from an empty cache)...")
        # The command an author runs: lint, then pytest on every core (pytest-xdist).
        suite, suite_rc, output = make(copy, "test", check=False)
        summary = [line for line in output.splitlines() if " passed" in line]
        results.update(
            {
                "make_test_seconds": suite,
                "make_test_passed": suite_rc == 0,
                "pytest_summary": (summary or [output.strip()[-300:]])[-1].strip("= "),
                "failed_tests": [
                    x for x in output.splitlines() if x.startswith("FAILED")
                ],
            }
        )
        if suite_rc != 0:
            # The failures' own report, kept (the copy it ran in is deleted).
            start = output.find("= FAILURES =")
            results["make_test_failures"] = output[max(start, 0):][:20000]
    return results


# 2. The explorer ----------------------------------------------------------------------


def bench_explorer_python() -> dict:
    import matplotlib

    matplotlib.use("Agg")
    from reparam.explorers.normal_map import NormalMapFigure

    explorer = NormalMapFigure(0.0, 1.0)
    values = [
        (float(m), float(s))
        for m, s in zip(np.linspace(-2, 2, 200), np.linspace(0.5, 2, 200), strict=True)
    ]
    iterator = iter(values * 10)

    # What the ipywidgets observer runs; ipympl renders later, asynchronously.
    def callback():
        explorer.move_artists(*next(iterator))

    # The same plus a full Agg render, an upper bound on the redraw.
    def callback_and_render():
        explorer.move_artists(*next(iterator))
        explorer.figure.canvas.draw()

    return {
        "callback_seconds": timed(callback, repeats=400, warmup=5),
        "callback_plus_agg_render_seconds": timed(
            callback_and_render, repeats=60, warmup=3
        ),
    }


def launch_chromium(playwright):
    """Debian's headless Chromium (never a downloaded browser)."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
        ],
    )


BROWSER_JS = """async (value) => {
  const doc = Bokeh.documents[0];
  const slider = doc.get_model_by_name('mu_slider');
  const start = performance.now();
  slider.value = value;  // runs the CustomJS callback, updates the sources
  const updated = performance.now();
  // Bokeh repaints in this frame
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  const painted = performance.now();
  return [updated - start, painted - start];
}"""


def bench_explorer_browser(html: Path) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page()
        page.goto((html / "chapters" / "02_seeing_the_map.html").as_uri())
        page.wait_for_selector(".noUi-handle", timeout=20_000)
        update, frame = [], []
        for value in list(np.linspace(-2.5, 2.5, 80)) * 2:
            u, f = page.evaluate(BROWSER_JS, float(value))
            update.append(u / 1000)
            frame.append(f / 1000)
        browser.close()
    return {
        "callback_seconds": spread(update[5:]),
        "callback_to_next_frame_seconds": spread(frame[5:]),
    }


# 3 and 4. The estimators --------------------------------------------------------------


def _torch_distributions_pathwise(f, mu, sigma, n):
    mu_copies = torch.full((n,), mu, dtype=torch.float64, requires_grad=True)
    sigma_copies = torch.full((n,), sigma, dtype=torch.float64, requires_grad=True)
    f(torch.distributions.Normal(mu_copies, sigma_copies).rsample()).sum().backward()
    return torch.stack((mu_copies.grad, sigma_copies.grad), 1)


def _torch_distributions_score(f, mu, sigma, n):
    mu_copies = torch.full((n,), mu, dtype=torch.float64, requires_grad=True)
    sigma_copies = torch.full((n,), sigma, dtype=torch.float64, requires_grad=True)
    normal = torch.distributions.Normal(mu_copies, sigma_copies)
    x = normal.sample()
    normal.log_prob(x).sum().backward()
    return torch.stack((mu_copies.grad, sigma_copies.grad), 1) * f(x).unsqueeze(1)


def bench_estimators() -> dict:
    from reparam import costs
    from reparam.estimators import pathwise_grad, score_function_grad

    torch.set_num_threads(2)
    cost = costs.cosine
    results = {}
    for n in (10_000, 1_000_000):
        repeats = 50 if n == 10_000 else 20
        for name, ours, reference in (
            ("pathwise_grad", pathwise_grad, _torch_distributions_pathwise),
            ("score_function_grad", score_function_grad, _torch_distributions_score),
        ):
            # Interleave the two so that machine noise hits both alike.
            ours_times, reference_times = [], []
            ours(cost, 0.3, 1.2, n, torch.Generator().manual_seed(0))
            reference(cost, 0.3, 1.2, n)
            for _ in range(repeats):
                start = time.perf_counter()
                ours(cost, 0.3, 1.2, n, torch.Generator().manual_seed(0))
                ours_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                reference(cost, 0.3, 1.2, n)
                reference_times.append(time.perf_counter() - start)
            ours_median = statistics.median(ours_times)
            reference_median = statistics.median(reference_times)
            results[f"{name}_n{n}"] = {
                "seconds": spread(ours_times),
                "torch_distributions_seconds": spread(reference_times),
                "samples_per_second": n / ours_median,
                "torch_distributions_samples_per_second": n / reference_median,
                "time_ratio": ours_median / reference_median,
            }
    return results


def bench_quality() -> dict:
    from reparam import costs
    from reparam.estimators import pathwise_grad, score_function_grad, summarize
    from reparam.variance import exact_variance

    n = 200_000
    results = {}
    for cost in (
        costs.square,
        costs.gaussian_bump,
        costs.cosine,
        costs.step.with_k(0.5),
    ):
        for name, estimator in (
            ("pathwise", pathwise_grad),
            ("score", score_function_grad),
        ):
            if name == "pathwise" and not cost.differentiable:
                continue
            summary = summarize(
                estimator(cost, 1.0, 1.0, n, torch.Generator().manual_seed(0))
            )
            for column, parameter in enumerate(("mu", "sigma")):
                empirical = float(summary.variance[column])
                standard_error = float(summary.variance_standard_error[column])
                exact = exact_variance(cost, 1.0, 1.0, name, parameter)
                results[f"{cost.name}/{name}/{parameter}"] = {
                    "empirical_variance": empirical,
                    "exact_variance": exact,
                    "ratio": empirical / exact,
                    "ratio_standard_error": standard_error / exact,
                }
        plain = score_function_grad(cost, 1.0, 1.0, n, torch.Generator().manual_seed(1))
        with_baseline = score_function_grad(
            cost,
            1.0,
            1.0,
            n,
            torch.Generator().manual_seed(1),
            baseline="leave-one-out",
        )
        results[f"{cost.name}/score/baseline_variance_reduction"] = (
            plain.var(0) / with_baseline.var(0)
        ).tolist()
    return results


# 5. First paint on a phone over a slow network ----------------------------------------
#
# Lighthouse's slow-4G profile: 150 ms latency, 1.6 Mb/s down, 750 kb/s up, a 390 px
# viewport, the cache off. The site is served over HTTP from this machine twice: as
# files are (no compression), and gzip-compressed as GitHub Pages, where CI deploys
# the book, serves them.

SLOW_4G = {"offline": False, "latency": 150, "downloadThroughput": 1.6e6 / 8,
           "uploadThroughput": 750e3 / 8}
COMPRESSED = (".html", ".css", ".js", ".svg", ".json", ".txt", ".map")


def serve(html: Path, gzip_text: bool):
    """A local HTTP server for the site; returns (server, base URL)."""
    import functools
    import gzip
    import http.server
    import io

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def send_head(self):
            path = self.translate_path(self.path)
            accepts = "gzip" in self.headers.get("Accept-Encoding", "")
            if not (gzip_text and accepts and path.endswith(COMPRESSED)
                    and os.path.isfile(path)):
                return super().send_head()
            body = gzip.compress(Path(path).read_bytes())
            self.send_response(200)
            self.send_header("Content-Type", self.guess_type(path))
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return io.BytesIO(body)

    handler = functools.partial(Handler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def first_paint(browser, url: str) -> dict:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    network = context.new_cdp_session(page)
    network.send("Network.enable")
    network.send("Network.setCacheDisabled", {"cacheDisabled": True})
    network.send("Network.emulateNetworkConditions", SLOW_4G)
    page.goto(url, wait_until="commit")
    page.wait_for_function(
        "() => performance.getEntriesByName('first-contentful-paint').length",
        timeout=120_000)
    paint = page.evaluate(
        "() => performance.getEntriesByName('first-contentful-paint')[0].startTime")
    page.wait_for_load_state("load", timeout=300_000)
    transferred = page.evaluate(
        "() => performance.getEntriesByType('navigation')[0].transferSize +"
        " performance.getEntriesByType('resource').reduce((a, r) => a + r.transferSize,"
        " 0)")
    context.close()
    return {"first_contentful_paint_seconds": paint / 1000, "bytes": transferred}


def bench_pages(html: Path) -> dict:
    """Each page's first contentful paint and first-load bytes on slow 4G."""
    from playwright.sync_api import sync_playwright

    pages = sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html")
                   if "_static" not in p.parts
                   and "Refresh" not in p.read_text(encoding="utf-8")[:300])
    results = {"site_total_bytes": sum(p.stat().st_size for p in html.rglob("*")
                                       if p.is_file())}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for served, gzip_text in (("as_files", False), ("gzip", True)):
            server, base = serve(html, gzip_text)
            results[served] = {page: first_paint(browser, f"{base}/{page}")
                               for page in pages}
            server.shutdown()
        browser.close()
    return results


# --------------------------------------------------------------------------------------


def cpu_probe() -> float:
    """Seconds for a fixed pure-Python loop (median of 3): how fast this shared
    machine is right now. It was 1.2-1.4 s on a quiet machine and 1.7-2.0 s when
    every chapter and test ran 30-40 % slower."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        sum(i * i for i in range(20_000_000))
        times.append(time.perf_counter() - start)
    return sorted(times)[1]


def machine() -> dict:
    import bokeh
    import matplotlib
    import sympy

    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sympy": sympy.__version__,
        "matplotlib": matplotlib.__version__,
        "bokeh": bokeh.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def book_rows(book: dict, site: dict) -> list[tuple[str, float | None, str, bool]]:
    """(figure, measured, goal, met) for one copy of the book."""
    rows = [
        ("clean `make book`, every chapter executed (s)", book["clean_build_seconds"],
         f"<= {BOOK_GOAL_CLEAN:g}", book["clean_build_seconds"] <= BOOK_GOAL_CLEAN),
        (f"`make book` after a prose edit of {EDITED_CHAPTER} (s)",
         book["prose_edit_make_book_seconds"], f"<= {BOOK_GOAL_PROSE:g}, none executed",
         book["prose_edit_make_book_seconds"] <= BOOK_GOAL_PROSE
         and book["prose_edit_reexecuted"] == 0),
        (f"`make book` after a code edit of {EDITED_CHAPTER} (s)",
         book["code_edit_make_book_seconds"], "<= its execution + 10, one executed",
         book["code_edit_make_book_seconds"] <= book["code_edit_goal_seconds"]
         and book["code_edit_reexecuted"] == 1),
        ("no-change `make book`, median (s)",
         book["no_change_make_book_seconds"]["median"], f"<= {BOOK_GOAL_NO_CHANGE:g}",
         book["no_change_make_book_seconds"]["median"] <= BOOK_GOAL_NO_CHANGE),
    ]
    if "make_test_seconds" in book:
        rows.append(("`make test` (s)", book["make_test_seconds"],
                     f"<= {MAKE_TEST_GOAL:g}, passing",
                     book["make_test_seconds"] <= MAKE_TEST_GOAL
                     and book["make_test_passed"]))
    lines = sum(book["machinery_lines"].values())
    rows.append(("lines of book machinery in code/ outside reparam", lines,
                 f"<= {MACHINERY_GOAL}", lines <= MACHINERY_GOAL))
    for name, budget in CHAPTER_BUDGETS.items():
        seconds = book["chapter_alone_one_core_seconds"].get(name)
        rows.append((f"{name} alone on one core (s)", seconds, f"<= {budget:g}",
                     seconds is not None and seconds <= budget))
    for name, seconds in book["chapter_execution_seconds"].items():
        rows.append((f"{name} in the clean build (s)", seconds, "", None))
    for served in ("as_files", "gzip"):
        for page, figures in site.get(served, {}).items():
            paint = figures["first_contentful_paint_seconds"]
            rows.append((f"first paint, slow 4G, {served}: {page} (s)", paint,
                         f"<= {FIRST_PAINT_GOAL:g}", paint <= FIRST_PAINT_GOAL))
    return rows


def other_rows(results: dict) -> list[tuple[str, float, str, bool]]:
    rows = []
    for section, key, read, goal, label in [
        ("explorer_python", "callback_seconds", lambda r: r["median"], 0.015,
         "ipywidgets slider callback, median (s)"),
        ("explorer_browser", "callback_to_next_frame_seconds", lambda r: r["median"],
         0.016, "static slider: update to next frame (s)"),
        ("estimators", "pathwise_grad_n1000000", lambda r: r["time_ratio"], 1.0,
         "pathwise_grad / torch.distributions, n=1e6"),
        ("estimators", "score_function_grad_n1000000", lambda r: r["time_ratio"], 1.0,
         "score_function_grad / torch.distributions, n=1e6"),
    ]:
        if key in results.get(section, {}):
            value = read(results[section][key])
            rows.append((label, value, f"<= {goal:g}", value <= goal))
    return rows


def bench_copy(revision: str, run_tests: bool, browser: bool) -> dict:
    log(f"--- the book at {revision} ---")
    copy = copy_of_the_book(revision)
    try:
        result = {"revision": subprocess.run(
            ["git", "rev-parse", "--short", revision], cwd=ROOT, capture_output=True,
            text=True, check=True).stdout.strip()}
        result["book"] = bench_book(copy, run_tests)
        if browser:
            log("each page's first paint on slow 4G...")
            result["website"] = bench_pages(copy / "_build" / "html")
            if revision == "HEAD":
                log("explorer (static page in headless Chromium)...")
                result["explorer_browser"] = bench_explorer_browser(
                    copy / "_build" / "html")
        return result
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE,
                        help=f"the earlier commit to compare with (default {BASELINE})")
    parser.add_argument("--skip-book", action="store_true",
                        help="skip the book (builds, make test, browser figures)")
    parser.add_argument("--skip-test", action="store_true", help="skip `make test`")
    parser.add_argument("--skip-browser", action="store_true",
                        help="skip measurements that need Chromium")
    args = parser.parse_args()
    browser = not args.skip_browser and CHROMIUM.exists()
    if not browser:
        log("no Chromium (or --skip-browser): the first paint and the page slider "
            "are not measured")
    results = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_at_start": os.getloadavg(),
        "cpu_probe_seconds": {"start": cpu_probe()},
    }
    if not args.skip_book:
        for name, revision in (("head", "HEAD"), ("baseline", args.baseline)):
            results[name] = bench_copy(revision, not args.skip_test, browser)
            results["cpu_probe_seconds"][f"after_{name}"] = cpu_probe()
    log("explorer (matplotlib callback)...")
    results["explorer_python"] = bench_explorer_python()
    log("estimator throughput...")
    results["estimators"] = bench_estimators()
    log("estimator quality...")
    results["quality"] = bench_quality()
    results["load_average_at_end"] = os.getloadavg()
    results["cpu_probe_seconds"]["end"] = cpu_probe()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")
    return 0


def print_table(results: dict) -> None:
    def cell(value):
        return "" if value is None else f"{value:.4g}"

    if "head" in results:
        head, base = results["head"], results["baseline"]
        print(f"\n| figure | goal | {base['revision']} (before) | "
              f"{head['revision']} (HEAD) | HEAD meets it |\n|---|---|---|---|---|")
        before = {label: value for label, value, _, _ in
                  book_rows(base["book"], base.get("website", {}))}
        for label, value, goal, met in book_rows(head["book"],
                                                 head.get("website", {})):
            verdict = "" if met is None else ("yes" if met else "**no**")
            print(f"| {label} | {goal} | {cell(before.get(label))} | {cell(value)} "
                  f"| {verdict} |")
        browser = head.get("explorer_browser", {})
        if browser:
            results = {**results, "explorer_browser": browser}
    print("\n| figure | goal | measured | met |\n|---|---|---|---|")
    for label, value, goal, met in other_rows(results):
        print(f"| {label} | {goal} | {cell(value)} | {'yes' if met else '**no**'} |")
    print("\nTimings are wall clock on a shared machine; see load_average_* and "
          f"cpu_probe_seconds ({results['cpu_probe_seconds']}) in the JSON.")


if __name__ == "__main__":
    sys.exit(main())
