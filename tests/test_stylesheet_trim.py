"""book_ext.trimmed_stylesheet: the theme's stylesheet without the rules no page uses.

On the built site: tests/test_browser.py (every rule a settled page matches is kept).
"""

from __future__ import annotations

import pytest
from book_ext import site_words, trimmed_stylesheet

SHEET = """@charset "UTF-8";/*! Bootstrap, MIT licence */
/* a plain comment */
.used{a:1}
.unused{a:2}
.unused,.used .inner{a:3}
#top .used::before{a:4}
.used:not(.unused){a:5}
.unused:not(.used){a:6}
a[href="#unused"]{a:7}
.used:is(.unused, .inner){a:8}
.used .unused{a:9}
#gone .used{a:10}
.used /* not .unused */ .inner{a:11}
.inner{a:12 !important}
@media (max-width: 10px){.used{b:1}.unused{b:2}}
@media print{.unused{b:3}}
@MEDIA screen{/*! kept */.used{b:4}/* dropped */}
@supports (display: grid){@media screen{.inner{c:1}.unused{c:2}}}
@font-face{font-family:x;src:url(x.woff2)}
@keyframes spin{from{d:0}to{d:1}}
"""
WORDS = {"used", "inner", "top"}


def test_it_keeps_exactly_the_rules_whose_classes_and_ids_are_named():
    assert trimmed_stylesheet(SHEET, WORDS) == (
        '@charset "UTF-8";/*! Bootstrap, MIT licence */'
        ".used{a:1}"
        ".unused,.used .inner{a:3}"  # one selector of the list is enough
        "#top .used::before{a:4}"
        ".used:not(.unused){a:5}"  # what :not() names need not be there
        'a[href="#unused"]{a:7}'  # nor what an attribute's value names
        ".used:is(.unused, .inner){a:8}"  # nor :is()'s (kept: the safe side)
        ".used /* not .unused */ .inner{a:11}"  # nor a comment
        ".inner{a:12 !important}"
        "@media (max-width: 10px){.used{b:1}}"  # inside @media, rule by rule
        "@MEDIA screen{/*! kept */.used{b:4}}"
        "@supports (display: grid){@media screen{.inner{c:1}}}"
        "@font-face{font-family:x;src:url(x.woff2)}"
        "@keyframes spin{from{d:0}to{d:1}}"
    )


@pytest.mark.parametrize("words", [set(), {"unrelated"}])
def test_with_no_name_used_only_what_names_none_stays(words):
    kept = trimmed_stylesheet(SHEET, words)
    assert ".used" not in kept and ".unused" not in kept and ".inner" not in kept
    assert kept.startswith('@charset "UTF-8";/*! Bootstrap, MIT licence */')
    assert 'a[href="#unused"]{a:7}' in kept and "@keyframes spin" in kept


def test_every_name_used_keeps_every_rule():
    every = WORDS | {"unused", "gone"}
    kept = trimmed_stylesheet(SHEET, every)
    assert kept.count("{a:") == 12 and "@media print{.unused{b:3}}" in kept
    assert trimmed_stylesheet(kept, every) == kept  # trimming twice changes nothing


def test_the_sites_words_include_a_class_that_only_a_script_names(tmp_path):
    (tmp_path / "_static").mkdir()
    (tmp_path / "page.html").write_text('<div class="bd-page x_y">text</div>')
    (tmp_path / "_static" / "theme.js").write_text('el.classList.add("pst-squeeze")')
    (tmp_path / "_static" / "theme.css").write_text(".in-a-stylesheet{}")
    for bundle in ("mathjax/tex-chtml.js", "bokeh/bokeh-3.9.2.min.js",
                   "scripts/fontawesome.js"):
        (tmp_path / "_static" / bundle).parent.mkdir(exist_ok=True)
        (tmp_path / "_static" / bundle).write_text('"in-a-bundle"')
    words = site_words(tmp_path)
    assert {"bd-page", "x_y", "text", "pst-squeeze"} <= words
    assert "in-a-stylesheet" not in words  # a stylesheet does not use its own rules
    assert "in-a-bundle" not in words  # MathJax, BokehJS, the unloaded fontawesome.js
    # Bootstrap builds these two at run time, from a template: `bs-${name}-auto`.
    assert {"bs-tooltip-auto", "bs-popover-auto"} <= words
