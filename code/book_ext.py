"""The book's Sphinx extension: pages that work offline, paint fast and read well.
Loaded from ``_config.yml`` (``sphinx: local_extensions``). Its jobs:

1. **BokehJS from the site itself, only where needed.** The installed bokeh's bundles
   are copied to ``_static/bokeh/``, and only pages with a Bokeh root load them, with
   ``defer`` (Bokeh's embed script waits for ``DOMContentLoaded``, which fires after
   deferred scripts have run). ``bokeh.embed`` alone would point at a CDN.
2. **Nothing the offline page cannot use**: sphinx-thebe's scripts and style (thebe
   needs a remote kernel; the live book is ``make lab``) and the saved ipywidgets state
   (it renders nothing without widget JavaScript).
3. **A fast first paint on a slow phone.** No script blocks the first paint: every
   script is deferred, except the few bytes of ``documentation_options.js`` that inline
   scripts need; the theme's 1.5 MB ``fontawesome.js`` is dropped (its icons come from
   the theme's icon font either way); sphinx-design's style and script go from pages
   that use none of its components.
4. **Screen readers and phones**: alt text from captions, roles and names that say
   what the page shows, and ``book_static/`` (CSS and JS for Bokeh's controls and a
   390 px screen).
5. **Downloads that run**: a chapter's download button gives the notebook as the
   build executed it, with its outputs, not the source without them.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

BOKEH_BUNDLES = ("bokeh", "bokeh-widgets")
EMBED_MARKER = "data-root-id"
STATIC_DIR = Path(__file__).resolve().parent / "book_static"
WIDGET_STATE_TYPE = "application/vnd.jupyter.widget-state+json"
# Script tags the theme writes into every page's head itself (not through Sphinx).
FONTAWESOME = re.compile(r'\s*<script defer src="[^"]*/fontawesome\.js[^"]*"></script>')
BLOCKING_SEARCH = re.compile(r'<script src="([^"]*(?:searchtools|language_data|'
                             r'searchindex)\.js)">')
# Attributes that make a screen reader announce something else than the page shows:
# sphinxcontrib-bibtex's deprecated role "doc-biblioentry" (axe:
# aria-required-children), and myst-nb's folded-cell toggle named "Toggle hidden
# content" while it shows "Show code cell source" (axe: label-content-name-mismatch).
BODY_FIXES = (('role="doc-biblioentry"', 'role="listitem"'),
              ('<summary aria-label="Toggle hidden content">', "<summary>"))


def bokeh_js_files() -> list[str]:
    """Paths, relative to ``_static``, of the BokehJS bundles a plot page needs."""
    import bokeh

    return [f"bokeh/{name}-{bokeh.__version__}.min.js" for name in BOKEH_BUNDLES]


def _filename(asset) -> str:
    return str(getattr(asset, "filename", asset) or "")


def _keep(asset, body: str) -> bool:
    name, attributes = _filename(asset), getattr(asset, "attributes", {})
    if "thebe" in name or "THEBE_JS_URL" in (attributes.get("body") or ""):
        return False
    if attributes.get("type") == WIDGET_STATE_TYPE:
        return False
    uses_design = ' class="sd-' in body or " sd-" in body
    return uses_design or not ("sphinx-design" in name or "design-tabs" in name)


def _deferred(script):
    name, attributes = _filename(script), getattr(script, "attributes", {})
    if not name or name.endswith("documentation_options.js") or "async" in attributes:
        return script
    return type(script)(name, priority=script.priority,
                        **{**attributes, "defer": "defer"})


def _prepare_page(app, pagename, templatename, context, doctree) -> None:
    body = context.get("body", "")
    for old, new in BODY_FIXES:
        body = body.replace(old, new)
    context["body"] = body
    if EMBED_MARKER in body:
        for relative in bokeh_js_files():  # (here, add_js_file affects this page only)
            app.add_js_file(relative, loading_method="defer")
    if "script_files" in context:
        context["script_files"] = [_deferred(s) for s in context["script_files"]
                                   if _keep(s, body)]
    if "css_files" in context:
        context["css_files"] = [c for c in context["css_files"] if _keep(c, body)]


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
    """An image without ``alt`` would be announced by its file path: use its caption
    (a figure's own ``:alt:`` wins)."""
    from docutils import nodes

    for image in doctree.findall(nodes.image):
        if not image.get("alt"):
            image["alt"] = _alt_text_for(image)


def _finish_site(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    import bokeh

    out = Path(app.outdir)
    (out / "_static" / "bokeh").mkdir(parents=True, exist_ok=True)
    source = Path(bokeh.__file__).parent / "server" / "static" / "js"
    for name, relative in zip(BOKEH_BUNDLES, bokeh_js_files(), strict=True):
        shutil.copyfile(source / f"{name}.min.js", out / "_static" / relative)
    for page in out.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        lean = FONTAWESOME.sub("", html)
        lean = BLOCKING_SEARCH.sub(r'<script defer src="\1">', lean)
        if lean != html:
            page.write_text(lean, encoding="utf-8")
    executed = out.parent / "jupyter_execute"
    for notebook in executed.rglob("*.ipynb"):
        target = out / "_sources" / notebook.relative_to(executed)
        if target.exists():  # the download button's file
            shutil.copyfile(notebook, target)


def setup(app):
    # myst-nb draws its folded cells for the html builder only; the PDF is printed
    # from a singlehtml build.
    from myst_nb import sphinx_ as nb

    app.add_node(nb.HideCodeCellNode, override=True,
                 singlehtml=(nb.visit_HideCellInput, nb.depart_HideCellInput))
    app.connect("builder-inited",
                lambda app: app.config.html_static_path.append(str(STATIC_DIR)))
    app.add_css_file("book.css")
    app.add_js_file("book.js", loading_method="defer")
    app.connect("doctree-resolved", _give_images_alt_text)
    # After other extensions have added their page scripts.
    app.connect("html-page-context", _prepare_page, priority=900)
    app.connect("build-finished", _finish_site)
    return {"version": "0.3", "parallel_read_safe": True, "parallel_write_safe": True}
