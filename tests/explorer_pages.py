"""Helpers for the explorers' browser tests: a standalone offline page per layout."""

from __future__ import annotations

from pathlib import Path

import bokeh
from bokeh.embed import components

BOKEH_JS = Path(bokeh.__file__).parent / "server" / "static" / "js"


def standalone_page(layout, path: Path, title: str = "explorer") -> Path:
    """Write ``layout`` to ``path`` as an offline page that loads the installed BokehJS.

    The page loads BokehJS with ``defer``, as the book's pages do (see
    ``code/book_ext.py``).
    """
    script, div = components(layout)
    scripts = "\n".join(
        f'<script defer src="{(BOKEH_JS / name).as_uri()}"></script>'
        for name in ("bokeh.min.js", "bokeh-widgets.min.js")
    )
    path.write_text(
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title>{scripts}</head>"
        f"<body style='margin:0;padding:8px'><main>{div}{script}</main></body></html>",
        encoding="utf-8",
    )
    return path


# Reads a Bokeh model's property in the page: the first document holding a model so
# named.
MODEL_JS = """([name, prop]) => {
  for (const doc of Bokeh.documents) {
    const model = doc.get_model_by_name(name);
    if (model) { return model[prop]; }
  }
  return null;
}"""

SET_JS = """([name, prop, value]) => {
  for (const doc of Bokeh.documents) {
    const model = doc.get_model_by_name(name);
    if (model) { model[prop] = value; return true; }
  }
  return false;
}"""


def wait_for_bokeh(page, timeout: int = 20_000) -> None:
    """Wait until BokehJS has rendered the page's slider handles."""
    page.wait_for_function(
        "() => window.Bokeh && Bokeh.documents.length > 0", timeout=timeout
    )
    page.wait_for_selector(".noUi-handle", timeout=timeout)


def model_value(page, name: str, prop: str):
    return page.evaluate(MODEL_JS, [name, prop])


def set_model(page, name: str, prop: str, value) -> None:
    assert page.evaluate(SET_JS, [name, prop, value]), f"no model named {name!r}"


def open_explorer(offline_page, tmp_path: Path, layout, name: str):
    """Open ``layout`` as a standalone offline page and wait for BokehJS."""
    page = offline_page.open(standalone_page(layout, tmp_path / f"{name}.html"))
    wait_for_bokeh(page)
    return page


def press(page, handle_index: int, key: str, times: int) -> None:
    """Focus slider handle ``handle_index`` and press ``key`` ``times`` times."""
    page.locator(".noUi-handle").nth(handle_index).focus()
    for _ in range(times):
        page.keyboard.press(key)


def assert_clean(offline_page) -> None:
    """No script error, no console error and no request to another host."""
    assert offline_page.page_errors == []
    assert offline_page.console_errors == []
    assert offline_page.external_requests == []
