"""Helpers shared by the browser tests of the built site: pages, viewports, axe."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def is_redirect(path: Path) -> bool:
    return 'http-equiv="Refresh"' in path.read_text(encoding="utf-8")[:2000]


def site_pages(built_book: Path) -> list[Path]:
    """Every HTML page of the built site (new chapters are picked up automatically)."""
    return sorted(
        p
        for p in built_book.rglob("*.html")
        if "_static" not in p.parts and "_sources" not in p.parts and not is_redirect(p)
    )


def has_bokeh(path: Path) -> bool:
    return "data-root-id" in path.read_text(encoding="utf-8")


def settle(page, path: Path) -> None:
    """Wait until the page open at ``path`` shows typeset math and rendered Bokeh."""
    if page.locator(".math").count():
        page.wait_for_selector("mjx-container", state="attached", timeout=20_000)
    if has_bokeh(path):
        page.wait_for_selector(
            ".noUi-handle[aria-label]", state="attached", timeout=20_000
        )
    page.wait_for_timeout(300)  # the theme's late layout (sidebars) settles


def open_settled(offline_page, path: Path, viewport: dict | None = None):
    """Open ``path`` at ``viewport``; wait for typeset math and rendered Bokeh."""
    page = offline_page.page
    if viewport:
        page.set_viewport_size(viewport)
    offline_page.open(path)
    settle(page, path)
    return page


# axe-core 4.14.1, fetched into the environment once at set-up from the npm registry
# (tests/fetch_axe_core.py, run by make); nothing is fetched while testing.
AXE_CORE = Path(sys.prefix) / "share" / "axe-core" / "axe.min.js"
# Syntax-highlighted code is thousands of one-token <span>s per chapter, and axe's
# color-contrast rule would check each one (most of axe's time). Their colours are one
# palette: test_code_colours_have_enough_contrast_on_every_page checks it once per
# colour mode. So that rule alone skips code blocks; every other rule reads them.
AXE_SETUP = """() => axe.configure({rules: [{id: "color-contrast",
    selector: "*:not(div.highlight pre, div.highlight pre *)"}]})"""


@functools.cache
def _axe_script() -> str:
    if not AXE_CORE.exists():
        raise FileNotFoundError(f"no axe-core at {AXE_CORE}: run `make "
                                ".venv/.installed-test` (tests/fetch_axe_core.py)")
    return AXE_CORE.read_text(encoding="utf-8")


def axe_violations(page, impacts=("critical", "serious")) -> list[dict]:
    """axe-core's violations of every rule on the open page, of these impacts (code
    blocks are left out of the color-contrast rule only)."""
    page.evaluate(_axe_script())
    page.evaluate(AXE_SETUP)
    found = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [v for v in found["violations"] if v["impact"] in impacts]


DEEP_ACTIVE_JS = """() => {
  let el = document.activeElement;
  while (el && el.shadowRoot && el.shadowRoot.activeElement) {
    el = el.shadowRoot.activeElement;
  }
  return el ? {tag: el.tagName, cls: el.className || "", role: el.getAttribute("role"),
               label: el.getAttribute("aria-label"), text: (el.innerText || "").trim()}
            : null;
}"""
