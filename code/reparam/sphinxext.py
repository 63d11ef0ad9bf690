"""A small Sphinx extension that keeps the website self-contained.

1. Serve BokehJS once, from the site's own ``_static`` folder.

Why not Bokeh's defaults: ``bokeh.embed`` would point pages at a CDN (dead offline), and
``INLINE`` resources would copy about 1 MB of JavaScript into every page that embeds a plot.
Instead the BokehJS files of the installed ``bokeh`` are copied to ``_static/bokeh/`` at build
time, and only pages whose HTML contains a Bokeh root (``data-root-id``) load them.

2. Drop scripts the offline site cannot use. sphinx-thebe's: Jupyter Book always loads sphinx-thebe, whose page config names
a CDN and is (in this version) declared twice per page, a JavaScript error. Thebe needs a remote
kernel anyway, which an offline book cannot have; the live version of the book is ``make lab``.
And the saved ipywidgets state (``application/vnd.jupyter.widget-state+json``): with no widget
JavaScript on the site it renders nothing, yet weighs ~100 kB per page with an explorer.
"""

from __future__ import annotations

import shutil
from pathlib import Path

BOKEH_BUNDLES = ("bokeh", "bokeh-widgets")
EMBED_MARKER = "data-root-id"


def _bokeh_js_dir() -> Path:
    import bokeh

    return Path(bokeh.__file__).parent / "server" / "static" / "js"


def bokeh_js_files() -> list[str]:
    """Paths, relative to ``_static``, of the BokehJS bundles a page with a Bokeh plot needs."""
    import bokeh

    return [f"bokeh/{name}-{bokeh.__version__}.min.js" for name in BOKEH_BUNDLES]


def _copy_bokeh(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "bokeh"
    target.mkdir(parents=True, exist_ok=True)
    for name, relative in zip(BOKEH_BUNDLES, bokeh_js_files()):
        shutil.copyfile(_bokeh_js_dir() / f"{name}.min.js", Path(app.outdir) / "_static" / relative)


def _add_bokeh_to_page(app, pagename, templatename, context, doctree) -> None:
    if EMBED_MARKER in context.get("body", ""):
        for relative in bokeh_js_files():
            # Called inside html-page-context, add_js_file affects this page only.
            app.add_js_file(relative)


WIDGET_STATE_TYPE = "application/vnd.jupyter.widget-state+json"


def _is_unusable_offline(script) -> bool:
    attributes = getattr(script, "attributes", {})
    body = attributes.get("body", "") or ""
    return ("THEBE_JS_URL" in body
            or str(getattr(script, "filename", script)).endswith("sphinx-thebe.js")
            or attributes.get("type") == WIDGET_STATE_TYPE)


def _drop_unusable_scripts(app, pagename, templatename, context, doctree) -> None:
    if "script_files" in context:
        context["script_files"] = [s for s in context["script_files"] if not _is_unusable_offline(s)]


def setup(app):
    app.connect("html-page-context", _add_bokeh_to_page)
    # Run after other extensions have added their page scripts.
    app.connect("html-page-context", _drop_unusable_scripts, priority=900)
    app.connect("build-finished", _copy_bokeh)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
