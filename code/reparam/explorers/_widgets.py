"""The ipywidgets side of every explorer: what ``ipywidgets_explorer()`` returns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["WidgetExplorer", "live_figure"]


class WidgetExplorer(NamedTuple):
    """A live explorer for Jupyter (``make lab``).

    ``widget`` is what to display; ``update(**values)`` is what moving a control calls:
    it redraws the figure in place for those values and returns the ``<Name>State``
    it drew; ``figure`` is the matplotlib figure it draws on.
    """

    widget: Any
    update: Callable[..., Any]
    figure: Any


def live_figure(figsize: tuple[float, float]):
    """A pyplot figure that is displayed inside a widget box, not on its own. Its
    canvas must be a widget: that needs matplotlib's widget backend (ipympl, selected
    by ``%matplotlib widget``, as each chapter does before its explorer)."""
    import ipywidgets
    import matplotlib.pyplot as plt

    with plt.ioff():
        figure = plt.figure(figsize=figsize)
    if not isinstance(figure.canvas, ipywidgets.DOMWidget):
        plt.close(figure)
        raise RuntimeError(
            "an ipywidgets explorer draws on matplotlib's widget backend: run "
            f"`%matplotlib widget` (package ipympl) first; the backend is "
            f"{plt.get_backend()!r}")
    return figure
