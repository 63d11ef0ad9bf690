"""Shared fixtures: one strict clean build of the book per test session, and a headless browser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")
STRICT_FLAGS = ["--all", "-W", "-n", "--keep-going"]
CHROMIUM = Path("/usr/bin/chromium")
# .ci/run sets this so that a missing browser fails the run instead of skipping tests.
REQUIRE_BROWSER = os.environ.get("REPARAM_REQUIRE_BROWSER") == "1"


def build_book(source: Path, output: Path) -> subprocess.CompletedProcess:
    """Build the book in ``source`` strictly into ``output/_build/html``; never raises."""
    return subprocess.run(
        [str(JUPYTER_BOOK), "build", *STRICT_FLAGS, "--path-output", str(output), str(source)],
        capture_output=True, text=True, cwd=source,
    )


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """The whole book built from clean with every chapter executed; returns the html folder."""
    reuse = os.environ.get("REPARAM_BUILT_BOOK")
    if reuse:
        # An author's loop: test a build made earlier (its html folder), without rebuilding.
        html = Path(reuse).resolve()
        assert (html / "index.html").exists(), f"REPARAM_BUILT_BOOK={reuse} holds no index.html"
        return html
    output = tmp_path_factory.mktemp("book")
    result = build_book(ROOT, output)
    if result.returncode != 0:
        pytest.fail(f"strict book build failed (exit {result.returncode}):\n"
                    f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}", pytrace=False)
    html = output / "_build" / "html"
    assert (html / "index.html").exists()
    return html


@pytest.fixture(scope="session")
def executed_notebooks(built_book) -> Path:
    """The notebooks as the build executed them (outputs and glued values included)."""
    folder = built_book.parent / "jupyter_execute" / "chapters"
    assert folder.is_dir(), f"no executed notebooks in {folder}"
    return folder


def _browser_unavailable_reason() -> str | None:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        return f"Chromium not found at {CHROMIUM} (apt-get install -y chromium chromium-driver)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    reason = _browser_unavailable_reason()
    if reason:
        if REQUIRE_BROWSER:
            pytest.fail(f"browser tests are required here (REPARAM_REQUIRE_BROWSER=1) but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if CHROMIUM.exists() else Path(shutil.which("chromium"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


class OfflinePage:
    """A page opened from disk with every request to another host blocked and recorded."""

    def __init__(self, browser):
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.external_requests: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))

    def _route(self, route):
        url = route.request.url
        if url.startswith(("file://", "data:", "blob:", "about:")):
            route.continue_()
        else:
            self.external_requests.append(url)
            route.abort()

    def open(self, path: Path):
        self.page.goto(path.resolve().as_uri(), wait_until="load")
        return self.page

    def close(self):
        self.context.close()


@pytest.fixture
def offline_page(browser):
    page = OfflinePage(browser)
    yield page
    page.close()
