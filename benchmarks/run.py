"""`make bench`: the book's speed and its estimators, measured side by side in one run.

Prints one table and writes benchmarks/results.json (machine, versions, date, figures).
Every timing is a median over repeats with its spread (5th-95th percentile), or one run
where a repeat would cost minutes (the book builds, `make test`); nothing is asserted:
goals are reported as met or not, and speed never fails the test suite.

    python benchmarks/run.py [--skip-book] [--skip-browser]
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
import time
import urllib.parse
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
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

BOOK_GOAL_CLEAN = 60.0
BOOK_GOAL_PROSE = 10.0
BOOK_GOAL_NO_CHANGE = 3.0
BOOK_GOAL_CODE_SLACK = 10.0  # a code edit: that chapter's execution time + this
MAKE_TEST_GOAL = 300.0
EDITED_CHAPTER = "01_change_of_variables"


def copy_of_the_book() -> Path:
    """The committed tree (HEAD), unpacked in a temporary folder."""
    copy = Path(tempfile.mkdtemp(prefix="bench-book-"))
    archive = subprocess.run(
        ["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True
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
        record = cache.match_cache_notebook(nbformat.read(path, as_version=4))
        times[path.stem] = record.data.get("execution_seconds")
    return times


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


def glued_timings(copy: Path) -> dict:
    """Training/sampling times a chapter glues itself (names like ch8_..._seconds)."""
    import ast

    import nbformat

    found = {}
    for path in sorted(
        (copy / "_build" / "jupyter_execute" / "chapters").glob("*.ipynb")
    ):
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                name = output.get("metadata", {}).get("scrapbook", {}).get("name", "")
                text = output.get("data", {}).get(
                    "application/papermill.record/text/plain"
                )
                if text and ("seconds" in name or name.endswith("_time")):
                    try:
                        found.setdefault(path.stem, {})[name] = float(
                            ast.literal_eval(text)
                        )
                    except (ValueError, SyntaxError, TypeError):
                        pass
    return found


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
    # The goal is the edited chapter's execution as this build recorded it (in an
    # ordinary kernel, imports included; the clean build's warm kernels skip those).
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
            "recorded by the clean build, two chapters at a time, in warm kernels "
            "(the imports of the chapters' first cells were done by the zygote)"
        ),
        "slowest_chapter": max(chapters, key=lambda k: chapters[k] or 0),
        "glued_timings": glued_timings(copy),
    }
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
            ours(cost, 0.3, 1.2, n)
            reference(cost, 0.3, 1.2, n)
            for _ in range(repeats):
                start = time.perf_counter()
                ours(cost, 0.3, 1.2, n)
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


# 5. Website weight and first paint ----------------------------------------------------

PAINT_JS = """() => {
  const paint = {};
  for (const entry of performance.getEntriesByType('paint')) {
    paint[entry.name] = entry.startTime;
  }
  return paint;
}"""


def bench_pages(html: Path) -> dict:
    """Each page's first-visit bytes (every file it requests) and first paint."""
    from playwright.sync_api import sync_playwright

    total = sum(p.stat().st_size for p in html.rglob("*") if p.is_file())
    pages = sorted(p for p in html.rglob("*.html") if "_static" not in p.parts)

    def first_visit(browser, page_path: Path) -> dict:
        # Every request the page makes, seen by the router (file:// loads are missing
        # from the Resource Timing API), summed by the size of the file on disk.
        requested: set[Path] = set()

        def record(route):
            url = route.request.url
            if url.startswith("file://"):
                local = url.split("?")[0].split("#")[0].removeprefix("file://")
                requested.add(Path(urllib.parse.unquote(local)))
                route.continue_()
            else:
                route.abort()

        context = (
            browser.new_context()
        )  # a fresh context: nothing cached, a first visit
        page = context.new_page()
        page.route("**/*", record)
        page.goto(page_path.as_uri(), wait_until="load")
        page.wait_for_timeout(
            1500
        )  # MathJax loads its fonts and extensions after "load"
        paint = page.evaluate(PAINT_JS)
        context.close()
        return {
            "bytes": sum(f.stat().st_size for f in requested if f.is_file()),
            "first_paint_ms": paint.get("first-paint"),
            "first_contentful_paint_ms": paint.get("first-contentful-paint"),
        }

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        per_page = {str(p.relative_to(html)): first_visit(browser, p) for p in pages}
        browser.close()
    largest = max(per_page, key=lambda k: per_page[k]["bytes"])
    return {
        "site_total_bytes": total,
        "largest_page": largest,
        "largest_page_bytes_with_assets": per_page[largest]["bytes"],
        "title_page_first_visit_bytes": per_page["chapters/index.html"]["bytes"],
        "pages": per_page,
    }


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


def goal_rows(results: dict) -> list[tuple[str, float, str, bool | None]]:
    """(figure, measured, goal, met) for every figure that has a goal."""
    rows = []
    book = results.get("book", {})
    if book:
        chapters = book["chapter_execution_seconds"]
        rows += [
            (
                "clean `make book`, every chapter executed (s)",
                book["clean_build_seconds"],
                f"<= {BOOK_GOAL_CLEAN:g}",
                book["clean_build_seconds"] <= BOOK_GOAL_CLEAN,
            ),
            (
                f"`make book` after a prose edit of {EDITED_CHAPTER} (s)",
                book["prose_edit_make_book_seconds"],
                f"<= {BOOK_GOAL_PROSE:g}, nothing executed",
                book["prose_edit_make_book_seconds"] <= BOOK_GOAL_PROSE
                and book["prose_edit_reexecuted"] == 0,
            ),
            (
                f"`make book` after a code edit of {EDITED_CHAPTER} (s)",
                book["code_edit_make_book_seconds"],
                f"<= {book['code_edit_goal_seconds']:.1f} (its execution + "
                f"{BOOK_GOAL_CODE_SLACK:g}), one chapter executed",
                book["code_edit_make_book_seconds"] <= book["code_edit_goal_seconds"]
                and book["code_edit_reexecuted"] == 1,
            ),
            (
                "no-change `make book`, median (s)",
                book["no_change_make_book_seconds"]["median"],
                f"<= {BOOK_GOAL_NO_CHANGE:g}",
                book["no_change_make_book_seconds"]["median"] <= BOOK_GOAL_NO_CHANGE,
            ),
        ]
        if "make_test_seconds" in book:
            rows.append(
                (
                    "`make test`, warm environment (s)",
                    book["make_test_seconds"],
                    f"<= {MAKE_TEST_GOAL:g}, passing",
                    book["make_test_seconds"] <= MAKE_TEST_GOAL
                    and book["make_test_passed"],
                )
            )
        rows += [
            (f"execute {name} (s)", seconds, "", None)
            for name, seconds in chapters.items()
        ]
        rows += [
            (f"{chapter}: glued {name} (s)", value, "", None)
            for chapter, glued in book["glued_timings"].items()
            for name, value in glued.items()
        ]
    for section, key, read, goal, label in [
        (
            "explorer_python",
            "callback_seconds",
            lambda r: r["median"],
            0.015,
            "ipywidgets slider callback, median (s)",
        ),
        (
            "explorer_browser",
            "callback_to_next_frame_seconds",
            lambda r: r["median"],
            0.016,
            "static slider: update to next frame (s)",
        ),
        (
            "estimators",
            "pathwise_grad_n1000000",
            lambda r: r["time_ratio"],
            1.0,
            "pathwise_grad / torch.distributions, n=1e6",
        ),
        (
            "estimators",
            "score_function_grad_n1000000",
            lambda r: r["time_ratio"],
            1.0,
            "score_function_grad / torch.distributions, n=1e6",
        ),
    ]:
        if key in results.get(section, {}):
            value = read(results[section][key])
            rows.append((label, value, f"<= {goal:g}", value <= goal))
    for page, figures in results.get("website", {}).get("pages", {}).items():
        paint = figures["first_contentful_paint_ms"]
        rows.append(
            (
                f"{page}: first-load MB, first contentful paint ms",
                figures["bytes"] / 1e6,
                f"{paint:.0f} ms" if paint else "",
                None,
            )
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip-book",
        action="store_true",
        help="skip the book (builds, make test, browser figures)",
    )
    parser.add_argument(
        "--skip-test", action="store_true", help="skip timing make test"
    )
    parser.add_argument(
        "--skip-browser",
        action="store_true",
        help="skip measurements that need Chromium",
    )
    args = parser.parse_args()
    browser = not args.skip_browser and not args.skip_book and CHROMIUM.exists()
    results = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_at_start": os.getloadavg(),
        "cpu_probe_seconds": {"start": cpu_probe()},
    }
    copy = None
    if not args.skip_book:
        copy = copy_of_the_book()
        results["book"] = bench_book(copy, run_tests=not args.skip_test)
    log("explorer (matplotlib callback)...")
    results["explorer_python"] = bench_explorer_python()
    if browser:
        html = copy / "_build" / "html"
        log("explorer (static page in headless Chromium)...")
        results["explorer_browser"] = bench_explorer_browser(html)
        log("each page's first-load bytes and first paint...")
        results["website"] = bench_pages(html)
    else:
        log("Chromium not found or book skipped: browser figures skipped")
    log("estimator throughput...")
    results["estimators"] = bench_estimators()
    log("estimator quality...")
    results["quality"] = bench_quality()
    results["load_average_at_end"] = os.getloadavg()
    results["cpu_probe_seconds"]["end"] = cpu_probe()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    if copy is not None:
        shutil.rmtree(copy, ignore_errors=True)

    print("\n| figure | measured | goal | met |\n|---|---|---|---|")
    for label, value, goal, met in goal_rows(results):
        verdict = "" if met is None else ("yes" if met else "NO")
        print(f"| {label} | {value:.4g} | {goal} | {verdict} |")
    if "explorer_python" in results:
        render = results["explorer_python"]["callback_plus_agg_render_seconds"]
        print(
            "| callback + full Agg render, median [p5, p95] (s) | "
            f"{render['median']:.4f} "
            f"[{render['p5']:.4f}, {render['p95']:.4f}] | | |"
        )
    for key, value in results["estimators"].items():
        print(
            f"| {key}: samples/s (torch.distributions) | "
            f"{value['samples_per_second']:.3g} "
            f"({value['torch_distributions_samples_per_second']:.3g}) | | |"
        )
    for key, value in results["quality"].items():
        if isinstance(value, dict):
            print(
                f"| variance ratio empirical/exact, {key} | {value['ratio']:.3f} "
                f"+- {value['ratio_standard_error']:.3f} | 1 | |"
            )
        else:
            print(f"| {key} (mu, sigma) | {value[0]:.2f}, {value[1]:.2f} | | |")
    if "website" in results:
        site = results["website"]
        print(f"| website total (MB) | {site['site_total_bytes'] / 1e6:.1f} | | |")
    print(
        "\nTimings are wall clock on a shared machine; see load_average_* and "
        f"cpu_probe_seconds ({results['cpu_probe_seconds']}) in the JSON."
    )
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
