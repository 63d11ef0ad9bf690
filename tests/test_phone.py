"""On phones (390 and 320 px) no page scrolls sideways, figures stay legible."""

from __future__ import annotations

import pytest
from site_pages import PHONE, has_bokeh, site_pages

from reparam.style import MIN_RENDERED_SCALE

pytestmark = [pytest.mark.book, pytest.mark.browser]

WIDTH_JS = "() => document.documentElement.scrollWidth"
IMAGE_SCALES_JS = """() => Array.from(document.querySelectorAll('.bd-article img'))
  .filter(img => img.naturalWidth > 0)
  .map(img => ({src: img.getAttribute('src'), scale: img.clientWidth / img.naturalWidth,
                natural: img.naturalWidth}))"""


# A figure caption's "#" link once poked 1 px past a 390 px page (3 px at 320), so the
# smallest phones in common use are checked as well.
SMALL_PHONE = {"width": 320, "height": 568}


@pytest.mark.xdist_group("phone-tabs")
@pytest.mark.parametrize("viewport", [PHONE, SMALL_PHONE], ids=["390px", "320px"])
def test_no_page_is_wider_than_a_phone(built_book, site_tabs, viewport):
    wide = {}
    for path in site_pages(built_book):
        page = site_tabs.settled(path, viewport)
        width = page.evaluate(WIDTH_JS)
        if width > viewport["width"]:
            wide[path.name] = width
    assert wide == {}


@pytest.mark.xdist_group("phone-tabs")
def test_figures_are_not_shrunk_below_the_legible_scale(built_book, site_tabs):
    small = []
    for path in site_pages(built_book):
        page = site_tabs.settled(path, PHONE)
        page.wait_for_function(
            "() => Array.from(document.images).every(i => i.complete)", timeout=20_000
        )
        for image in page.evaluate(IMAGE_SCALES_JS):
            if image["scale"] < MIN_RENDERED_SCALE:
                small.append((path.name, image["src"], round(image["scale"], 3)))
    assert small == []


@pytest.mark.xdist_group("phone-tabs")
def test_explorers_fit_the_phone_column(built_book, site_tabs):
    for path in (p for p in site_pages(built_book) if has_bokeh(p)):
        page = site_tabs.settled(path, PHONE)
        boxes = page.eval_on_selector_all(
            "[data-root-id]",
            "els => els.map(e => { const r = e.getBoundingClientRect();"
            " return [r.left, r.right]; })",
        )
        handles = page.locator(".noUi-handle")
        for i in range(handles.count()):
            box = handles.nth(i).bounding_box()
            assert (
                box and 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"]
            ), (path.name, i, box)
        assert all(right <= PHONE["width"] + 0.5 for _, right in boxes), (
            path.name,
            boxes,
        )
