"""The built website opened from disk: math typesets, no page talks to another host."""

from __future__ import annotations

import math
import re

import pytest
from site_pages import DESKTOP, site_pages

pytestmark = [pytest.mark.book, pytest.mark.browser]


def test_root_index_redirects_to_the_title_page(built_book, offline_page):
    page = offline_page.open(built_book / "index.html")
    page.wait_for_url("**/chapters/index.html", timeout=10_000)
    assert offline_page.external_requests == []


@pytest.mark.xdist_group("desktop-tabs")
def test_every_page_is_offline_and_typesets_its_math(built_book, site_tabs):
    pages = site_pages(built_book)
    assert len(pages) >= 7
    for path in pages:
        page = site_tabs.settled(path, DESKTOP)  # waits for mjx-container where .math
        assert (
            page.locator("mjx-container").count() >= page.locator(".math").count()
        ), path
        assert site_tabs.external_requests == [], f"{path.name} requested other hosts"
        assert site_tabs.page_errors == []


@pytest.mark.xdist_group("desktop-tabs")
def test_title_page_has_math_and_it_is_typeset(built_book, site_tabs):
    page = site_tabs.settled(built_book / "chapters" / "index.html", DESKTOP)
    assert page.locator("mjx-container").count() >= 3


def test_search_works_offline(built_book, offline_page):
    page = offline_page.open(built_book / "search.html")
    page.goto(page.url + "?q=reparameterization")
    page.wait_for_selector("#search-results li", timeout=20_000)
    assert page.locator("#search-results li").count() >= 1
    assert offline_page.external_requests == []


PEAK_JS = """() => {
  const doc = Bokeh.documents[0];
  const curve = doc.get_model_by_name('x_density').data;
  let best = 0;
  for (let i = 1; i < curve.density.length; i++) {
    if (curve.density[i] > curve.density[best]) best = i;
  }
  return {mu: doc.get_model_by_name('mu_slider').value,
          sigma: doc.get_model_by_name('sigma_slider').value,
          peak_x: curve.x[best], peak_height: curve.density[best],
          grid_step: curve.x[1] - curve.x[0]};
}"""


def _press(page, handle_index: int, key: str, times: int):
    handle = page.locator(".noUi-handle").nth(handle_index)
    handle.focus()
    for _ in range(times):
        page.keyboard.press(key)


def test_chapter2_sliders_redraw_the_static_page(built_book, offline_page):
    page = offline_page.open(built_book / "chapters" / "02_seeing_the_map.html")
    page.wait_for_selector(".noUi-handle", timeout=20_000)
    page.wait_for_selector("mjx-container", state="attached", timeout=20_000)
    assert page.locator(".noUi-handle").count() == 2
    before = page.evaluate(PEAK_JS)

    _press(
        page, 0, "ArrowRight", 12
    )  # the mu slider, moved as a reader would, by keyboard
    after_mu = page.evaluate(PEAK_JS)
    assert after_mu["mu"] == pytest.approx(before["mu"] + 12 * 0.05)
    assert abs(after_mu["peak_x"] - after_mu["mu"]) <= after_mu["grid_step"]
    assert after_mu["peak_height"] == pytest.approx(before["peak_height"], rel=1e-9)

    _press(page, 1, "ArrowLeft", 16)  # the sigma slider
    after_sigma = page.evaluate(PEAK_JS)
    assert after_sigma["sigma"] == pytest.approx(before["sigma"] - 16 * 0.05)
    expected_height = 1 / (after_sigma["sigma"] * math.sqrt(2 * math.pi))
    assert after_sigma["peak_height"] == pytest.approx(expected_height, rel=1e-9)
    assert abs(after_sigma["peak_x"] - after_sigma["mu"]) <= after_sigma["grid_step"]

    # The readout states the strip masses, computed in the page as in normal_map_state.
    from reparam.explorers.normal_map import normal_map_state, readout_text

    readout = page.evaluate(
        "() => Bokeh.documents[0].get_model_by_name('strip_readout').text"
    )
    assert readout == readout_text(
        normal_map_state(after_sigma["mu"], after_sigma["sigma"])
    )

    assert offline_page.console_errors == []
    assert offline_page.page_errors == []
    assert offline_page.external_requests == []


@pytest.mark.xdist_group("desktop-tabs")
def test_chapter2_sliders_have_descriptive_names(built_book, site_tabs):
    chapter2 = built_book / "chapters" / "02_seeing_the_map.html"
    page = site_tabs.settled(chapter2, DESKTOP)
    names = [
        page.locator(".noUi-handle").nth(i).get_attribute("aria-label")
        for i in range(2)
    ]
    assert names == ["μ, the mean", "σ, the standard deviation"]


def test_bokehjs_is_deferred_so_it_does_not_block_first_paint(built_book):
    chapter2 = (built_book / "chapters" / "02_seeing_the_map.html").read_text(
        encoding="utf-8"
    )
    tags = re.findall(r"<script[^>]*_static/bokeh/[^>]*>", chapter2)
    assert len(tags) == 2
    assert all("defer" in tag for tag in tags), tags


def test_before_the_first_paint_a_page_fetches_only_stylesheets(built_book):
    # ... and documentation_options.js (300 bytes): every other script is deferred and
    # none is preloaded, so none shares the network with the stylesheets. _config.yml
    # leaves out sphinx-design and thebe, so no page loads their files.
    for path in site_pages(built_book):
        html = path.read_text(encoding="utf-8")
        head = html[:html.index("</head>")]
        assert 'rel="preload"' not in head and "Pre-loaded scripts" not in head
        blocking = [tag for tag in re.findall(r"<script[^>]*\bsrc=[^>]*>", head)
                    if "defer" not in tag and "async" not in tag]
        assert all("documentation_options.js" in tag for tag in blocking), blocking
        assert not re.search(r'class="[^"]*\bsd-', html), path.name
        assert "sphinx-design" not in head and "design-tabs" not in head, path.name
        assert "thebe" not in html, path.name


# The rules of the theme's own stylesheet that match an element of the open page,
# pseudo-elements and user-action states (hover, focus...) taken off, and which of them
# the site's trimmed copy lacks, compared by their text and the conditions of the
# @media and @supports around them. Both are given as text: a page opened from a file
# may not read its own stylesheets' rules.
MISSING_RULES_JS = r"""([originalCss, trimmedCss]) => {
  const rules = (css) => {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    const found = [];
    const walk = (list, context) => { for (const rule of list) {
      if (rule instanceof CSSStyleRule) {
        found.push({selector: rule.selectorText, key: context + rule.cssText});
      } else if (rule.cssRules) {
        walk(rule.cssRules, `${context}@${rule.conditionText} `);
      }
    } };
    walk(sheet.cssRules, "");
    return found;
  };
  const bare = (selector) => selector
    .replace(/::?(before|after|placeholder|marker|selection|backdrop)/g, "")
    .replace(/::?(-webkit-|-moz-)[\w-]+/g, "")
    // (not the states listed inside :not(), which hold as the page opens)
    .replace(/(?<![(,]\s*):(focus-visible|focus-within|focus|hover|active|visited)\b/g,
             "")
    .split(",").map((part) => part.trim() || "*").join(",");  // "::before" was one
  const rejected = [];
  const matches = (selector) => {
    try { return document.querySelector(bare(selector) || "*") !== null; }
    catch (error) { rejected.push(selector); return false; }
  };
  const kept = new Set(rules(trimmedCss).map((rule) => rule.key));
  const used = rules(originalCss).filter((rule) => matches(rule.selector));
  const missing = used.filter((rule) => !kept.has(rule.key)).map((rule) => rule.key);
  return [used.length, missing, rejected];
}"""


@pytest.mark.xdist_group("desktop-tabs")
def test_the_trimmed_theme_stylesheet_keeps_every_rule_a_page_uses(built_book,
                                                                  site_tabs):
    # code/book_ext.py keeps only the theme's rules whose classes and ids the site
    # names: each rule of the theme's own stylesheet that matches an element of a
    # settled page must still be in the site's copy. (Light mode only: the dark mode's
    # rules differ by an attribute, [data-theme="dark"], which the trim ignores. Not
    # seen here: classes that exist only after a click or a hover; site_words keeps
    # those that a script names, tests/test_stylesheet_trim.py.)
    from book_ext import THEME_CSS, THEME_STATIC

    original, trimmed = THEME_STATIC / THEME_CSS, built_book / "_static" / THEME_CSS
    assert trimmed.stat().st_size < 0.4 * original.stat().st_size
    assert ".bs-tooltip-auto" in trimmed.read_text()  # a class Bootstrap builds
    css = [path.read_text(encoding="utf-8") for path in (original, trimmed)]
    for path in site_pages(built_book):
        assert f"_static/{THEME_CSS.as_posix()}" in path.read_text(), path.name
        used, missing, rejected = site_tabs.settled(path, DESKTOP).evaluate(
            MISSING_RULES_JS, css)
        assert missing == [], f"{path.name}: {missing}"
        assert rejected == [], f"{path.name}: selectors left untested {rejected}"
        assert used > 100, (path.name, used)  # (guards against testing nothing)


def test_bokehjs_is_served_from_the_site_and_only_where_needed(built_book):
    chapter2 = (built_book / "chapters" / "02_seeing_the_map.html").read_text(
        encoding="utf-8"
    )
    assert "_static/bokeh/bokeh-" in chapter2
    assert "cdn.bokeh.org" not in chapter2
    assert len(chapter2) < 500_000  # BokehJS is not inlined
    title = (built_book / "chapters" / "index.html").read_text(encoding="utf-8")
    assert "_static/bokeh/" not in title
    assert list((built_book / "_static" / "bokeh").glob("bokeh-*.min.js"))


HANDLES_NAMED_JS = """() => {
  const handles = [];
  const walk = (root) => { for (const e of root.querySelectorAll('*')) {
    if (e.classList.contains('noUi-handle')) handles.push(e);
    if (e.shadowRoot) walk(e.shadowRoot); } };
  walk(document);
  return handles.length > 0 && handles.every(h => (h.getAttribute('aria-label') || '')
                                                    .includes(','));
}"""

UNNAME_HANDLES_JS = """() => {
  const walk = (root) => { for (const e of root.querySelectorAll('*')) {
    if (e.classList.contains('noUi-handle')) e.removeAttribute('aria-label');
    if (e.shadowRoot) walk(e.shadowRoot); } };
  walk(document);
}"""


def test_slider_names_survive_bokeh_drawing_the_explorer_again(
    built_book, offline_page
):
    # book.js names the slider handles whenever Bokeh adds to its shadow roots, not on
    # a timer: Bokeh draws the explorer again for a new width, and the names must come
    # back. The page must then be idle: no script runs on a page nobody touches.
    from site_pages import PHONE, open_settled

    chapter = built_book / "chapters" / "02_seeing_the_map.html"
    page = open_settled(offline_page, chapter, DESKTOP)
    assert page.evaluate(HANDLES_NAMED_JS)
    page.set_viewport_size(PHONE)
    page.wait_for_function(HANDLES_NAMED_JS, timeout=10_000)
    page.evaluate(UNNAME_HANDLES_JS)
    page.set_viewport_size(DESKTOP)
    page.wait_for_function(HANDLES_NAMED_JS, timeout=10_000)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.wait_for_timeout(1_000)

    def script_seconds():
        metrics = cdp.send("Performance.getMetrics")["metrics"]
        return next(m["value"] for m in metrics if m["name"] == "ScriptDuration")

    before = script_seconds()
    page.wait_for_timeout(4_000)
    assert script_seconds() - before < 0.005
    assert offline_page.page_errors == []
