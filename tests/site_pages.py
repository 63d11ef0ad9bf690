"""Helpers shared by the browser tests of the built site: pages, viewports, axe."""

from __future__ import annotations

from pathlib import Path

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def is_redirect(path: Path) -> bool:
    return 'http-equiv="Refresh"' in path.read_text(encoding="utf-8")[:2000]


def site_pages(built_book: Path) -> list[Path]:
    """Every HTML page of the built site (new chapters are picked up automatically)."""
    return sorted(
        p
        for p in built_book.rglob("*.html")
        if "_static" not in p.parts and "_sources" not in p.parts and not is_redirect(p)
    )


def has_bokeh(path: Path) -> bool:
    return "data-root-id" in path.read_text(encoding="utf-8")


def settle(page, path: Path) -> None:
    """Wait until the page open at ``path`` shows typeset math and rendered Bokeh."""
    if page.locator(".math").count():
        page.wait_for_selector("mjx-container", state="attached", timeout=20_000)
    if has_bokeh(path):
        page.wait_for_selector(
            ".noUi-handle[aria-label]", state="attached", timeout=20_000
        )
    page.wait_for_timeout(300)  # the theme's late layout (sidebars) settles


def open_settled(offline_page, path: Path, viewport: dict | None = None):
    """Open ``path`` at ``viewport``; wait for typeset math and rendered Bokeh."""
    page = offline_page.page
    if viewport:
        page.set_viewport_size(viewport)
    offline_page.open(path)
    settle(page, path)
    return page


# Syntax-highlighted code is most of a chapter's text: thousands of one-token <span>s
# in a few colours. axe's color-contrast rule costs about 1 ms for each of them, about
# half of all of axe's time on this book. A token's contrast is fixed by its colour,
# size and weight, text shadow and stroke, and the backgrounds, opacities and filters
# behind it (axe reports text that something else overlaps as "incomplete", not as a
# violation). So of tokens alike in all of these and in visibility (the key below),
# axe checks the first that a reader can see (not in a collapsed solution, not
# scrolled out of its block) and that has two or more printable ASCII characters (axe
# leaves one-character and icon text undecided). The others are hidden while axe runs
# (visibility: hidden keeps the layout), then shown again. Only bare pygments tokens
# (a leaf <span> whose only attribute is class) are ever hidden.
HIDE_REPEATED_CODE_TOKENS_JS = r"""() => {
  const behind = (el) => {
    const out = [];
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      out.push(s.backgroundColor, s.backgroundImage, s.opacity, s.filter,
               s.mixBlendMode);
      if (/^rgb\(/.test(s.backgroundColor) && s.backgroundImage === "none") break;
    }
    return out.join("|");
  };
  // The part of a code block a reader can see: inside every ancestor that clips its
  // overflow (a collapsed solution clips its code to nothing; axe skips such text).
  const clips = new Map();
  const seen = (pre) => {
    if (!clips.has(pre)) {
      const r = pre.getBoundingClientRect();
      let [left, top, right, bottom] = [r.left, r.top, r.right, r.bottom];
      for (let e = pre.parentElement; e && e !== document.body; e = e.parentElement) {
        const s = getComputedStyle(e), c = e.getBoundingClientRect();
        if (s.overflowX !== "visible") {
          left = Math.max(left, c.left); right = Math.min(right, c.right);
        }
        if (s.overflowY !== "visible") {
          top = Math.max(top, c.top); bottom = Math.min(bottom, c.bottom);
        }
      }
      clips.set(pre, {left, top, right, bottom});
    }
    return clips.get(pre);
  };
  const checked = new Set(), others = [];
  for (const span of document.querySelectorAll("div.highlight pre span")) {
    if (span.children.length || span.attributes.length !== 1 || !span.className)
      continue;
    const s = getComputedStyle(span);
    const key = [s.color, s.fontSize, s.fontWeight, s.textShadow,
                 s.webkitTextStrokeWidth, s.webkitTextStrokeColor, s.visibility,
                 behind(span)].join("#");
    const text = span.textContent.trim();
    const box = seen(span.closest("pre"));
    const r = span.getBoundingClientRect();
    const decided = text.length >= 2 && /^[\x21-\x7e ]+$/.test(text)
                    && span.checkVisibility() && r.width > 0 && r.height > 0
                    && r.left >= box.left && r.right <= box.right
                    && r.top >= box.top && r.bottom <= box.bottom;
    if (decided && !checked.has(key)) checked.add(key);
    else others.push([span, key]);
  }
  let hidden = 0;
  for (const [span, key] of others) {
    if (checked.has(key)) {
      span.setAttribute("data-axe-repeat", "");
      hidden++;
    }
  }
  const style = document.createElement("style");
  style.id = "axe-repeat";
  style.textContent = "[data-axe-repeat] { visibility: hidden !important; }";
  document.head.append(style);
  return {checked: checked.size, hidden: hidden};
}"""

SHOW_REPEATED_CODE_TOKENS_JS = """() => {
  document.getElementById("axe-repeat")?.remove();
  for (const span of document.querySelectorAll("[data-axe-repeat]")) {
    span.removeAttribute("data-axe-repeat");
  }
}"""


def axe_violations(page, impacts=("critical", "serious"), rules=None) -> list[dict]:
    """axe-core (the copy bundled in axe-playwright-python; nothing is fetched).

    Every rule (or only ``rules``) on the whole page, with each repeated code token
    checked once (see HIDE_REPEATED_CODE_TOKENS_JS); the page is left as it was.
    """
    from axe_playwright_python.sync_playwright import Axe

    options = {"resultTypes": ["violations"]}
    if rules is not None:
        options["runOnly"] = list(rules)
    page.evaluate(HIDE_REPEATED_CODE_TOKENS_JS)
    try:
        result = Axe().run(page, options=options)
    finally:
        page.evaluate(SHOW_REPEATED_CODE_TOKENS_JS)
    return [v for v in result.response["violations"] if v["impact"] in impacts]


DEEP_ACTIVE_JS = """() => {
  let el = document.activeElement;
  while (el && el.shadowRoot && el.shadowRoot.activeElement) {
    el = el.shadowRoot.activeElement;
  }
  return el ? {tag: el.tagName, cls: el.className || "", role: el.getAttribute("role"),
               label: el.getAttribute("aria-label"), text: (el.innerText || "").trim()}
            : null;
}"""
