"""The computation graph before and after the trick: data, gradient paths, figure.

Before the trick, ``z ~ q_phi`` is a *stochastic node*: the sampling edge from ``phi``
to ``z`` has no derivative, so backpropagation from the loss ``f`` stops at ``z`` and
never reaches ``phi``. After it, the noise ``eps`` is a stochastic *input*,
``z = mu + sigma * eps`` is a deterministic node, and every edge from the parameters to
``f`` can be differentiated. :func:`parameters_reached` walks the edges backwards from
the loss, so the figure's claim is computed from the same graph that is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Node",
    "Edge",
    "Graph",
    "before_trick",
    "after_trick",
    "nodes_reaching",
    "parameters_reached",
    "draw_computation_graphs",
]

KINDS = ("parameter", "stochastic", "deterministic", "loss")


@dataclass(frozen=True)
class Node:
    name: str
    label: str  # matplotlib mathtext
    kind: str
    xy: tuple[float, float]

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    differentiable: bool


@dataclass(frozen=True)
class Graph:
    title: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ValueError(f"no node named {name!r} in graph {self.title!r}")


def before_trick() -> Graph:
    """z is sampled from q_phi: the edge phi -> z is a draw, with no derivative."""
    return Graph(
        "Before the trick: z is sampled from its distribution",
        (
            Node("phi", r"$\phi$", "parameter", (0.0, 0.0)),
            Node("z", r"$z \sim q_\phi$", "stochastic", (1.0, 0.0)),
            Node("f", r"$f(z)$", "loss", (2.0, 0.0)),
        ),
        (Edge("phi", "z", differentiable=False), Edge("z", "f", differentiable=True)),
    )


def after_trick() -> Graph:
    """eps is an input; z = mu + sigma * eps is differentiable in mu and sigma."""
    return Graph(
        "After the trick: the noise is an input, z is computed",
        (
            Node("mu", r"$\mu$", "parameter", (0.0, 0.45)),
            Node("sigma", r"$\sigma$", "parameter", (0.0, -0.45)),
            Node(
                "eps",
                r"$\varepsilon \sim \mathcal{N}(0, I)$",
                "stochastic",
                (1.0, -0.9),
            ),
            Node(
                "z",
                r"$z = \mu + \sigma \odot \varepsilon$",
                "deterministic",
                (1.0, 0.0),
            ),
            Node("f", r"$f(z)$", "loss", (2.0, 0.0)),
        ),
        (
            Edge("mu", "z", True),
            Edge("sigma", "z", True),
            Edge("eps", "z", True),
            Edge("z", "f", True),
        ),
    )


def nodes_reaching(graph: Graph, loss: str = "f") -> set[str]:
    """Every node with a chain of differentiable edges to ``loss`` (and ``loss``)."""
    graph.node(loss)  # raises for an unknown loss node
    reached, frontier = {loss}, [loss]
    while frontier:
        current = frontier.pop()
        for edge in graph.edges:
            if (
                edge.target == current
                and edge.differentiable
                and edge.source not in reached
            ):
                reached.add(edge.source)
                frontier.append(edge.source)
    return reached


def parameters_reached(graph: Graph, loss: str = "f") -> set[str]:
    """Parameter nodes that backpropagation from ``loss`` reaches (gradients)."""
    return {
        name
        for name in nodes_reaching(graph, loss)
        if graph.node(name).kind == "parameter"
    }


_STYLE = {
    "parameter": {
        "boxstyle": "round,pad=0.35",
        "facecolor": "#dbe9f6",
        "edgecolor": "#1f4e79",
    },
    "stochastic": {
        "boxstyle": "round4,pad=0.35",
        "facecolor": "#fde3c8",
        "edgecolor": "#a64d00",
        "linestyle": "--",
    },
    "deterministic": {
        "boxstyle": "square,pad=0.35",
        "facecolor": "#e6f2e1",
        "edgecolor": "#2e6b1f",
    },
    "loss": {
        "boxstyle": "square,pad=0.35",
        "facecolor": "#eeeeee",
        "edgecolor": "#333333",
    },
}
_GRADIENT_COLOR = "#c00000"


def _arrow(ax, start, end, **style) -> None:
    props = {"arrowstyle": "-|>", "lw": 1.6, "shrinkA": 26, "shrinkB": 26} | style
    ax.annotate("", end, start, zorder=1, arrowprops=props)


def _draw(ax, graph: Graph) -> None:
    for node in graph.nodes:
        ax.annotate(
            node.label,
            node.xy,
            ha="center",
            va="center",
            fontsize=13,
            bbox=_STYLE[node.kind],
            zorder=3,
        )
    reached = nodes_reaching(graph)
    for edge in graph.edges:
        (x0, y0), (x1, y1) = graph.node(edge.source).xy, graph.node(edge.target).xy
        # Forward pass: black; a draw (no derivative) is dotted and labelled.
        _arrow(
            ax,
            (x0, y0),
            (x1, y1),
            color="black",
            linestyle="-" if edge.differentiable else ":",
        )
        if not edge.differentiable:
            ax.text((x0 + x1) / 2, y0 + 0.17, "sample", ha="center", fontsize=12)
            ax.text(
                (x0 + x1) / 2,
                y0 - 0.22,
                "no gradient reaches " + graph.node(edge.source).label,
                ha="center",
                va="center",
                fontsize=12,
                color=_GRADIENT_COLOR,
            )
        # Backward pass: red dashed, along each edge on a path from a parameter to the
        # loss,
        # drawn beside the forward arrow (offset along the edge's normal).
        on_path = (
            edge.source in reached and graph.node(edge.source).kind != "stochastic"
        )
        if edge.differentiable and (on_path or graph.node(edge.target).kind == "loss"):
            length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
            nx, ny = -(y1 - y0) / length, (x1 - x0) / length
            shift = -0.13
            _arrow(
                ax,
                (x1 + shift * nx, y1 + shift * ny),
                (x0 + shift * nx, y0 + shift * ny),
                color=_GRADIENT_COLOR,
                linestyle="--",
            )
    ax.set_title(graph.title, fontsize=12)
    ax.set_xlim(-0.4, 2.4)
    ax.axis("off")


def draw_computation_graphs():
    """Both graphs, stacked (phone-friendly), as one matplotlib figure 6.4 in wide."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from .style import MAX_WIDTH_IN

    fig, axes = plt.subplots(
        2,
        1,
        figsize=(MAX_WIDTH_IN, 6.4),
        layout="constrained",
        height_ratios=(1.0, 1.6),
    )
    before, after = before_trick(), after_trick()
    _draw(axes[0], before)
    axes[0].set_ylim(-0.5, 0.35)
    _draw(axes[1], after)
    axes[1].set_ylim(-1.2, 0.75)
    handles = [
        Line2D([], [], color="black", lw=1.6, label="forward"),
        Line2D([], [], color=_GRADIENT_COLOR, lw=1.6, ls="--", label="gradient"),
        Patch(
            **{k: v for k, v in _STYLE["stochastic"].items() if k != "boxstyle"},
            label="random",
        ),
    ]
    axes[1].legend(handles=handles, loc="lower right", fontsize=12, frameon=False)
    return fig
