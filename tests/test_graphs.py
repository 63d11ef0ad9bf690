"""The computation-graph data behind the figure, which parameters get a gradient, and
the figure drawn from it."""

from __future__ import annotations

import matplotlib
import pytest

from reparam.graphs import (
    Edge,
    Graph,
    Node,
    after_trick,
    before_trick,
    draw_computation_graphs,
    nodes_reaching,
    parameters_reached,
)

matplotlib.use("Agg")


def test_no_gradient_reaches_phi_before_the_trick():
    assert parameters_reached(before_trick()) == set()
    assert nodes_reaching(before_trick()) == {"f", "z"}
    assert before_trick().node("z").kind == "stochastic"


def test_the_gradient_reaches_phi_through_mu_and_sigma_after_the_trick():
    after = after_trick()
    assert parameters_reached(after) == {"phi"}
    assert nodes_reaching(after) == {"f", "z", "encoder", "eps", "phi", "x"}
    assert after.node("z").kind == "deterministic"
    assert after.node("eps").kind == "stochastic"


def test_both_graphs_draw_phi_and_x_feeding_mu_and_sigma():
    # The two panels differ only after (mu_phi(x), sigma_phi(x)).
    for graph in (before_trick(), after_trick()):
        assert {(e.source, e.target) for e in graph.edges if e.target == "encoder"} == {
            ("phi", "encoder"), ("x", "encoder")}
        assert ("encoder", "z") in {(e.source, e.target) for e in graph.edges}
        assert graph.node("x").kind == "input" and graph.node("phi").kind == "parameter"
        label = graph.node("encoder").label
        assert r"\mu_\phi(x)" in label and r"\sigma_\phi(x)" in label


def test_a_chain_is_followed_through_several_nodes_and_broken_by_one_draw():
    nodes = tuple(
        Node(n, n, kind, (0.0, 0.0))
        for n, kind in (
            ("a", "parameter"),
            ("b", "deterministic"),
            ("c", "deterministic"),
            ("d", "parameter"),
            ("f", "loss"),
        )
    )
    edges = (
        Edge("a", "b", True),
        Edge("b", "c", True),
        Edge("c", "f", True),
        Edge("d", "b", False),
    )
    assert parameters_reached(Graph("chain", nodes, edges)) == {"a"}


def test_bad_graphs_raise():
    with pytest.raises(ValueError, match="kind"):
        Node("x", "x", "random", (0.0, 0.0))
    with pytest.raises(ValueError, match="no node named"):
        parameters_reached(before_trick(), loss="loss")


def test_figure_fits_the_phone_width():
    import matplotlib.pyplot as plt

    from reparam.style import MAX_WIDTH_IN

    figure = draw_computation_graphs()
    assert figure.get_size_inches()[0] <= MAX_WIDTH_IN
    plt.close(figure)


def _drawn(ax, graph):
    """Each drawn arrow as (source, target) by the nodes nearest its two ends: the
    black forward arrows with their line styles, and the edges that carry a red dashed
    gradient arrow (drawn from target to source); and each text with its colour."""
    from matplotlib.colors import to_hex

    def nearest(point):
        return min(graph.nodes, key=lambda n: (n.xy[0] - point[0]) ** 2
                   + (n.xy[1] - point[1]) ** 2).name

    forward, gradient_edges, texts = {}, set(), {}
    for text in ax.texts:
        arrow = getattr(text, "arrow_patch", None)
        if arrow is None:
            texts[text.get_text()] = to_hex(text.get_color())
        elif to_hex(arrow.get_edgecolor()) == "#c00000":
            assert arrow.get_linestyle() == "--"
            gradient_edges.add((nearest(text.xy), nearest(text.xyann)))
        else:
            assert to_hex(arrow.get_edgecolor()) == "#000000"
            forward[nearest(text.xyann), nearest(text.xy)] = arrow.get_linestyle()
    return forward, gradient_edges, texts


def test_the_figure_draws_the_gradient_where_backpropagation_goes():
    # A black arrow along every edge, dotted for the draw; red dashed arrows on the
    # edges from a parameter to the loss (and into the loss), none from an input (x,
    # eps); the red label of the missed parameter only before the trick.
    import matplotlib.pyplot as plt

    figure = draw_computation_graphs()
    before, after = figure.axes[:2]
    forward, arrows, texts = _drawn(before, before_trick())
    assert forward == {(e.source, e.target): "-" if e.differentiable else ":"
                       for e in before_trick().edges}
    assert set(forward.values()) == {"-", ":"}
    assert arrows == {("z", "f")}
    assert texts["sample"] == "#000000"
    assert texts[r"no gradient reaches $\phi$"] == "#c00000"
    forward, arrows, texts = _drawn(after, after_trick())
    assert forward == {(e.source, e.target): "-" for e in after_trick().edges}
    assert arrows == {("phi", "encoder"), ("encoder", "z"), ("z", "f")}
    assert "sample" not in texts and not any("no gradient" in t for t in texts)
    plt.close(figure)
