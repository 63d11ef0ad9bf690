"""Book machinery (not mathematics): a small Sphinx extension that keeps the site
offline, light and accessible. Loaded from ``_config.yml`` (``sphinx:
local_extensions``).

1. **BokehJS, once, from the site itself, only where needed, without blocking first
   paint.** ``bokeh.embed`` would point pages at a CDN (dead offline) and ``INLINE``
   resources would copy ~1 MB of JavaScript into every page with a plot. Instead the
   installed bokeh's bundles are copied to ``_static/bokeh/`` at build time, and only
   pages whose HTML holds a Bokeh root (``data-root-id``) load them, with ``defer``.
   Bokeh's embed script waits for ``DOMContentLoaded``, which fires after deferred
   scripts have run.
2. **Scripts the offline site cannot use are dropped**: sphinx-thebe's (a CDN config
   declared twice per page, a JavaScript error; thebe needs a remote kernel, which an
   offline book cannot have: the live book is ``make lab``) and the saved ipywidgets
   state (renders nothing without widget JavaScript, yet weighs ~100 kB).
3. **Accessibility and phones** (``book_static/book.css`` and ``book_static/book.js``,
   served from ``_static``): a skip link to the first interactive figure, accessible
   names for Bokeh's slider handles and canvases, fixes for the theme's buttons whose
   accessible name did not contain their visible text, list semantics for the
   bibliography, alt text instead of file paths, and CSS so that no page scrolls
   sideways on a 390-px-wide phone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

BOKEH_BUNDLES = ("bokeh", "bokeh-widgets")
EMBED_MARKER = "data-root-id"
STATIC_DIR = Path(__file__).resolve().parent / "book_static"
WIDGET_STATE_TYPE = "application/vnd.jupyter.widget-state+json"


def _bokeh_js_dir() -> Path:
    import bokeh

    return Path(bokeh.__file__).parent / "server" / "static" / "js"


def bokeh_js_files() -> list[str]:
    """Paths, relative to ``_static``, of the BokehJS bundles a plot page needs."""
    import bokeh

    return [f"bokeh/{name}-{bokeh.__version__}.min.js" for name in BOKEH_BUNDLES]


def _copy_bokeh(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "bokeh"
    target.mkdir(parents=True, exist_ok=True)
    for name, relative in zip(BOKEH_BUNDLES, bokeh_js_files(), strict=True):
        shutil.copyfile(
            _bokeh_js_dir() / f"{name}.min.js", Path(app.outdir) / "_static" / relative
        )


def _add_bokeh_to_page(app, pagename, templatename, context, doctree) -> None:
    if EMBED_MARKER in context.get("body", ""):
        for relative in bokeh_js_files():
            # Inside html-page-context, add_js_file affects this page only.
            app.add_js_file(relative, loading_method="defer")


def _is_unusable_offline(script) -> bool:
    attributes = getattr(script, "attributes", {})
    body = attributes.get("body", "") or ""
    return (
        "THEBE_JS_URL" in body
        or str(getattr(script, "filename", script)).endswith("sphinx-thebe.js")
        or attributes.get("type") == WIDGET_STATE_TYPE
    )


def _drop_unusable_scripts(app, pagename, templatename, context, doctree) -> None:
    if "script_files" in context:
        context["script_files"] = [
            s for s in context["script_files"] if not _is_unusable_offline(s)
        ]


def _alt_text_for(image) -> str:
    from docutils import nodes

    figure = image.parent
    while figure is not None and not isinstance(figure, nodes.figure):
        figure = figure.parent
    if figure is not None:
        for caption in figure.findall(nodes.caption):
            return " ".join(caption.astext().split())
    return "A figure drawn by the code cell above; the surrounding text describes it."


def _give_images_alt_text(app, doctree, docname) -> None:
    """An image without ``alt`` would be announced by its file path: use its caption.

    Chapters should write ``:alt:`` in the figure directive (it wins: it is kept as is);
    this is the fallback for images without one.
    """
    from docutils import nodes

    for image in doctree.findall(nodes.image):
        if not image.get("alt"):
            image["alt"] = _alt_text_for(image)


# Attributes that make a screen reader announce something else than the page shows.
# - sphinxcontrib-bibtex gives the bibliography role="list" whose children have the
#   deprecated role "doc-biblioentry" (axe: aria-required-children): list items.
# - myst-nb's folded code cells name their toggle "Toggle hidden content" while it
#   shows "Show code cell source" (axe 4.14: label-content-name-mismatch): without the
#   aria-label, the visible text is the name.
BODY_FIXES = (('role="doc-biblioentry"', 'role="listitem"'),
              ('<summary aria-label="Toggle hidden content">', "<summary>"))


def _fix_body_roles(app, pagename, templatename, context, doctree) -> None:
    body = context.get("body", "")
    for old, new in BODY_FIXES:
        body = body.replace(old, new)
    context["body"] = body


def _add_static_path(app) -> None:
    app.config.html_static_path.append(str(STATIC_DIR))


def setup(app):
    app.connect("builder-inited", _add_static_path)
    app.add_css_file("book.css")
    app.add_js_file("book.js", loading_method="defer")
    app.connect("html-page-context", _add_bokeh_to_page)
    app.connect("html-page-context", _fix_body_roles)
    app.connect("doctree-resolved", _give_images_alt_text)
    # Run after other extensions have added their page scripts.
    app.connect("html-page-context", _drop_unusable_scripts, priority=900)
    app.connect("build-finished", _copy_bokeh)
    return {"version": "0.2", "parallel_read_safe": True, "parallel_write_safe": True}
