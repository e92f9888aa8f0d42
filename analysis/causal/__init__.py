"""Causal graphs, the DoWhy pipeline, instrumental variables, refutation and sensitivity.

Modules
-------
graph
    Validated causal graphs (:func:`make_graph`), node roles and estimands.
pipeline
    :class:`DoWhyPipeline`: identification and the backdoor estimators.
iv
    Two-stage least squares with the first-stage F.
refute
    DoWhy's refuters with explicit pass/fail rules and verdicts.
sensitivity
    Omitted-variable-bias sweeps, Cinelli-Hazlett robustness values, E-values.
"""

from analysis.causal.graph import make_graph, node_roles
from analysis.causal.iv import IVResult, two_stage_least_squares
from analysis.causal.pipeline import DoWhyPipeline, Identification

__all__ = ["DoWhyPipeline", "IVResult", "Identification", "make_graph", "node_roles",
           "two_stage_least_squares"]
