"""Every explorer on the built website moves: page by page, control by control.

The explorers' own tests (tests/test_explorers_js.py and the chapter modules' tests)
check that each readout equals Python's value on a standalone page. This test checks the
pages that readers get: on every built page that embeds a Bokeh explorer, each slider
and each select is moved in the browser, and the figure's data or the readout must
change, with no JavaScript error and no request to another host.
"""

from __future__ import annotations

import json

import pytest
from site_pages import has_bokeh, open_settled, site_pages

pytestmark = [pytest.mark.book, pytest.mark.browser]

# Chapters whose page must carry an explorer (issue: a figure to move in every chapter
# but the third, whose estimator explorer lives in chapter 4).
CHAPTERS_WITH_EXPLORERS = {
    "01_change_of_variables",
    "02_seeing_the_map",
    "04_the_real_trick",
    "05_other_distributions",
    "06_discrete_choices",
    "07_vae",
    "08_diffusion",
}

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


def test_every_chapter_that_should_has_an_explorer(built_book):
    pages = {p.stem for p in site_pages(built_book) if has_bokeh(p)}
    missing = CHAPTERS_WITH_EXPLORERS - pages
    assert not missing, (
        f"chapters without an explorer on the website: {sorted(missing)}"
    )


def test_every_control_of_every_explorer_changes_the_figure(built_book, offline_page):
    pages = [p for p in site_pages(built_book) if has_bokeh(p)]
    assert pages
    moved = 0
    for path in pages:
        page = open_settled(offline_page, path)
        controls = page.evaluate(CONTROLS_JS)
        assert controls, f"{path.name}: an explorer without controls"
        for control in controls:
            value = _new_value(control)
            if value is None:
                continue
            before = page.evaluate(DRAWN_JS)
            assert page.evaluate(SET_JS, [control["id"], value])
            page.wait_for_timeout(50)
            after = page.evaluate(DRAWN_JS)
            assert after != before, (
                f"{path.name}: moving {control['kind']} {json.dumps(control)} "
                f"to {value!r} changed nothing drawn"
            )
            moved += 1
    assert moved >= len(pages)
    assert offline_page.page_errors == [], offline_page.page_errors
    assert offline_page.console_errors == [], offline_page.console_errors
    assert offline_page.external_requests == []
