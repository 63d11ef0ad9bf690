"""Chapter code fits the text column: no code line scrolls sideways on a desktop.

ruff keeps every chapter code line within 88 columns (`make lint`); the site's CSS
(code/book_static/book.css) sizes the code font so that 88 characters fit the column.
On a phone the font stops shrinking at 11 px and long lines scroll inside their box,
never the page (tests/test_phone.py).
"""

from __future__ import annotations

import pytest
from site_pages import DESKTOP, site_pages

pytestmark = [pytest.mark.book, pytest.mark.browser]

# For each code cell's <pre>: how far its content overflows, and its font size.
OVERFLOW_JS = """() => Array.from(
  document.querySelectorAll('.bd-article div.cell_input div.highlight pre'),
  pre => [pre.scrollWidth - pre.clientWidth, parseFloat(getComputedStyle(pre).fontSize),
          pre.textContent.split('\\n').reduce((m, l) => Math.max(m, l.length), 0)])"""


@pytest.mark.xdist_group("desktop-tabs")
def test_no_code_line_scrolls_sideways_on_a_desktop(built_book, site_tabs):
    checked = 0
    for path in site_pages(built_book):
        if "chapters" not in path.parts:
            continue
        page = site_tabs.settled(path, DESKTOP)
        for overflow, font_px, longest in page.evaluate(OVERFLOW_JS):
            assert longest <= 88, f"{path.name}: a code line of {longest} characters"
            assert font_px >= 11, f"{path.name}: code drawn at {font_px} px"
            assert overflow <= 1, f"{path.name}: a code box scrolls by {overflow} px"
            checked += 1
    assert checked > 50
