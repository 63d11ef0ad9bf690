"""Screen readers and keyboards, page by page on the built site (axe-core 4.14.1,
Chromium).

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


# A planted page. Low contrast: a paragraph, a plain <pre>, a button beside a code
# block, a token and bare text inside a highlighted <pre>; and a nameless link there.
PLANTED = """<!doctype html><html lang="en"><head><title>t</title></head><body><main>
<p id="pale" style="color:#bbb;background:#fff">Pale prose.</p>
<pre id="plain" style="color:#bbb;background:#fff">plain pre</pre>
<div class="highlight" style="background:#fff"><button id="button" style="color:#bbb;
background:#fff">copy</button><pre style="color:#bbb">bare text <span
style="color:#ccc">pale_token</span> <a id="nameless" href="#x"></a></pre></div>
</main></body></html>"""


def test_axe_skips_code_blocks_for_colour_contrast_only(browser):
    page = browser.new_page()
    try:
        page.set_content(PLANTED)
        found = {v["id"]: [n["target"] for n in v["nodes"]]
                 for v in axe_violations(page)}
    finally:
        page.close()
    assert found == {"color-contrast": [["#pale"], ["#plain"], ["#button"]],
                     "link-name": [["#nameless"]]}


# Each viewport's tests share its open pages (site_tabs): one worker runs them all.
@pytest.mark.xdist_group("desktop-tabs")
def test_axe_finds_no_critical_or_serious_violation_on_a_desktop(built_book, site_tabs):
    check_axe(built_book, site_tabs, DESKTOP)


@pytest.mark.xdist_group("phone-tabs")
def test_axe_finds_no_critical_or_serious_violation_on_a_phone(built_book, site_tabs):
    check_axe(built_book, site_tabs, PHONE)


# Every syntax-highlighting colour on the page, with the code block's background, in
# both colour modes of the theme: axe's color-contrast rule leaves code blocks out
# (site_pages.axe_violations), so their palette is checked here, once per mode.
CODE_COLOURS_JS = """() => {
  const opaque = (el) => {
    for (; el; el = el.parentElement) {
      const bg = getComputedStyle(el).backgroundColor;
      if (bg !== "rgba(0, 0, 0, 0)" && bg !== "transparent") { return bg; }
    }
    return "rgb(255, 255, 255)";
  };
  const pairs = new Set();
  // Every token, and each block's own text colour (stream outputs have no tokens).
  const code = "div.highlight pre, div.highlight pre *";
  for (const el of document.querySelectorAll(code)) {
    if ([...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) {
      pairs.add(getComputedStyle(el).color + "|" + opaque(el));
    }
  }
  return [...pairs];
}"""
RGB = re.compile(r"rgba?\(([\d.]+), ([\d.]+), ([\d.]+)(?:, ([\d.]+))?\)")


def luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG 2 relative luminance of an sRGB colour with channels 0..255."""
    linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055)
              ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(foreground: str, background: str) -> float:
    fg, bg = (RGB.fullmatch(colour).groups() for colour in (foreground, background))
    assert fg[3] in (None, "1") and bg[3] in (None, "1"), (foreground, background)
    light, dark = sorted((luminance(tuple(map(float, c[:3]))) for c in (fg, bg)),
                         reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_ratio_matches_wcag_examples():
    assert contrast_ratio("rgb(0, 0, 0)", "rgb(255, 255, 255)") == pytest.approx(21)
    assert contrast_ratio("rgb(118, 118, 118)", "rgb(255, 255, 255)") == pytest.approx(
        4.54, abs=0.01)  # #767676 on white, the lightest grey that passes AA
    assert contrast_ratio("rgb(119, 119, 119)", "rgb(255, 255, 255)") < 4.5


@pytest.mark.xdist_group("desktop-tabs")
def test_code_colours_have_enough_contrast_on_every_page(built_book, site_tabs):
    low, pairs_seen = {}, set()
    for path in site_pages(built_book):
        page = site_tabs.settled(path, DESKTOP)
        for mode in ("light", "dark"):
            page.evaluate(f"() => document.documentElement.dataset.theme = '{mode}'")
            for pair in page.evaluate(CODE_COLOURS_JS):
                pairs_seen.add((mode, pair))
                ratio = contrast_ratio(*pair.split("|"))
                if ratio < 4.5:  # WCAG AA for normal text
                    low[(path.name, mode, pair)] = round(ratio, 2)
        page.evaluate("() => document.documentElement.dataset.theme = 'light'")
    assert low == {}
    assert len(pairs_seen) >= 10, pairs_seen  # (guards against checking nothing)


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
    assert html.count('role="listitem"') >= 20


def test_folded_code_toggles_are_named_by_their_visible_text(built_book):
    pages = [p.read_text(encoding="utf-8") for p in site_pages(built_book)]
    assert sum(page.count("Show code cell source") for page in pages) >= 20
    assert not any("Toggle hidden content" in page for page in pages)
