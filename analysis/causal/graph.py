"""Causal graphs: validation, the role of each node, and what they identify.

A graph is a :class:`networkx.DiGraph` whose nodes are column names.  It is
checked before DoWhy sees it: it must be acyclic and contain the treatment and
the outcome, otherwise :class:`~analysis.errors.GraphError` says what to fix.
Graphviz is never needed; the chapter draws graphs with matplotlib from the
node and edge tables returned here.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx
import pandas as pd

from analysis.errors import DataError, GraphError

ROLE_ORDER = ("instrument", "confounder", "treatment", "mediator", "outcome cause", "outcome",
              "other")


def make_graph(edges: nx.DiGraph | Iterable[tuple[str, str]], *, treatment: str,
               outcome: str) -> nx.DiGraph:
    """Validate a causal graph and return a copy of it.

    Parameters
    ----------
    edges : DiGraph or iterable of (cause, effect) pairs
    treatment, outcome : str
        Node names; both must be in the graph.

    Returns
    -------
    networkx.DiGraph

    Raises
    ------
    GraphError
        If the graph has a cycle, lacks the treatment or the outcome, or has no
        directed path from the treatment to the outcome.
    """
    graph = nx.DiGraph(edges)
    missing = [f"{kind} '{name}'" for kind, name in (("treatment", treatment),
                                                     ("outcome", outcome))
               if name not in graph]
    if missing:
        raise GraphError(f"The graph does not contain the {' or the '.join(missing)}. "
                         f"Its nodes are {sorted(graph.nodes)}; add an edge such as "
                         f"('{treatment}', '{outcome}').")
    if not nx.is_directed_acyclic_graph(graph):
        cycle = " -> ".join(u for u, _ in nx.find_cycle(graph))
        raise GraphError(f"The graph has a cycle ({cycle} -> ...); a causal graph must be "
                         "acyclic. Remove one edge of the cycle.")
    if not nx.has_path(graph, treatment, outcome):
        raise GraphError(f"There is no directed path from '{treatment}' to '{outcome}', so "
                         "the graph asserts the effect is zero. Add the edge "
                         f"('{treatment}', '{outcome}').")
    return graph


def check_columns(data: pd.DataFrame, columns: Iterable[str], *, what: str = "data") -> None:
    """Raise :class:`DataError` naming every column of ``columns`` absent from ``data``."""
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise DataError(f"The {what} lacks column(s) {missing} that the graph or the estimator "
                        f"needs. Available columns: {list(data.columns)}. Rename the columns "
                        "or change the graph's node names to match.")


def node_roles(graph: nx.DiGraph, treatment: str, outcome: str) -> dict[str, str]:
    """Each node's role relative to ``treatment`` and ``outcome``.

    Notes
    -----
    With :math:`G_{\\bar T}` the graph without the treatment's outgoing edges:
    a *confounder* is an ancestor of the treatment that also reaches the outcome in
    :math:`G_{\\bar T}`; an *instrument* is an ancestor of the treatment that does
    not; a *mediator* lies on a path from treatment to outcome; an *outcome
    cause* reaches only the outcome.  These are descriptive labels; identification
    itself is left to DoWhy.
    """
    cut = graph.copy()
    cut.remove_edges_from(list(graph.out_edges(treatment)))
    anc_t = nx.ancestors(graph, treatment)
    anc_y_cut = nx.ancestors(cut, outcome)
    desc_t = nx.descendants(graph, treatment)
    anc_y = nx.ancestors(graph, outcome)
    roles = {}
    for node in graph.nodes:
        if node == treatment:
            roles[node] = "treatment"
        elif node == outcome:
            roles[node] = "outcome"
        elif node in anc_t:
            roles[node] = "confounder" if node in anc_y_cut else "instrument"
        elif node in desc_t and node in anc_y:
            roles[node] = "mediator"
        elif node in anc_y:
            roles[node] = "outcome cause"
        else:
            roles[node] = "other"
    return roles


def graph_tables(graph: nx.DiGraph, treatment: str,
                 outcome: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The graph as two tidy tables: nodes (``node``, ``role``) and edges (``source``, ``target``).

    These are what a study stores and what the report layer draws.
    """
    roles = node_roles(graph, treatment, outcome)
    nodes = pd.DataFrame({"node": list(roles), "role": list(roles.values())})
    nodes["order"] = nodes["role"].map({r: i for i, r in enumerate(ROLE_ORDER)})
    nodes = nodes.sort_values(["order", "node"]).drop(columns="order").reset_index(drop=True)
    edges = pd.DataFrame(list(graph.edges), columns=["source", "target"])
    return nodes, edges


def _tex(name: str) -> str:
    return "\\text{" + name.replace("_", "\\_") + "}"


def backdoor_latex(treatment: str, outcome: str, adjustment: list[str]) -> str:
    """The backdoor estimand as LaTeX: :math:`\\frac{d}{dT} E[Y \\mid W]` averaged over W."""
    given = ", ".join(_tex(a) for a in adjustment)
    cond = f" \\mid {given}" if adjustment else ""
    return (f"\\frac{{d}}{{d\\,{_tex(treatment)}}}\\, "
            f"\\mathbb{{E}}\\left[{_tex(outcome)}{cond}\\right]")


def iv_latex(treatment: str, outcome: str, instrument: str) -> str:
    """The IV (Wald) estimand as LaTeX: the instrument's effect on Y over its effect on T."""
    return (f"\\frac{{d\\,\\mathbb{{E}}[{_tex(outcome)}] / d\\,{_tex(instrument)}}}"
            f"{{d\\,\\mathbb{{E}}[{_tex(treatment)}] / d\\,{_tex(instrument)}}}")
