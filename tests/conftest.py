"""Shared fixtures: one clean build of the book per session; a headless browser.

`make test` runs the suite on every core with pytest-xdist. The book build (and the
PDF) is made once per session, by whichever worker asks first, under a file lock
(:func:`once_per_session`, pytest-xdist's documented recipe "Making session-scoped
fixtures execute only once"); tests that need the book run last, except the groups
of tests (xdist_group; see pytest_collection_modifyitems).
See tests/README.md for the suite's tiers and markers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import bookbuild
import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
# Run at the start of every chapter kernel of the suite's builds: the determinism check.
WATCH = Path(__file__).with_name("global_draw_watch.py")
CHROMIUM = Path("/usr/bin/chromium")
# .ci/run sets this so that a missing browser fails the run instead of skipping tests.
REQUIRE_BROWSER = os.environ.get("REPARAM_REQUIRE_BROWSER") == "1"


def cache_folder(output: Path) -> Path:
    """Where a build into ``output`` keeps its execution cache."""
    return output / bookbuild.CACHE


def build_book(source: Path, output: Path) -> subprocess.CompletedProcess:
    """Build the book in ``source`` strictly into ``output/_build/html``, as `make book`
    does (code/bookbuild.py), each chapter kernel watched by global_draw_watch.py;
    returns both steps' logs, never raises."""
    return bookbuild.build(source, output, capture=True, startup=WATCH)


def book_skeleton(tmp_path: Path) -> Path:
    """A new book folder: the real _config.yml, the bibliography, a title page."""
    book = tmp_path / "book"
    (book / "chapters").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", book / "_config.yml")
    bib = Path("chapters") / "references.bib"
    shutil.copy(ROOT / bib, book / bib)
    (book / "chapters" / "index.md").write_text("# Title\n\nA page.\n")
    return book


def session_folder(tmp_path_factory) -> Path:
    """The session's temporary folder, shared by every pytest-xdist worker."""
    base = tmp_path_factory.getbasetemp()
    # pytest-xdist gives each worker its own folder inside the session's.
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_per_session(tmp_path_factory, name: str, make) -> Path:
    """``make(folder)`` once per test session, even across pytest-xdist workers.

    The first worker to ask runs it under a file lock; the others wait, then reuse its
    folder, or fail with its failure (``make`` must fail the test to report one).
    """
    root = session_folder(tmp_path_factory)
    folder, done, failed = (root / name, root / f"{name}.done", root / f"{name}.failed")
    with FileLock(str(root / f"{name}.lock")):
        if failed.exists():
            pytest.fail(f"(made by another worker) {failed.read_text()}", pytrace=False)
        if not done.exists():
            folder.mkdir()
            try:
                make(folder)
            except BaseException as error:
                failed.write_text(str(error) or type(error).__name__)
                raise
            done.touch()
    return folder


def build_started(built_book: Path) -> float | None:
    """When the session's book build started (None for a REPARAM_BUILT_BOOK build)."""
    stamp = built_book.parents[1] / "build-started"
    return float(stamp.read_text()) if stamp.exists() else None


def _build_the_book(output: Path) -> None:
    assert not cache_folder(output).exists()
    (output / "build-started").write_text(repr(time.time()))
    result = build_book(ROOT, output)
    (output / "build.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        pytest.fail(f"strict book build failed (exit {result.returncode}):\n"
                    f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}", pytrace=False)
    assert (output / "_build" / "html" / "index.html").exists()


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """The whole book built from clean, every chapter executed; returns the html folder.

    The build goes into a new temporary folder, so its execution cache starts empty and
    every chapter is executed (in parallel, as `make book` does), once per session.
    """
    reuse = os.environ.get("REPARAM_BUILT_BOOK")
    if reuse:
        # An author's loop: test a build made earlier (its html folder), not rebuilding.
        html = Path(reuse).resolve()
        assert (html / "index.html").exists(), f"no index.html in {reuse}"
        return html
    output = once_per_session(tmp_path_factory, "book", _build_the_book)
    return output / "_build" / "html"


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # One math thread per worker: the workers already fill the cores, and more
        # threads than cores (spinning OpenMP threads) slow every worker down.
        import torch

        torch.set_num_threads(1)


BOOK_FIXTURES = {"built_book"}


def pytest_collection_modifyitems(items):
    # Tests that need the whole book go last (a stable sort), so that in one process a
    # failing unit test is reported before the long build. (Under `make test`,
    # --dist loadgroup sends the xdist_groups first, those of most tests first: the
    # downloads', each viewport's browser tests, the PDF's. All need the book, so both
    # workers start by waiting for it (its build runs chapters on both cores); and the
    # longest tests, the downloads' new environment and the PDF, do not start last
    # and end the run alone. Putting a book test first and the tests that need no
    # book next (--no-loadscope-reorder) was tried: the cores were no less idle over
    # the run, as one then waited at the end while the other printed the PDF.)
    items.sort(key=lambda item: bool(BOOK_FIXTURES & set(item.fixturenames)))


def _browser_unavailable_reason() -> str | None:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        return (f"Chromium not found at {CHROMIUM} "
                "(apt-get install -y chromium chromium-driver)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


def require_browser() -> None:
    """Skip the test without Chromium, or fail it where browser tests are required."""
    reason = _browser_unavailable_reason()
    if reason:
        if REQUIRE_BROWSER:
            pytest.fail("browser tests are required here (REPARAM_REQUIRE_BROWSER=1) "
                        f"but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if CHROMIUM.exists() else Path(shutil.which("chromium"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable),
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


def offline_route(external_requests: list[str]):
    """A Playwright route handler: local files load, any other host is blocked and
    recorded in ``external_requests``."""

    def route(route):
        url = route.request.url
        if url.startswith(("file://", "data:", "blob:", "about:")):
            route.continue_()
        else:
            external_requests.append(url)
            route.abort()

    return route


class OfflinePage:
    """A page opened from disk; each request to another host is blocked and recorded."""

    def __init__(self, browser):
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.external_requests: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.page.route("**/*", offline_route(self.external_requests))
        self.page.on("console", lambda m: m.type == "error"
                     and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))

    def open(self, path: Path):
        self.page.goto(path.resolve().as_uri(), wait_until="load")
        return self.page

    def close(self):
        self.context.close()


class SiteTabs:
    """Pages of the built site, opened and settled once per viewport, then kept open.

    For tests that only read a page (axe, layout, alt texts): a test that clicks, types
    or moves a slider takes a fresh ``offline_page`` instead, so no test sees another
    test's changes. Requests to other hosts are blocked and recorded, as there.
    """

    def __init__(self, browser):
        self.browser = browser
        self.contexts: dict[tuple[int, int], object] = {}
        self.pages: dict[tuple[tuple[int, int], Path], object] = {}
        self.external_requests: list[str] = []
        self.page_errors: list[str] = []

    def settled(self, path: Path, viewport: dict):
        from site_pages import settle

        size = (viewport["width"], viewport["height"])
        if size not in self.contexts:
            context = self.browser.new_context(viewport=viewport)
            context.route("**/*", offline_route(self.external_requests))
            self.contexts[size] = context
        key = (size, path.resolve())
        if key not in self.pages:
            page = self.contexts[size].new_page()
            page.on("pageerror", lambda e: self.page_errors.append(f"{path.name}: {e}"))
            page.goto(path.resolve().as_uri(), wait_until="load")
            settle(page, path)
            self.pages[key] = page
        return self.pages[key]

    def close(self):
        for context in self.contexts.values():
            context.close()


@pytest.fixture(scope="session")
def site_tabs(browser):
    tabs = SiteTabs(browser)
    yield tabs
    tabs.close()


@pytest.fixture
def offline_page(browser):
    page = OfflinePage(browser)
    yield page
    page.close()


@pytest.fixture
def ipympl():
    """The interactive matplotlib backend of ``make lab``, for ipywidgets front ends
    (no kernel needed: the widgets' callbacks are called from Python)."""
    import matplotlib

    previous = matplotlib.get_backend()
    matplotlib.use("module://ipympl.backend_nbagg")
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
    matplotlib.use(previous)
