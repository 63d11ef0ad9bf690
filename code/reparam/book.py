"""What a chapter's check cells use to report: glued numbers and one-line receipts.

A chapter checks each claim in a code cell next to the claim. The cell's input is folded
on the website (tag ``hide-input``); what the reader sees is its receipt, one line that
names what was verified::

    assert z < 4, z
    glue_numbers(ch5_exp_z=z)
    verified("the estimate lies within 4 standard errors of 1/(λ+1)²")

prints ``✓ Verified: the estimate lies within 4 standard errors of 1/(λ+1)²``. The
receipt is printed only if every ``assert`` above it passed, so a receipt on the page
is a check that ran. See CONTRIBUTING.md for the three kinds of check.
"""

from __future__ import annotations

__all__ = ["RECEIPT_MARK", "glue_numbers", "verified"]

RECEIPT_MARK = "✓ Verified:"


def verified(claim: str) -> None:
    """Print the receipt of a check cell: ``✓ Verified: <claim>``."""
    if not isinstance(claim, str):
        raise TypeError(f"claim must be a string, got {type(claim).__name__}")
    claim = " ".join(claim.split())
    if not claim:
        raise ValueError("claim must name what was verified, got an empty string")
    print(f"{RECEIPT_MARK} {claim}")  # one write: one output block


def glue_numbers(**values) -> None:
    """Glue each keyword's value under its own name, for ``{glue:text}`` in the prose.

    ``glue_numbers(ch5_exp_z=z, ch5_exp_n=n)`` is ``glue("ch5_exp_z", z,
    display=False)`` and ``glue("ch5_exp_n", n, display=False)``.
    """
    from myst_nb import glue

    for name, value in values.items():
        glue(name, value, display=False)
