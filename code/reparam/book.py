"""What a chapter's check cells use to report: glued numbers and one-line receipts.

A chapter checks each claim in a code cell next to the claim. The cell's input is folded
on the website (tag ``hide-input``); what the reader sees is its receipt, one line that
names what was verified::

    assert z < 4, z
    glue_numbers(ch5_exp_z=z)
    verified("the estimate lies within 4 standard errors of 1/(λ+1)²")

shows ``✓ Verified: the estimate lies within 4 standard errors of 1/(λ+1)²``. The
receipt is shown only if every ``assert`` above it passed, so a receipt on the page
is a check that ran. See CONTRIBUTING.md for the three kinds of check.
"""

from __future__ import annotations

import html

from ._validation import as_real_scalar

__all__ = ["RECEIPT_MARK", "glue_numbers", "receipt_html", "spoken_list", "verified"]

RECEIPT_MARK = "✓ Verified:"


def receipt_html(claim: str) -> str:
    """The receipt as the website shows it: a paragraph that wraps like the prose."""
    return f'<p class="receipt">{RECEIPT_MARK} {html.escape(claim)}</p>'


def verified(claim: str) -> None:
    """Show the receipt of a check cell: ``✓ Verified: <claim>``.

    One output with two forms: HTML for the website and the PDF (a paragraph, so a long
    claim wraps), plain text for a notebook that cannot show HTML.
    """
    from IPython.display import display

    if not isinstance(claim, str):
        raise TypeError(f"claim must be a string, got {type(claim).__name__}")
    claim = " ".join(claim.split())
    if not claim:
        raise ValueError("claim must name what was verified, got an empty string")
    display({"text/plain": f"{RECEIPT_MARK} {claim}", "text/html": receipt_html(claim)},
            raw=True)


def glue_numbers(**values) -> None:
    """Glue each keyword's value under its own name, for ``{glue:text}`` in the prose.

    ``glue_numbers(ch5_exp_z=z, ch5_exp_n=n)`` is ``glue("ch5_exp_z", z,
    display=False)`` and ``glue("ch5_exp_n", n, display=False)``.
    """
    from myst_nb import glue

    for name, value in values.items():
        # A NumPy or torch scalar becomes a Python number, which every format spec of
        # {glue:text} accepts (the build fails on one it cannot format).
        if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
            value = value.item()
        glue(name, value, display=False)


def spoken_list(values, spec: str = "g") -> str:
    """The values as prose, each formatted with ``spec``: ``spoken_list((0.5, 0.7, 2))``
    is ``"0.5, 0.7 and 2"``; for a chapter that glues the settings it ran."""
    values = list(values)
    for value in values:  # a finite real number each, or a TypeError or ValueError
        as_real_scalar(value, "each value")
    words = [format(value, spec) for value in values]
    if not words:
        raise ValueError("spoken_list needs at least one value")
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
