"""The page shows what the source says: every formula typeset, no TeX left as text.

A Markdown line that begins with ``+ ``, ``- `` or ``* `` inside ``$...$`` becomes a
list item, and the formula around it is then left as raw TeX; a TeX error shows as a
MathJax error box. On every page of the built site, after MathJax has finished, no text
outside code holds TeX source, and MathJax reports no error.
"""

from __future__ import annotations

import pytest
from site_pages import DESKTOP, site_pages

pytestmark = pytest.mark.browser

# Text nodes outside code and typeset math that look like TeX: a control word
# (\frac, \sqrt), a math delimiter ($, \( \) \[ \]), or a braced sub/superscript.
LEFT_AS_TEX_JS = r"""async () => {
  if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  const skip = "pre, code, script, style, mjx-container, .highlight, .cell_output";
  const tex = /\\[A-Za-z]{2,}|\$|\\[()[\]]|[_^]\{/;
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.parentElement.closest(skip) && tex.test(node.textContent)) {
      found.push(node.textContent.trim().slice(0, 100));
    }
  }
  return {tex: found, errors: document.querySelectorAll("mjx-merror").length,
          typeset: document.querySelectorAll("mjx-container").length};
}"""


@pytest.mark.book
@pytest.mark.xdist_group("desktop-tabs")
def test_every_page_typesets_its_math(built_book, site_tabs):
    problems, typeset = {}, 0
    for path in site_pages(built_book):
        page = site_tabs.settled(path, DESKTOP)
        found = page.evaluate(LEFT_AS_TEX_JS)
        typeset += found["typeset"]
        if found["tex"] or found["errors"]:
            problems[path.name] = found
    assert problems == {}
    assert typeset >= 100  # (guards against a page set where nothing is typeset)


def test_the_check_finds_a_formula_broken_by_a_list(offline_page, tmp_path):
    # The trap it is for: MyST turns the second line into a list item, and the formula
    # around it is left as raw TeX.
    broken = tmp_path / "broken.html"
    broken.write_text("<p>$x_t = \\sqrt{\\alpha}\\,x_0</p><ul><li>\\sqrt{\\beta_t}\\,"
                      "\\varepsilon$. A sum</li></ul><pre>$ code is fine $</pre>")
    page = offline_page.open(broken)
    found = page.evaluate(LEFT_AS_TEX_JS)
    assert len(found["tex"]) == 2 and found["errors"] == 0
