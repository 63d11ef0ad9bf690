"""Screen readers and keyboards, page by page on the built site (axe-core, Chromium).

Keyboard reach of each explorer: tests/test_chapter_pages.py.
"""

from __future__ import annotations

import re

import pytest
from site_pages import (
    DESKTOP,
    PHONE,
    axe_violations,
    has_bokeh,
    site_pages,
)

pytestmark = [pytest.mark.book, pytest.mark.browser]

PATH_LIKE = re.compile(r"(^|/)[^ ]+\.(png|jpe?g|svg|gif)$|_images/", re.IGNORECASE)


def _describe(violations) -> str:
    return "; ".join(
        f"{v['id']} ({v['impact']}): "
        + ", ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in violations
    )


def check_axe(built_book, site_tabs, viewport):
    failures = {}
    for path in site_pages(built_book):
        page = site_tabs.settled(path, viewport)
        violations = axe_violations(page)
        if violations:
            failures[str(path.relative_to(built_book))] = _describe(violations)
    assert failures == {}
    assert site_tabs.external_requests == []


# Each viewport's tests share its open pages (site_tabs): one worker runs them all.
@pytest.mark.xdist_group("desktop-tabs")
def test_axe_finds_no_critical_or_serious_violation_on_a_desktop(built_book, site_tabs):
    check_axe(built_book, site_tabs, DESKTOP)


@pytest.mark.xdist_group("phone-tabs")
def test_axe_finds_no_critical_or_serious_violation_on_a_phone(built_book, site_tabs):
    check_axe(built_book, site_tabs, PHONE)


@pytest.mark.xdist_group("desktop-tabs")
def test_no_image_is_announced_by_its_file_path(built_book, site_tabs):
    for path in site_pages(built_book):
        page = site_tabs.settled(path, DESKTOP)
        alts = page.eval_on_selector_all(
            "img", "els => els.map(e => e.getAttribute('alt'))"
        )
        for alt in alts:
            assert alt is not None and alt.strip(), f"{path.name}: an image without alt"
            assert not PATH_LIKE.search(alt.strip()), (
                f"{path.name}: alt is a path: {alt}"
            )


@pytest.mark.xdist_group("desktop-tabs")
def test_every_slider_and_canvas_of_an_explorer_has_a_name(built_book, site_tabs):
    explorer_pages = [p for p in site_pages(built_book) if has_bokeh(p)]
    assert explorer_pages, "no page embeds an explorer"
    for path in explorer_pages:
        page = site_tabs.settled(path, DESKTOP)
        handles = page.locator(".noUi-handle")
        assert handles.count() >= 1
        for i in range(handles.count()):
            name = handles.nth(i).get_attribute("aria-label") or ""
            # "μ, the mean": a symbol and what it is, not a bare letter.
            assert "," in name and len(name) > 5, f"{path.name}: slider named {name!r}"
        canvases = page.locator("canvas.bk-layer:not(.bk-glyph)")
        page.wait_for_function(
            """() => { const out = [];
                const walk = (r) => { for (const e of r.querySelectorAll('*')) {
                  if (e.tagName === 'CANVAS' && !e.classList.contains('bk-glyph'))
                    out.push(e);
                  if (e.shadowRoot) walk(e.shadowRoot); } };
                walk(document);
                return out.length > 0 &&
                       out.every(c => c.getAttribute('aria-label')
                           || c.getAttribute('aria-hidden') === 'true'); }""",
            timeout=20_000,
        )
        assert canvases.count() >= 1
        # One described canvas per plot: each figure has its text alternative.
        described = page.locator("canvas[role='img'][aria-label]")
        assert described.count() == page.locator(".bk-Figure").count() >= 1
        assert "interactive plot" in (canvases.first.get_attribute("aria-label") or "")


def test_bibliography_list_has_list_items(built_book):
    html = (built_book / "chapters" / "bibliography.html").read_text(encoding="utf-8")
    assert 'role="doc-biblioentry"' not in html
    if 'role="list"' in html:
        assert 'role="listitem"' in html
