"""Helpers shared by the browser tests of the built site: pages, viewports, axe."""

from __future__ import annotations

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


def axe_violations(page, impacts=("critical", "serious")) -> list[dict]:
    """axe-core (the copy bundled in axe-playwright-python; nothing is fetched)."""
    from axe_playwright_python.sync_playwright import Axe

    result = Axe().run(page)
    return [v for v in result.response["violations"] if v["impact"] in impacts]


DEEP_ACTIVE_JS = """() => {
  let el = document.activeElement;
  while (el && el.shadowRoot && el.shadowRoot.activeElement) {
    el = el.shadowRoot.activeElement;
  }
  return el ? {tag: el.tagName, cls: el.className || "", role: el.getAttribute("role"),
               label: el.getAttribute("aria-label"), text: (el.innerText || "").trim()}
            : null;
}"""
