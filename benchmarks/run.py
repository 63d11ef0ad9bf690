"""`make bench`: the book's speed and its estimators, measured side by side in one run.

Prints one table and writes benchmarks/results.json (machine, versions, date, figures). Every
timing is a median over repeats with its spread (5th-95th percentile); nothing here is asserted:
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
    return {"median": float(np.median(values)), "p5": float(np.percentile(values, 5)),
            "p95": float(np.percentile(values, 95)), "repeats": len(values)}


def timed(function, repeats: int, warmup: int = 1) -> dict:
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return spread(samples)


# 1. The book ---------------------------------------------------------------------------------

def bench_book() -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench-book-"))
    try:
        log("clean build of the whole book (every chapter executed)...")
        start = time.perf_counter()
        subprocess.run([str(BIN / "jupyter-book"), "build", "--all", "-W", "-n", "--keep-going",
                        "--path-output", str(out), str(ROOT)], check=True, capture_output=True, cwd=ROOT)
        clean = time.perf_counter() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)

    log("per-chapter execution time...")
    import nbformat
    from nbclient import NotebookClient

    chapters = {}
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        chapters[path.stem] = time.perf_counter() - start

    log("`make book` with nothing changed...")
    subprocess.run(["make", "book"], check=True, capture_output=True, cwd=ROOT)  # bring it up to date
    no_change = timed(lambda: subprocess.run(["make", "book"], check=True, capture_output=True, cwd=ROOT),
                      repeats=5, warmup=0)
    return {"clean_build_seconds": clean, "no_change_make_book_seconds": no_change,
            "chapter_execution_seconds": chapters,
            "slowest_chapter": max(chapters, key=chapters.get)}


# 2. The explorer -----------------------------------------------------------------------------

def bench_explorer_python() -> dict:
    import matplotlib

    matplotlib.use("Agg")
    from reparam.explorers.normal_map import MatplotlibExplorer

    explorer = MatplotlibExplorer(0.0, 1.0)
    values = [(float(m), float(s)) for m, s in zip(np.linspace(-2, 2, 200), np.linspace(0.5, 2, 200))]
    iterator = iter(values * 10)

    def callback():  # what the ipywidgets observer runs; ipympl renders later, asynchronously
        explorer.move_artists(*next(iterator))

    def callback_and_render():  # the same plus a full Agg render, an upper bound on the redraw
        explorer.move_artists(*next(iterator))
        explorer.figure.canvas.draw()

    return {"callback_seconds": timed(callback, repeats=400, warmup=5),
            "callback_plus_agg_render_seconds": timed(callback_and_render, repeats=60, warmup=3)}


BROWSER_JS = """async (value) => {
  const doc = Bokeh.documents[0];
  const slider = doc.get_model_by_name('mu_slider');
  const start = performance.now();
  slider.value = value;                      // runs the CustomJS callback, updates the sources
  const updated = performance.now();
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));  // Bokeh repaints in this frame
  const painted = performance.now();
  return [updated - start, painted - start];
}"""


def bench_explorer_browser(html: Path) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page()
        page.goto((html / "chapters" / "02_seeing_the_map.html").as_uri())
        page.wait_for_selector(".noUi-handle", timeout=20_000)
        update, frame = [], []
        for value in list(np.linspace(-2.5, 2.5, 80)) * 2:
            u, f = page.evaluate(BROWSER_JS, float(value))
            update.append(u / 1000)
            frame.append(f / 1000)
        browser.close()
    return {"callback_seconds": spread(update[5:]), "callback_to_next_frame_seconds": spread(frame[5:])}


# 3 and 4. The estimators ---------------------------------------------------------------------

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
                ("score_function_grad", score_function_grad, _torch_distributions_score)):
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
                "seconds": spread(ours_times), "torch_distributions_seconds": spread(reference_times),
                "samples_per_second": n / ours_median,
                "torch_distributions_samples_per_second": n / reference_median,
                "time_ratio": ours_median / reference_median}
    return results


def bench_quality() -> dict:
    from reparam import costs
    from reparam.estimators import pathwise_grad, score_function_grad, summarize
    from reparam.variance import exact_variance

    n = 200_000
    results = {}
    for cost in (costs.square, costs.gaussian_bump, costs.cosine, costs.step.with_k(0.5)):
        for name, estimator in (("pathwise", pathwise_grad), ("score", score_function_grad)):
            if name == "pathwise" and not cost.differentiable:
                continue
            summary = summarize(estimator(cost, 1.0, 1.0, n, torch.Generator().manual_seed(0)))
            for column, parameter in enumerate(("mu", "sigma")):
                empirical = float(summary.variance[column])
                standard_error = float(summary.variance_standard_error[column])
                exact = exact_variance(cost, 1.0, 1.0, name, parameter)
                results[f"{cost.name}/{name}/{parameter}"] = {
                    "empirical_variance": empirical, "exact_variance": exact,
                    "ratio": empirical / exact, "ratio_standard_error": standard_error / exact}
        plain = score_function_grad(cost, 1.0, 1.0, n, torch.Generator().manual_seed(1))
        with_baseline = score_function_grad(cost, 1.0, 1.0, n, torch.Generator().manual_seed(1),
                                            baseline="leave-one-out")
        results[f"{cost.name}/score/baseline_variance_reduction"] = (
            plain.var(0) / with_baseline.var(0)).tolist()
    return results


# 5. Website weight ---------------------------------------------------------------------------

def bench_weight(html: Path) -> dict:
    from playwright.sync_api import sync_playwright

    total = sum(p.stat().st_size for p in html.rglob("*") if p.is_file())
    pages = [p for p in html.rglob("*.html") if "_static" not in p.parts]

    def loaded_bytes(page_path: Path) -> int:
        # Every request the page makes, seen by the router (file:// loads are missing from the
        # Resource Timing API), summed by the size of the file on disk.
        requested: set[Path] = set()

        def record(route):
            url = route.request.url
            if url.startswith("file://"):
                requested.add(Path(urllib.parse.unquote(url.split("?")[0].split("#")[0].removeprefix("file://"))))
                route.continue_()
            else:
                route.abort()

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page()
            page.route("**/*", record)
            page.goto(page_path.as_uri(), wait_until="load")
            page.wait_for_timeout(2000)  # MathJax loads its fonts and extensions after "load"
            browser.close()
        return sum(f.stat().st_size for f in requested if f.is_file())

    per_page = {str(p.relative_to(html)): loaded_bytes(p) for p in pages}
    largest = max(per_page, key=per_page.get)
    return {"site_total_bytes": total, "largest_page": largest, "largest_page_bytes_with_assets": per_page[largest],
            "title_page_first_visit_bytes": per_page["chapters/index.html"], "pages": per_page}


# ---------------------------------------------------------------------------------------------

def build_for_browser() -> Path:
    subprocess.run(["make", "book"], check=True, capture_output=True, cwd=ROOT)
    return ROOT / "_build" / "html"


def machine() -> dict:
    import bokeh
    import matplotlib
    import sympy

    return {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "sympy": sympy.__version__, "matplotlib": matplotlib.__version__, "bokeh": bokeh.__version__,
            "torch_threads": torch.get_num_threads()}


GOALS = [
    ("book", "clean_build_seconds", lambda r: r, 60.0, "clean build, every chapter executed (s)"),
    ("book", "no_change_make_book_seconds", lambda r: r["median"], 3.0, "no-change `make book` (s)"),
    ("explorer_python", "callback_seconds", lambda r: r["median"], 0.015, "ipywidgets slider callback, median (s)"),
    ("explorer_browser", "callback_to_next_frame_seconds", lambda r: r["median"], 0.016, "static slider: update to next frame (s)"),
    ("estimators", "pathwise_grad_n1000000", lambda r: r["time_ratio"], 1.0, "pathwise_grad / torch.distributions, n=1e6"),
    ("estimators", "score_function_grad_n1000000", lambda r: r["time_ratio"], 1.0, "score_function_grad / torch.distributions, n=1e6"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-book", action="store_true", help="skip the (slow) book build timings")
    parser.add_argument("--skip-browser", action="store_true", help="skip measurements that need Chromium")
    args = parser.parse_args()
    browser = not args.skip_browser and CHROMIUM.exists()
    results = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine()}
    if not args.skip_book:
        results["book"] = bench_book()
    log("explorer (matplotlib callback)...")
    results["explorer_python"] = bench_explorer_python()
    if browser:
        html = build_for_browser()
        log("explorer (static page in headless Chromium)...")
        results["explorer_browser"] = bench_explorer_browser(html)
        log("website weight...")
        results["website"] = bench_weight(html)
    else:
        log("Chromium not found: browser figures skipped")
    log("estimator throughput...")
    results["estimators"] = bench_estimators()
    log("estimator quality...")
    results["quality"] = bench_quality()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")

    print("\n| figure | measured | goal | met |\n|---|---|---|---|")
    for section, key, read, goal, label in GOALS:
        if section in results and key in results[section]:
            value = read(results[section][key])
            print(f"| {label} | {value:.4g} | <= {goal:g} | {'yes' if value <= goal else 'NO'} |")
    if "book" in results:
        for chapter, seconds in results["book"]["chapter_execution_seconds"].items():
            print(f"| execute {chapter} (s) | {seconds:.2f} | | |")
    if "explorer_python" in results:
        render = results["explorer_python"]["callback_plus_agg_render_seconds"]
        print(f"| callback + full Agg render, median [p5, p95] (s) | {render['median']:.4f} "
              f"[{render['p5']:.4f}, {render['p95']:.4f}] | | |")
    if "explorer_browser" in results:
        update = results["explorer_browser"]["callback_seconds"]
        print(f"| static slider: CustomJS update only, median (s) | {update['median']:.4f} | | |")
    if "explorer_python" in results:
        callback = results["explorer_python"]["callback_seconds"]
        print(f"| ipywidgets slider callback, p95 (s) | {callback['p95']:.5f} | | |")
    for key, value in results["estimators"].items():
        print(f"| {key}: samples/s (torch.distributions) | {value['samples_per_second']:.3g} "
              f"({value['torch_distributions_samples_per_second']:.3g}) | | |")
    for key, value in results["quality"].items():
        if isinstance(value, dict):
            print(f"| variance ratio empirical/exact, {key} | {value['ratio']:.3f} "
                  f"+- {value['ratio_standard_error']:.3f} | 1 | |")
        else:
            print(f"| {key} (mu, sigma) | {value[0]:.2f}, {value[1]:.2f} | | |")
    if "website" in results:
        site = results["website"]
        print(f"| website total (MB) | {site['site_total_bytes'] / 1e6:.1f} | | |")
        print(f"| largest page with assets: {site['largest_page']} (MB) | "
              f"{site['largest_page_bytes_with_assets'] / 1e6:.2f} | | |")
        print(f"| title page, first visit (MB) | {site['title_page_first_visit_bytes'] / 1e6:.2f} | | |")
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
