"""The book's Sphinx extension (``local_extensions`` in ``_config.yml``): BokehJS from
the site itself, only where an explorer needs it; no thebe or saved widget state (an
offline page cannot use them); before the first paint, only stylesheets and Sphinx's
300-byte settings script (the others deferred and not preloaded, the 1.5 MB
``fontawesome.js`` dropped: the icon font draws the icons; sphinx-design's files only
on a page that uses its classes); alt text, roles and names for screen readers (and
``book_static/``); executed notebooks as downloads."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import bokeh

BOKEH_BUNDLES = ("bokeh", "bokeh-widgets")
EMBED_MARKER = "data-root-id"
STATIC_DIR = Path(__file__).resolve().parent / "book_static"
WIDGET_STATE_TYPE = "application/vnd.jupyter.widget-state+json"
DESIGN_CLASS = re.compile(r'class="[^"]*\bsd-')  # a sphinx-design component
DESIGN_FILES = ("sphinx-design.min.css", "design-tabs.js")
# Tags the theme writes into every page's head itself (not through Sphinx); its
# preloaded scripts still load, deferred, from the end of the page.
FONTAWESOME = re.compile(r'\s*<script defer src="[^"]*/fontawesome\.js[^"]*"></script>')
PRELOADED_SCRIPT = re.compile(r'\s*(<!-- Pre-loaded scripts that we\'ll load fully '
                              r'later -->|<link rel="preload" as="script" [^>]*/>)')
BLOCKING_SEARCH = re.compile(r'<script src="([^"]*(?:searchtools|language_data|'
                             r'searchindex)\.js)">')
# What a screen reader would announce wrongly (axe: aria-required-children; and
# label-content-name-mismatch, as the toggle shows "Show code cell source").
BODY_FIXES = (('role="doc-biblioentry"', 'role="listitem"'),
              ('<summary aria-label="Toggle hidden content">', "<summary>"))


def source_version() -> int:
    """A number that changes with this file or any file in ``book_static/``."""
    files = [Path(__file__), *sorted(p for p in STATIC_DIR.rglob("*") if p.is_file())]
    return int(hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:12],
               16)


def bokeh_js_files() -> list[str]:  # relative to _static
    return [f"bokeh/{name}-{bokeh.__version__}.min.js" for name in BOKEH_BUNDLES]


def _filename(asset) -> str:
    return str(getattr(asset, "filename", asset) or "")


def _keep(asset, uses_design: bool) -> bool:
    name, attributes = _filename(asset), getattr(asset, "attributes", {})
    return not ("thebe" in name or "THEBE_JS_URL" in (attributes.get("body") or "")
                or attributes.get("type") == WIDGET_STATE_TYPE
                or (name.endswith(DESIGN_FILES) and not uses_design))


def _deferred(script):
    name, attributes = _filename(script), getattr(script, "attributes", {})
    if not name or name.endswith("documentation_options.js") or "async" in attributes:
        return script
    return type(script)(name, priority=script.priority,
                        **{**attributes, "defer": "defer"})


def _prepare_page(app, pagename, templatename, context, doctree) -> None:
    for old, new in BODY_FIXES:
        context["body"] = context.get("body", "").replace(old, new)
    if EMBED_MARKER in context["body"]:
        for relative in bokeh_js_files():  # (here, add_js_file affects this page only)
            app.add_js_file(relative, loading_method="defer")
    uses_design = bool(DESIGN_CLASS.search(context["body"]))
    if "script_files" in context:
        context["script_files"] = [_deferred(s) for s in context["script_files"]
                                   if _keep(s, uses_design)]
    if "css_files" in context:
        context["css_files"] = [c for c in context["css_files"]
                                if _keep(c, uses_design)]


def _give_images_alt_text(app, doctree, docname) -> None:
    """An image without ``alt`` would be announced by its file path: give it its
    figure's caption, or a sentence (a figure's own ``:alt:`` wins)."""
    from docutils import nodes

    for image in doctree.findall(nodes.image):
        figure = image.parent
        while figure is not None and not isinstance(figure, nodes.figure):
            figure = figure.parent
        captions = list(figure.findall(nodes.caption)) if figure is not None else []
        if not image.get("alt"):
            image["alt"] = (" ".join(captions[0].astext().split()) if captions else
                            "A figure drawn by the cell above; the text describes it.")


def _finish_site(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    import nbformat
    from jupyter_cache import get_cache

    out = Path(app.outdir)
    (out / "_static" / "bokeh").mkdir(parents=True, exist_ok=True)
    source = Path(bokeh.__file__).parent / "server" / "static" / "js"
    for name, relative in zip(BOKEH_BUNDLES, bokeh_js_files(), strict=True):
        shutil.copyfile(source / f"{name}.min.js", out / "_static" / relative)
    for page in out.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        new = PRELOADED_SCRIPT.sub("", FONTAWESOME.sub("", html))
        new = BLOCKING_SEARCH.sub(r'<script defer src="\1">', new)
        if new != html:
            page.write_text(new, encoding="utf-8")
    cache = get_cache(str(out.parent / ".jupyter_cache"))  # myst-nb's default place
    for download in (out / "_sources").rglob("*.ipynb"):  # the download button's files
        _, executed = cache.merge_match_into_notebook(nbformat.read(download, 4))
        nbformat.write(executed, download)


def setup(app):
    # myst-nb draws folded cells for html only; make pdf prints a singlehtml build.
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
    # Sphinx writes again mostly the pages whose sources changed, but every page when
    # an extension's env_version changes: so after an edit here or in book_static/.
    return {"version": "0.3", "env_version": source_version(),
            "parallel_read_safe": True, "parallel_write_safe": True}
