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
# in a few colours, and axe's color-contrast rule checks each one. On Chapter 6 at the
# desktop width axe took 9.5 s, and 3.2 s with the code blocks left out (measured once,
# alone). A token's contrast is fixed by what axe reads of it: its text and fill
# colours, size and weight, text shadow and stroke, the backgrounds behind it, and the
# opacity and blending of it and every ancestor. So of tokens alike in all of these and
# in visibility (the key below), axe checks one, the representative: the first that a
# reader can see (not in a collapsed solution, not scrolled out of its block) and whose
# text has a letter or digit and is printable ASCII, two characters or more (axe skips
# punctuation-only text and leaves one-character and icon text undecided). The others
# are hidden while axe runs (visibility: hidden keeps the layout), then shown again.
# Only bare pygments tokens (a leaf <span> whose only attribute is class) are ever
# hidden. If axe leaves any representative undecided ("incomplete": something
# overlaps it, a pseudo-element covers it...), its verdict cannot stand for the
# others, and axe runs again on the whole page with nothing hidden.
HIDE_REPEATED_CODE_TOKENS_JS = r"""() => {
  // Backgrounds up to the first opaque one; opacity and blending up to the root.
  const paint = new Map();
  const behind = (el) => {
    if (!el) { return ""; }
    if (!paint.has(el)) {
      const s = getComputedStyle(el);
      const opaque = /^rgb\(/.test(s.backgroundColor) && s.backgroundImage === "none";
      paint.set(el, [s.opacity, s.mixBlendMode, s.isolation, s.filter].join(",") + "|"
        + (opaque ? s.backgroundColor + "/end|" : s.backgroundColor + ","
           + s.backgroundImage + "|") + behind(el.parentElement));
    }
    return paint.get(el);
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
    const key = [s.color, s.webkitTextFillColor, s.fontSize, s.fontWeight,
                 s.textShadow, s.webkitTextStrokeWidth, s.webkitTextStrokeColor,
                 s.visibility, behind(span)].join("#");
    const text = span.textContent.trim();
    const box = seen(span.closest("pre"));
    const r = span.getBoundingClientRect();
    const decided = text.length >= 2 && /^[\x21-\x7e ]+$/.test(text)
                    && /[A-Za-z0-9]/.test(text)
                    && span.checkVisibility({opacityProperty: true,
                                             visibilityProperty: true})
                    && r.width > 0 && r.height > 0
                    && r.left >= box.left && r.right <= box.right
                    && r.top >= box.top && r.bottom <= box.bottom;
    if (decided && !checked.has(key)) {
      checked.add(key);
      span.setAttribute("data-axe-representative", "");
    } else {
      others.push([span, key]);
    }
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
  document.querySelectorAll("style#axe-repeat").forEach(style => style.remove());
  for (const span of document.querySelectorAll(
      "[data-axe-repeat], [data-axe-representative]")) {
    span.removeAttribute("data-axe-repeat");
    span.removeAttribute("data-axe-representative");
  }
}"""


def _axe(page, options: dict) -> dict:
    from axe_playwright_python.sync_playwright import Axe

    return Axe().run(page, options=options).response


def _axe_with_repeats_hidden(page, options: dict) -> dict:
    """axe's response with each repeated code token hidden; the page is restored."""
    page.evaluate(HIDE_REPEATED_CODE_TOKENS_JS)
    try:
        return _axe(page, options)
    finally:
        page.evaluate(SHOW_REPEATED_CODE_TOKENS_JS)


def _undecided_representatives(response: dict) -> list[dict]:
    return [node for rule in response["incomplete"]
            if rule["id"] == "color-contrast" for node in rule["nodes"]
            if "data-axe-representative" in node["html"]]


def axe_violations(page, impacts=("critical", "serious"), rules=None) -> list[dict]:
    """axe-core (the copy bundled in axe-playwright-python; nothing is fetched).

    Every rule (or only ``rules``) on the whole page, with each repeated code token
    checked once (see HIDE_REPEATED_CODE_TOKENS_JS); the page is left as it was.
    """
    options = {"resultTypes": ["violations", "incomplete"]}
    if rules is not None:
        options["runOnly"] = list(rules)
    response = _axe_with_repeats_hidden(page, options)
    if _undecided_representatives(response):
        response = _axe(page, options)
    return [v for v in response["violations"] if v["impact"] in impacts]


def representatives_axe_left_undecided(page) -> int:
    """How many code-token representatives axe's color-contrast leaves undecided."""
    options = {"runOnly": ["color-contrast"], "resultTypes": ["incomplete"]}
    return len(_undecided_representatives(_axe_with_repeats_hidden(page, options)))


DEEP_ACTIVE_JS = """() => {
  let el = document.activeElement;
  while (el && el.shadowRoot && el.shadowRoot.activeElement) {
    el = el.shadowRoot.activeElement;
  }
  return el ? {tag: el.tagName, cls: el.className || "", role: el.getAttribute("role"),
               label: el.getAttribute("aria-label"), text: (el.innerText || "").trim()}
            : null;
}"""
