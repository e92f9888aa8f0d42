"""Checking an adjustment set against a causal graph (the back-door criterion)."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from analysis.causal.graph import make_graph
from analysis.errors import GraphError


def backdoor_check(graph: nx.DiGraph, treatment: str, outcome: str,
                   adjust: Iterable[str]) -> tuple[bool, str]:
    """Whether ``adjust`` satisfies the back-door criterion for ``treatment -> outcome``.

    Parameters
    ----------
    graph : networkx.DiGraph
        A DAG; nodes with attribute ``observed=False`` may not be adjusted for.
    treatment, outcome : str
    adjust : iterable of str

    Returns
    -------
    (bool, str)
        Whether the set is valid, and the reason in words.

    Raises
    ------
    GraphError
        If the graph is cyclic, lacks the treatment, the outcome or an adjusted
        node, or has no path from treatment to outcome (see
        :func:`analysis.causal.graph.make_graph`).

    Notes
    -----
    Pearl's criterion: no node of :math:`Z` is a descendant of :math:`D`, and
    :math:`Z` d-separates :math:`D` from :math:`Y` once :math:`D`'s outgoing edges
    are removed.
    """
    graph = make_graph(graph, treatment=treatment, outcome=outcome)
    z = set(adjust)
    missing = z - set(graph)
    if missing:
        raise GraphError(f"Nodes {sorted(missing)} are not in the graph; add them or fix "
                         "the spelling.")
    hidden = sorted(n for n in z if graph.nodes[n].get("observed", True) is False)
    if hidden:
        return False, f"adjusts for unobserved {', '.join(hidden)}"
    desc = sorted(z & nx.descendants(graph, treatment))
    if desc:
        return False, f"adjusts for consequences of the treatment: {', '.join(desc)}"
    cut = graph.copy()
    cut.remove_edges_from(list(graph.out_edges(treatment)))
    if not nx.is_d_separator(cut, {treatment}, {outcome}, z):
        return False, "leaves a back-door path open"
    return True, "blocks every back-door path and adjusts for no consequence of the treatment"
