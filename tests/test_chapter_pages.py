"""Each chapter page of the built site, opened once and driven as a reader would.

On every chapter page, in this order: the keyboard reaches the explorer's first control
in a few Tab presses; each exercise's solution starts hidden and opens when its title is
clicked; each slider and each select of every explorer is moved, and the figure's data
or the readout must change. No JavaScript error, no request to another host. The
explorers' own tests (tests/test_explorer_<name>.py) check
that each readout equals Python's value on a standalone page; this checks the pages
readers get.

The three checks share one fresh page per chapter because opening a chapter (MathJax,
BokehJS, the theme) costs about three core-seconds, most of the browser tests' time.
Their order keeps them apart: the Tab presses come first, on the page as loaded; the
click opens one solution and moves no explorer; the controls are moved last.
"""

from __future__ import annotations

import json

import bookbuild
import pytest
from site_pages import DEEP_ACTIVE_JS, has_bokeh, open_settled, site_pages

pytestmark = [pytest.mark.book, pytest.mark.browser]

CHAPTERS = [path.stem for path in bookbuild.chapter_notebooks()]

# The controls of every Bokeh document on the page, with what is needed to move them.
CONTROLS_JS = """() => {
  const out = [];
  for (const doc of Bokeh.documents) {
    for (const m of doc.all_models) {
      const kind = m.constructor.__name__;
      if (kind === "Slider") {
        out.push({id: m.id, kind, start: m.start, end: m.end, step: m.step,
                  value: m.value});
      } else if (kind === "Select") {
        out.push({id: m.id, kind, value: m.value,
                  options: m.options.map(o => Array.isArray(o) ? o[0] : o)});
      }
    }
  }
  return out;
}"""

# A fingerprint of everything drawn: every data source's columns and every Div's text.
DRAWN_JS = """() => {
  const parts = [];
  for (const doc of Bokeh.documents) {
    for (const m of doc.all_models) {
      const kind = m.constructor.__name__;
      if (kind === "ColumnDataSource") {
        for (const [key, column] of Object.entries(m.data)) {
          const values = column.array !== undefined ? column.array : column;
          parts.push(m.id + ":" + key + ":" + Array.from(values, v =>
            Array.isArray(v) ? v.join(",") : String(v)).join(";"));
        }
      } else if (kind === "Div" || kind === "Paragraph") {
        parts.push(m.id + ":text:" + m.text);
      }
    }
  }
  return parts.join("|");
}"""

SET_JS = """([id, value]) => {
  for (const doc of Bokeh.documents) {
    const m = doc.get_model_by_id(id);
    if (m) { m.value = value; return true; }
  }
  return false;
}"""


def _new_value(control: dict):
    """A value different from the current one, inside the control's range."""
    if control["kind"] == "Select":
        others = [o for o in control["options"] if o != control["value"]]
        return others[0] if others else None
    start, end, step = control["start"], control["end"], control["step"] or 0
    target = start + 0.3 * (end - start)
    if abs(target - control["value"]) < 1e-12:
        target = start + 0.7 * (end - start)
    if step:
        target = start + round((target - start) / step) * step
    return target


def every_control_changes_the_figure(page, name: str) -> int:
    """Move each control of every explorer on ``page``; returns how many moved."""
    controls = page.evaluate(CONTROLS_JS)
    assert controls, f"{name}: an explorer without controls"
    moved = 0
    for control in controls:
        value = _new_value(control)
        if value is None:
            continue
        before = page.evaluate(DRAWN_JS)
        assert page.evaluate(SET_JS, [control["id"], value])
        page.wait_for_timeout(50)
        after = page.evaluate(DRAWN_JS)
        assert after != before, (
            f"{name}: moving {control['kind']} {json.dumps(control)} "
            f"to {value!r} changed nothing drawn"
        )
        moved += 1
    return moved


def first_control_is_a_few_tab_presses_away(page, name: str) -> None:
    """From the top of the page: Tab, the skip link, Enter, then at most 3 Tabs."""
    page.keyboard.press("Tab")
    first = page.evaluate(DEEP_ACTIVE_JS)
    assert first["text"] == "Skip to the interactive figure", (name, first)
    page.keyboard.press("Enter")
    for presses in range(1, 4):  # noqa: B007 (read after the loop)
        page.keyboard.press("Tab")
        active = page.evaluate(DEEP_ACTIVE_JS)
        if active["role"] == "slider" or active["tag"] == "SELECT":
            break
    else:
        pytest.fail(f"{name}: 3 Tab presses after the skip link reach {active}")
    assert presses <= 3


def solutions_start_hidden_and_open_when_clicked(page, name: str) -> None:
    solutions = page.locator("div.solution.dropdown")
    count = solutions.count()
    assert count >= 3, f"{name}: {count} dropdown solutions"
    for index in range(count):
        body = solutions.nth(index).locator("section").first
        assert not body.is_visible(), f"{name}: solution {index} starts open"
    first = solutions.first
    # The solution's own title, not the toggle of a folded cell inside it.
    first.locator(":scope > .admonition-title").click()
    first.locator("section").first.wait_for(state="visible", timeout=5_000)
    assert solutions.nth(1).locator("section").first.is_visible() is False


def test_the_chapters_are_the_pages_driven_below(built_book):
    pages = {p.stem for p in site_pages(built_book) if p.parent.name == "chapters"}
    assert set(CHAPTERS) <= pages, CHAPTERS


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_reader_drives_the_chapter_page(built_book, offline_page, chapter):
    path = built_book / "chapters" / f"{chapter}.html"
    page = open_settled(offline_page, path)
    assert has_bokeh(path), f"{chapter} has no explorer"  # one in every chapter
    first_control_is_a_few_tab_presses_away(page, path.name)
    solutions_start_hidden_and_open_when_clicked(page, path.name)
    assert every_control_changes_the_figure(page, path.name) >= 1
    assert offline_page.page_errors == [], offline_page.page_errors
    assert offline_page.console_errors == [], offline_page.console_errors
    assert offline_page.external_requests == []
