"""The book's Sphinx extension (``local_extensions`` in ``_config.yml``): BokehJS from
the site itself, only where an explorer needs it; no saved widget state (an offline
page cannot use it); before the first paint, only stylesheets (the theme's trimmed to
the rules the site can use) and Sphinx's 300-byte settings script (the others deferred
and not preloaded, the 1.5 MB ``fontawesome.js`` dropped: the icon font draws the
icons); roles and names for screen readers (and ``book_static/``); executed notebooks
as downloads."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import bokeh
import pydata_sphinx_theme

BOKEH_BUNDLES = ("bokeh", "bokeh-widgets")
EMBED_MARKER = "data-root-id"
STATIC_DIR = Path(__file__).resolve().parent / "book_static"
WIDGET_STATE_TYPE = "application/vnd.jupyter.widget-state+json"
# The theme's stylesheet, relative to _static, and the theme's own copy of it.
THEME_CSS = Path("styles", "pydata-sphinx-theme.css")
THEME_STATIC = (Path(pydata_sphinx_theme.__file__).parent / "theme"
                / "pydata_sphinx_theme" / "static")
# Tags the theme writes into every page's head itself (not through Sphinx); its
# preloaded scripts still load, deferred, from the end of the page.
FONTAWESOME = re.compile(r'\s*<script defer src="[^"]*/fontawesome\.js[^"]*"></script>')
PRELOADED_SCRIPT = re.compile(r'\s*(<!-- Pre-loaded scripts that we\'ll load fully '
                              r'later -->|<link rel="preload" as="script" [^>]*/>)')
WORD = re.compile(r"[\w-]+")
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
    if "script_files" in context:
        context["script_files"] = [
            _deferred(s) for s in context["script_files"]
            if getattr(s, "attributes", {}).get("type") != WIDGET_STATE_TYPE]


def _required_names(prelude) -> list[set[str]]:
    """For each selector of a rule's list, the classes and ids it requires: not the
    ones inside ``:not(...)``, ``:is(...)`` or ``[...]`` (one tinycss2 token each)."""
    selectors, names, after_dot = [], set(), False
    for token in prelude:
        if token.type == "literal" and token.value == ",":
            selectors, names = [*selectors, names], set()
        elif token.type == "hash" or (token.type == "ident" and after_dot):
            names.add(token.value)
        after_dot = token.type == "literal" and token.value == "."
    return [*selectors, names]


def trimmed_stylesheet(css: str, words: set[str]) -> str:
    """``css`` without a rule when each selector of its list requires some class or id
    that is not in ``words`` (PurgeCSS's method), inside ``@media`` and ``@supports``
    too; licence comments (``/*!``) and other at-rules stay as they are."""
    import tinycss2

    kept = []
    for rule in tinycss2.parse_rule_list(css):
        if rule.type == "qualified-rule":
            if any(names <= words for names in _required_names(rule.prelude)):
                kept.append(rule.serialize())
        elif rule.type == "at-rule" and rule.lower_at_keyword in ("media", "supports"):
            inside = trimmed_stylesheet(tinycss2.serialize(rule.content), words)
            if inside:
                kept.append(f"@{rule.at_keyword}{tinycss2.serialize(rule.prelude)}"
                            f"{{{inside}}}")
        elif rule.type == "at-rule" or (rule.type == "comment"
                                         and rule.value.startswith("!")):
            kept.append(rule.serialize())
    return "".join(kept)


def site_words(out: Path) -> set[str]:
    """Every word of the site's pages and scripts (a class a script adds is one),
    and the classes Bootstrap builds at run time (``bs-${name}-auto``). Not read:
    MathJax and BokehJS (23 MB), which draw into elements of their own, and
    ``fontawesome.js``, which no page loads."""
    words = {"bs-tooltip-auto", "bs-popover-auto"}
    for path in (*out.rglob("*.html"), *out.rglob("*.js")):
        parts = path.relative_to(out).parts
        if not ({"mathjax", "bokeh"} & set(parts) or path.name == "fontawesome.js"):
            words.update(WORD.findall(path.read_text(encoding="utf-8",
                                                     errors="replace")))
    return words


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
    # The theme's rules for classes the site never names: 290 KB of its 397 KB
    # stylesheet, which every page loads before its first paint. (Trimmed from the
    # theme's own file: Sphinx does not copy it again when no page changed.)
    (out / "_static" / THEME_CSS).write_text(trimmed_stylesheet(
        (THEME_STATIC / THEME_CSS).read_text(encoding="utf-8"), site_words(out)),
        encoding="utf-8")
    (out / "_static" / THEME_CSS.with_suffix(".css.map")).unlink(missing_ok=True)
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
    # After other extensions have added their page scripts.
    app.connect("html-page-context", _prepare_page, priority=900)
    app.connect("build-finished", _finish_site)
    # Sphinx writes again mostly the pages whose sources changed, but every page when
    # an extension's env_version changes: so after an edit here or in book_static/.
    return {"version": "0.3", "env_version": source_version(),
            "parallel_read_safe": True, "parallel_write_safe": True}
