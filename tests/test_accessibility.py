"""Screen readers and keyboards, page by page on the built site (axe-core, Chromium).

Keyboard reach of each explorer: tests/test_chapter_pages.py.
"""

from __future__ import annotations

import re

import pytest
from site_pages import (
    DESKTOP,
    HIDE_REPEATED_CODE_TOKENS_JS,
    PHONE,
    SHOW_REPEATED_CODE_TOKENS_JS,
    axe_violations,
    has_bokeh,
    open_settled,
    representatives_axe_left_undecided,
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


# Stylesheets that give some code tokens too little contrast. Each first sets one size
# for all code (the book sizes code to its box's width, so blocks differ in size, and
# tokens of different sizes are never taken as alike). The code background is
# rgb(243, 244, 245); grey #888888 on it is 3.2:1, enough only for large text (3:1).
ONE_SIZE = "div.highlight pre span { font-size: 12px !important; } "
PALE = " { color: #c8c8c8 !important; }"
LOW_CONTRAST_CODE = {
    "a colour": ONE_SIZE + ".probe-last pre span" + PALE,
    "a background": ONE_SIZE + ".probe-last pre { background: #5a5a5a !important; }",
    "a size": ONE_SIZE + "div.highlight pre span { color: #888888 !important; }"
              " .probe-first div.highlight pre span { font-size: 32px !important; }",
    "an ancestor's opacity": ONE_SIZE + ".probe-copy { opacity: 0.3; }",
    # The same tokens earlier where axe does not look: a collapsed solution, a block
    # clipped to nothing, punctuation (axe skips text without letters or digits).
    "a hidden solution first": ONE_SIZE + ".probe-hidden pre span, .probe-last pre span"
                               + PALE,
    "a clipped block first": ONE_SIZE + ".probe-clipped pre span, .probe-last pre span"
                             + PALE,
    "punctuation first": ONE_SIZE + ".probe-punctuation" + PALE,
}
# The first and the last code cell a reader sees; a copy of the first just after it
# (its tokens' kinds all came before); before the last, a collapsed solution's code
# cell and a copy of the last cell clipped to nothing; a token "==" at the start of
# the first cell and a token "word" at the start of the last.
MARK_CODE_CELLS_JS = """() => {
  const cells = [...document.querySelectorAll("div.highlight-ipython3")];
  const shown = cells.filter(c => c.checkVisibility() && !c.closest(".dropdown"));
  const hidden = cells.filter(c => c.closest(".solution.dropdown"));
  const first = shown[0], last = shown[shown.length - 1];
  first.classList.add("probe-first");
  last.classList.add("probe-last");
  hidden[0].classList.add("probe-hidden");
  last.closest(".cell").before(hidden[0].closest(".solution.dropdown"));
  const twin = first.cloneNode(true);
  twin.classList.replace("probe-first", "probe-copy");
  twin.querySelector("pre").removeAttribute("id");
  first.after(twin);
  const clip = document.createElement("div");
  clip.style.cssText = "max-height: 0; overflow: hidden";
  const copy = last.cloneNode(true);
  copy.classList.replace("probe-last", "probe-clipped");
  copy.querySelector("pre").removeAttribute("id");
  clip.append(copy);
  last.closest(".cell").before(clip);
  for (const [cell, text] of [[first, "=="], [last, "word"]]) {
    const span = document.createElement("span");
    span.className = "probe-punctuation";
    span.textContent = text;
    cell.querySelector("pre").prepend(span);
  }
  return [shown.length, hidden.length];
}"""


def test_repeated_code_tokens_are_skipped_only_where_axe_would_agree(
    built_book, offline_page
):
    # axe_violations checks one code token of each kind (site_pages.py). Tokens that
    # differ from the first of their kind only in colour, background, size (large text
    # needs only 3:1) or an ancestor's opacity, or whose kind first appears where axe
    # does not look, must still be checked, and fail here.
    chapter = built_book / "chapters" / "02_seeing_the_map.html"
    page = open_settled(offline_page, chapter, DESKTOP)
    attributes = "() => [...document.querySelectorAll('span')].map(e => e.outerHTML)"
    before = page.evaluate(attributes)
    counts = page.evaluate(HIDE_REPEATED_CODE_TOKENS_JS)
    page.evaluate(SHOW_REPEATED_CODE_TOKENS_JS)
    assert counts["hidden"] > 20 * counts["checked"] > 0, counts  # the shortcut is used
    assert page.evaluate(attributes) == before  # and the page is left as it was
    contrast = ["color-contrast"]
    assert axe_violations(page, rules=contrast) == []
    assert representatives_axe_left_undecided(page) == 0  # no second run of axe
    shown, hidden = page.evaluate(MARK_CODE_CELLS_JS)
    assert shown >= 2 and hidden >= 1
    for what, css in LOW_CONTRAST_CODE.items():
        style = page.add_style_tag(content=css)
        found = [v["id"] for v in axe_violations(page, rules=contrast)]
        style.evaluate("element => element.remove()")
        assert found == contrast, f"code tokens in {what}: {found}"
    assert page.evaluate(attributes) != before  # (the probe classes)


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
