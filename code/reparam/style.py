"""One figure style for the whole book, chosen so that figures stay legible on a phone.

A figure is drawn at :data:`DPI` dots per inch and at most :data:`MAX_WIDTH_IN` inches
wide, so its PNG is at most ``DPI * MAX_WIDTH_IN`` pixels wide. On a 390-px-wide phone
the text column is about 350 px, so the image is scaled down by at most
``350 / 640 ~ 0.55``; with every font at least :data:`FONT_SIZE_PT` points
(``12 * DPI / 72 ~ 16.7`` px at full size) the smallest text is then still about 9 px
tall as rendered. Wide multi-panel figures are therefore drawn as stacked panels (more
rows, fewer columns) rather than shrunk.

The browser tests check the consequence on the built site: at a 390 px viewport no
figure image is scaled below :data:`MIN_RENDERED_SCALE` of its natural width.
"""

from __future__ import annotations

DPI = 100
MAX_WIDTH_IN = 6.4
FONT_SIZE_PT = 12
PHONE_COLUMN_PX = 350
# How the inline backend saves figures: exactly the figure's size, so that the PNG is
# at most DPI * MAX_WIDTH_IN pixels wide.
SAVEFIG_KWARGS = {"bbox_inches": None}
MIN_RENDERED_SCALE = 0.54  # 9 px / (12 pt * 100 dpi / 72 pt per inch)

__all__ = [
    "DPI",
    "MAX_WIDTH_IN",
    "FONT_SIZE_PT",
    "MIN_RENDERED_SCALE",
    "SAVEFIG_KWARGS",
    "use_book_style",
    "figure_size",
]


def use_book_style() -> None:
    """Set matplotlib's rcParams for every figure of the book (once per chapter)."""
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "font.size": FONT_SIZE_PT,
            "axes.titlesize": FONT_SIZE_PT,
            "axes.labelsize": FONT_SIZE_PT,
            "xtick.labelsize": FONT_SIZE_PT,
            "ytick.labelsize": FONT_SIZE_PT,
            "legend.fontsize": FONT_SIZE_PT,
            "figure.titlesize": FONT_SIZE_PT,
            "figure.figsize": (MAX_WIDTH_IN, 0.6 * MAX_WIDTH_IN),
        }
    )
    # The inline backend saves with bbox "tight" by default, which can make a PNG wider
    # than the figure (641 px for a 640 px figure was seen). Save the figure as drawn
    # instead; draw it with layout="constrained" (or tight_layout) so every label fits.
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            shell.run_line_magic(
                "config", f"InlineBackend.print_figure_kwargs = {SAVEFIG_KWARGS!r}"
            )
    except ImportError:  # pragma: no cover - IPython is always there in the book
        pass


def figure_size(
    height_in: float, width_in: float = MAX_WIDTH_IN
) -> tuple[float, float]:
    """A ``figsize`` no wider than :data:`MAX_WIDTH_IN`; ``ValueError`` otherwise."""
    if not (isinstance(width_in, int | float) and isinstance(height_in, int | float)):
        raise TypeError("figure width and height must be real numbers (inches)")
    if not 0 < width_in <= MAX_WIDTH_IN:
        raise ValueError(
            f"figure width must be in (0, {MAX_WIDTH_IN}] inches, got {width_in}"
        )
    if not height_in > 0:
        raise ValueError(f"figure height must be positive, got {height_in}")
    return (width_in, height_in)
