// Accessibility fixes for the book's pages (served by code/book_ext.py, loaded with defer).
// Each fix names the axe-core rule or the reader problem it answers.
(function () {
  "use strict";

  const squash = (text) => (text || "").replace(/\s+/g, " ").trim();

  // label-content-name-mismatch: a control's accessible name must contain the text it shows.
  // The theme's search field ("Search Ctrl+K" named "Search") and the code-cell toggles
  // ("Show code cell source" named "Toggle hidden content") say one thing and show another.
  function matchNamesToVisibleText() {
    document.querySelectorAll("button[aria-label], a[aria-label]").forEach((el) => {
      const shown = squash(el.innerText);
      const name = el.getAttribute("aria-label");
      if (shown && !squash(name).toLowerCase().includes(shown.toLowerCase())) {
        el.setAttribute("aria-label", shown);
      }
    });
    // The theme switch shows only icons; their tooltips must not compete with its name.
    document.querySelectorAll(".theme-switch-button i, .btn i, .btn svg").forEach((icon) => {
      icon.setAttribute("aria-hidden", "true");
      icon.removeAttribute("title");
    });
  }

  // A skip link straight to the first interactive figure, so a keyboard reader reaches the
  // first slider in a few Tab presses instead of walking the whole navigation.
  function addSkipToFigure() {
    const embed = document.querySelector("[data-root-id]");
    if (!embed || document.getElementById("book-skip-to-figure")) { return; }
    const target = embed.closest("figure") || embed.parentElement || embed;
    if (!target.id) { target.id = "interactive-figure"; }
    target.setAttribute("tabindex", "-1");
    const link = document.createElement("a");
    link.id = "book-skip-to-figure";
    link.className = "book-skip-link";
    link.href = "#" + target.id;
    link.textContent = "Skip to the interactive figure";
    document.body.insertBefore(link, document.body.firstChild);
  }

  // Bokeh renders inside shadow roots: walk them.
  function* deep(root) {
    for (const el of root.querySelectorAll("*")) {
      yield el;
      if (el.shadowRoot) { yield* deep(el.shadowRoot); }
    }
  }

  function* views(view) {
    yield view;
    for (const child of view.child_views || []) { yield* views(child); }
  }

  // Every element inside the Bokeh embeds (the book's other elements need no walk).
  function* inBokeh() {
    for (const embed of document.querySelectorAll("[data-root-id]")) { yield* deep(embed); }
  }

  // aria-input-field-name: name every slider handle by its slider's title ("μ, the mean").
  function nameSliderHandles() {
    for (const host of inBokeh()) {
      if (!host.shadowRoot || !host.classList.contains("bk-Slider")) { continue; }
      const title = host.shadowRoot.querySelector(".bk-slider-title");
      const handle = host.shadowRoot.querySelector(".noUi-handle");
      if (!title || !handle) { continue; }
      const first = title.firstChild;
      const name = squash(first && first.nodeType === 3 ? first.textContent : title.innerText)
        .replace(/:$/, "");
      if (name && handle.getAttribute("aria-label") !== name) {
        handle.setAttribute("aria-label", name);
      }
    }
  }

  // Every canvas gets a text alternative: the plot's title, and where to read the numbers.
  function describeCanvases() {
    if (!window.Bokeh || !Bokeh.index) { return; }
    for (const root of Object.values(Bokeh.index)) {
      for (const view of views(root)) {
        const model = view.model;
        if (!model || !model.title || !view.el || !view.el.shadowRoot) { continue; }
        const title = squash(typeof model.title === "string" ? model.title : model.title.text);
        const label = (title ? title + ": " : "") +
          "interactive plot; the text and the readout beside it describe what it shows";
        // The first canvas layer carries the description; the other layers (overlays,
        // legend swatches) repeat the same picture and are hidden from screen readers.
        let described = false;
        for (const el of deep(view.el.shadowRoot)) {
          if (el.tagName !== "CANVAS") { continue; }
          if (!described && !el.classList.contains("bk-glyph")) {
            described = true;
            if (el.getAttribute("aria-label") !== label) {
              el.setAttribute("role", "img");
              el.setAttribute("aria-label", label);
            }
          } else {
            el.setAttribute("aria-hidden", "true");
          }
        }
      }
    }
  }

  function bokehFixes() {
    try { nameSliderHandles(); describeCanvases(); } catch (error) { /* never break a page */ }
  }

  // Bokeh draws after DOMContentLoaded, asynchronously, inside shadow roots, and draws a
  // view again when its layout or a slider's title changes. So the fixes run whenever
  // something is added or changed in an embed or in one of its shadow roots (a
  // MutationObserver on each; a change of attributes, as the fixes make, is not
  // watched), at most once per 50 ms. No timer keeps running on an idle page.
  function watchBokeh() {
    const watched = new WeakSet();
    let pending = false;
    const observer = new MutationObserver(() => {
      if (pending) { return; }
      pending = true;
      setTimeout(() => { pending = false; fixAndWatch(); }, 50);
    });
    const watch = (node) => {
      if (watched.has(node)) { return; }
      watched.add(node);
      observer.observe(node, { childList: true, subtree: true, characterData: true });
    };
    function fixAndWatch() {
      bokehFixes();
      document.querySelectorAll("[data-root-id]").forEach(watch);
      for (const el of inBokeh()) { if (el.shadowRoot) { watch(el.shadowRoot); } }
    }
    fixAndWatch();
  }

  function start() {
    matchNamesToVisibleText();
    addSkipToFigure();
    if (document.querySelector("[data-root-id]")) { watchBokeh(); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
  // The theme adds some of its buttons late; fix their names again once everything loaded.
  window.addEventListener("load", matchNamesToVisibleText);
})();
