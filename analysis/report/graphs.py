"""The book's one causal-graph drawer (matplotlib only, no graphviz).

Studies return a graph as two tables: nodes (``node``, ``label``, ``role``,
``x``, ``y`` and optionally ``observed``) and edges (``source``, ``target`` and
optionally ``kind``).  :func:`draw_dag` draws them in the house style: a box per
node coloured by its role, dashed when the node is unobserved, and arrows that
start and end at the boxes' borders.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analysis.report.style import new_figure

EdgeStyle = tuple[str, str, float]
"""Colour, line style and width of an edge kind."""
DEFAULT_EDGE: EdgeStyle = ("#444444", "solid", 1.2)


def draw_dag(nodes: pd.DataFrame, edges: pd.DataFrame, *, role_colors: Mapping[str, str],
             filled_roles: Collection[str] | None = None,
             edge_styles: Mapping[str, EdgeStyle] | None = None, title: str = "",
             height: float = 3.6, fontsize: float = 8.5,
             limits: tuple[float, float, float, float] | None = None) -> tuple[Figure, Axes]:
    """Draw a causal graph from its node and edge tables.

    Parameters
    ----------
    nodes : DataFrame
        ``node``, ``label`` (may contain newlines), ``role``, ``x``, ``y``; optional
        boolean ``observed`` (False draws a dashed box).
    edges : DataFrame
        ``source``, ``target``; optional ``kind`` keyed into ``edge_styles``.
    role_colors : mapping
        Colour of each role.
    filled_roles : collection of str, optional
        Roles drawn as filled boxes with white text; others are outlined.  All
        roles are filled when omitted.
    edge_styles : mapping, optional
        ``kind -> (colour, line style, width)``; unknown kinds use a dark grey line.
    title : str
    height : float
        Figure height in inches.
    fontsize : float
    limits : (xmin, xmax, ymin, ymax), optional
        Axis limits; the nodes' range plus a margin when omitted.

    Returns
    -------
    (Figure, Axes)
        The caller adds a legend where it fits its graph.
    """
    fig, ax = new_figure(height=height)
    ax.set_axis_off()
    boxes = {}
    for r in nodes.itertuples(index=False):
        color = role_colors[r.role]
        filled = filled_roles is None or r.role in filled_roles
        observed = bool(getattr(r, "observed", True))
        boxes[r.node] = ax.text(
            r.x, r.y, r.label, ha="center", va="center", fontsize=fontsize, zorder=2,
            color="white" if filled else "black", fontweight="bold" if filled else "normal",
            bbox={"boxstyle": "round,pad=0.4", "fc": color if filled else "white",
                  "ec": color, "lw": 1.6, "ls": "-" if observed else "--"})
    styles = edge_styles or {}
    pos = {r.node: (r.x, r.y) for r in nodes.itertuples(index=False)}
    for e in edges.itertuples(index=False):
        color, style, width = styles.get(getattr(e, "kind", ""), DEFAULT_EDGE)
        # Arrows are drawn after the boxes (higher zorder): each box's patch gets its
        # position when its text is drawn, and the arrow is clipped to those patches.
        ax.annotate("", xy=pos[e.target], xytext=pos[e.source], zorder=3,
                    arrowprops={"arrowstyle": "-|>", "color": color, "lw": width,
                                "linestyle": style, "mutation_scale": 10 + 4 * width,
                                "shrinkA": 2, "shrinkB": 2,
                                "connectionstyle": "arc3,rad=0.06",
                                "patchA": boxes[e.source].get_bbox_patch(),
                                "patchB": boxes[e.target].get_bbox_patch()})
    if limits is None:
        dx = (nodes["x"].max() - nodes["x"].min()) * 0.12 or 0.5
        dy = (nodes["y"].max() - nodes["y"].min()) * 0.15 or 0.5
        limits = (nodes["x"].min() - dx, nodes["x"].max() + dx,
                  nodes["y"].min() - dy, nodes["y"].max() + dy)
    ax.set_xlim(limits[0], limits[1])
    ax.set_ylim(limits[2], limits[3])
    if title:
        ax.set_title(title)
    return fig, ax
