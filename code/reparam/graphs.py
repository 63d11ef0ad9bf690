"""The computation graph before and after the trick: data, gradient paths, figure.

Both graphs are one training step of a VAE's encoder, with the same start in both
panels: the parameters ``phi`` and a data point ``x`` give the Gaussian's parameters
``(mu_phi(x), sigma_phi(x))``, from which ``z`` comes, and the loss is ``f(z)``.
Before the trick, ``z ~ N(mu, sigma^2)`` is a *stochastic node*: the sampling edge into
``z`` has no derivative, so backpropagation from ``f`` stops at ``z`` and
never reaches ``phi``. After it, the noise ``eps`` is a stochastic *input*,
``z = mu + sigma * eps`` is a deterministic node, and every edge from ``phi`` to ``f``
can be differentiated. :func:`parameters_reached` walks the edges backwards from the
loss, so the figure's claim is computed from the same graph that is drawn.
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

# "input": data the step is given (x); backpropagation could reach it, but nothing is
# learned there, so no gradient arrow is drawn to it.
KINDS = ("parameter", "input", "stochastic", "deterministic", "loss")


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


# The part both graphs share: phi and x give the Gaussian's parameters.
_ENCODER_NODES = (
    Node("phi", r"$\phi$", "parameter", (0.0, 0.42)),
    Node("x", r"$x$", "input", (0.0, -0.42)),
    Node(
        "encoder",
        "$\\mu_\\phi(x)$\n$\\sigma_\\phi(x)$",
        "deterministic",
        (1.05, 0.0),
    ),
)
_ENCODER_EDGES = (Edge("phi", "encoder", True), Edge("x", "encoder", True))


def before_trick() -> Graph:
    """z is sampled from N(mu_phi(x), sigma_phi(x)^2): that edge has no derivative."""
    return Graph(
        "Before the trick: z is sampled from its distribution",
        (
            *_ENCODER_NODES,
            Node("z", r"$z \sim \mathcal{N}(\mu, \sigma^2)$", "stochastic",
                 (2.3, 0.0)),
            Node("f", r"$f(z)$", "loss", (3.35, 0.0)),
        ),
        (
            *_ENCODER_EDGES,
            Edge("encoder", "z", differentiable=False),
            Edge("z", "f", differentiable=True),
        ),
    )


def after_trick() -> Graph:
    """eps is an input; z = mu + sigma * eps is differentiable in mu, sigma, so phi."""
    return Graph(
        "After the trick: the noise is an input, z is computed",
        (
            *_ENCODER_NODES,
            Node(
                "eps",
                r"$\varepsilon \sim \mathcal{N}(0, I)$",
                "stochastic",
                (2.3, -0.9),
            ),
            Node(
                "z",
                r"$z = \mu + \sigma \odot \varepsilon$",
                "deterministic",
                (2.3, 0.0),
            ),
            Node("f", r"$f(z)$", "loss", (3.35, 0.0)),
        ),
        (
            *_ENCODER_EDGES,
            Edge("encoder", "z", True),
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
    "input": {
        "boxstyle": "round,pad=0.35",
        "facecolor": "#ffffff",
        "edgecolor": "#333333",
    },
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
            fontsize=12,
            bbox=_STYLE[node.kind],
            zorder=3,
        )
    reached = nodes_reaching(graph)
    missed = [node.label for node in graph.nodes
              if node.kind == "parameter" and node.name not in reached]
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
            ax.text((x0 + x1) / 2, y0 + 0.14, "sample", ha="center", fontsize=11)
            if missed:
                ax.text(
                    (x0 + x1) / 2,
                    y0 - 0.5,
                    "no gradient reaches " + ", ".join(missed),
                    ha="center",
                    va="center",
                    fontsize=11,
                    color=_GRADIENT_COLOR,
                )
        # Backward pass: red dashed, along each edge on a path from a parameter to the
        # loss, drawn beside the forward arrow (offset along the edge's normal). Inputs
        # (x, eps) get none: nothing is learned there.
        source_kind = graph.node(edge.source).kind
        on_path = edge.source in reached and source_kind not in ("stochastic", "input")
        if edge.differentiable and (on_path or graph.node(edge.target).kind == "loss"):
            length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
            nx, ny = -(y1 - y0) / length, (x1 - x0) / length
            shift = -0.12
            _arrow(
                ax,
                (x1 + shift * nx, y1 + shift * ny),
                (x0 + shift * nx, y0 + shift * ny),
                color=_GRADIENT_COLOR,
                linestyle="--",
            )
    ax.set_title(graph.title, fontsize=12)
    ax.set_xlim(-0.3, 3.75)
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
        height_ratios=(1.0, 1.3),
    )
    before, after = before_trick(), after_trick()
    _draw(axes[0], before)
    axes[0].set_ylim(-0.75, 0.65)
    _draw(axes[1], after)
    axes[1].set_ylim(-1.15, 0.65)
    handles = [
        Line2D([], [], color="black", lw=1.6, label="forward"),
        Line2D([], [], color="black", lw=1.6, ls=":", label="sample"),
        Line2D([], [], color=_GRADIENT_COLOR, lw=1.6, ls="--", label="gradient"),
        Patch(
            **{k: v for k, v in _STYLE["stochastic"].items() if k != "boxstyle"},
            label="random",
        ),
    ]
    axes[1].legend(handles=handles, loc="lower right", fontsize=12, frameon=False)
    return fig
