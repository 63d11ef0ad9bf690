"""reparam.style: the figure rules that keep text legible on a phone."""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from reparam import style  # noqa: E402


def test_the_numbers_give_nine_pixel_text_on_a_phone():
    widest_png = style.DPI * style.MAX_WIDTH_IN
    scale = style.PHONE_COLUMN_PX / widest_png
    smallest_text_px = style.FONT_SIZE_PT * style.DPI / 72 * scale
    assert smallest_text_px >= 9.0
    # The browser test's threshold is the scale at which 12 pt text is still 9 px.
    assert style.MIN_RENDERED_SCALE == pytest.approx(
        9.0 / (style.FONT_SIZE_PT * style.DPI / 72), abs=0.005
    )
    assert style.MIN_RENDERED_SCALE <= scale


def test_book_style_sets_every_font_to_at_least_the_minimum():
    with matplotlib.rc_context():
        style.use_book_style()
        for key in (
            "xtick.labelsize",
            "ytick.labelsize",
            "legend.fontsize",
            "axes.titlesize",
            "axes.labelsize",
        ):
            size = matplotlib.font_manager.FontProperties(
                size=matplotlib.rcParams[key]
            ).get_size_in_points()
            assert size >= style.FONT_SIZE_PT, key
        assert matplotlib.rcParams["figure.dpi"] == style.DPI


def test_a_default_book_figure_saves_within_the_width_limit():
    with matplotlib.rc_context():
        style.use_book_style()
        fig, ax = plt.subplots(figsize=style.figure_size(3.0), layout="constrained")
        ax.plot([0, 1], [0, 1])
        ax.set_xlabel("a long axis label to test the tight bounding box")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", **style.SAVEFIG_KWARGS)
        plt.close(fig)
    width = int.from_bytes(buffer.getvalue()[16:20], "big")  # PNG IHDR width
    assert width <= math.ceil(style.DPI * style.MAX_WIDTH_IN)
    # The label is not clipped: constrained layout kept it inside the figure.
    assert fig.get_constrained_layout()


@pytest.mark.parametrize(
    "width", [0, -1.0, style.MAX_WIDTH_IN + 0.01, math.inf, math.nan]
)
def test_figure_size_refuses_widths_outside_the_limit(width):
    with pytest.raises(ValueError, match="width"):
        style.figure_size(3.0, width)


@pytest.mark.parametrize("height", [0, -2.0, math.nan])
def test_figure_size_refuses_non_positive_heights(height):
    with pytest.raises(ValueError, match="height"):
        style.figure_size(height)


def test_figure_size_refuses_non_numbers():
    # Each argument alone: a check that needed both to be wrong would let one through.
    for height, width in (("3", 4.0), (3.0, "4")):
        with pytest.raises(TypeError, match="must be real numbers"):
            style.figure_size(height, width)


def test_figure_size_returns_width_then_height():
    assert style.figure_size(2.5, 4.0) == (4.0, 2.5)
    assert style.figure_size(2.5) == (style.MAX_WIDTH_IN, 2.5)
    assert style.figure_size(0.5, 0.5) == (0.5, 0.5)  # any positive size under the cap
