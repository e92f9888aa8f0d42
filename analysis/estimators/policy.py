"""Targeting: how well a CATE ranks units (RATE, TOC) and what a targeting policy is worth.

Both are estimated with doubly robust scores on held-out folds: for unit :math:`i`,
:math:`\\Gamma_{1i} = \\hat g_1 + D(Y - \\hat g_1)/\\hat m` and
:math:`\\Gamma_{0i} = \\hat g_0 + (1-D)(Y - \\hat g_0)/(1 - \\hat m)` with cross-fitted
nuisances, and :math:`\\psi_i = \\Gamma_{1i} - \\Gamma_{0i}` (the AIPW score).

* The Targeting Operator Characteristic (Yadlowsky et al., 2021, as in ``grf``):
  :math:`\\mathrm{TOC}(q) = E[\\psi \\mid \\hat\\tau \\text{ in the top } q] - E[\\psi]`, the
  extra effect among the fraction :math:`q` a ranking would treat first.  Its integral
  is the AUTOC, :math:`\\int_0^1 \\mathrm{TOC}(q)\\,dq`, and :math:`\\int_0^1 q\\,
  \\mathrm{TOC}(q)\\,dq` is the Qini coefficient; both are zero for a ranking that carries
  no information.  Intervals come from a unit bootstrap that keeps the ranking fixed.
* A policy :math:`\\pi(x) \\in \\{0, 1\\}` gains :math:`V(\\pi) = E[\\pi(X)(\\psi - c)]` per unit
  over treating nobody, with a treatment cost :math:`c`; its estimate is the sample mean
  of :math:`\\pi(x_i)(\\psi_i - c)` with the usual standard error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.estimators.bootstrap import cluster_bootstrap, percentile_interval

GRID = np.linspace(0.02, 1.0, 50)
"""Fractions treated at which the TOC is evaluated."""


def dr_potential_outcomes(y: np.ndarray, d: np.ndarray, m_hat: np.ndarray, g0_hat: np.ndarray,
                          g1_hat: np.ndarray, clip: float = 0.01) -> tuple[np.ndarray, ...]:
    """:math:`(\\Gamma_0, \\Gamma_1)`, the doubly robust scores of each potential outcome."""
    m = np.clip(m_hat, clip, 1 - clip)
    return (g0_hat + (1 - d) * (y - g0_hat) / (1 - m), g1_hat + d * (y - g1_hat) / m)


def _toc_sums(order: np.ndarray, psi: np.ndarray, weights: np.ndarray,
              grid: np.ndarray) -> np.ndarray:
    """TOC at ``grid`` for each row of ``weights`` (B, n), units taken in ``order``."""
    w = weights[:, order]
    cw = np.cumsum(w, axis=1)
    cp = np.cumsum(w * psi[order], axis=1)
    total_w, total_p = cw[:, -1], cp[:, -1]
    out = np.empty((len(w), len(grid)))
    rows = np.arange(len(w))
    for j, q in enumerate(grid):
        k = np.minimum((cw < q * total_w[:, None] - 1e-9).sum(axis=1), cw.shape[1] - 1)
        out[:, j] = cp[rows, k] / cw[rows, k] - total_p / total_w
    return out


def rate(psi: np.ndarray, tau_hat: np.ndarray, *, n_boot: int = 200, seed: int = 0,
         grid: np.ndarray = GRID) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The TOC curve, the AUTOC and the Qini coefficient of a ranking, with intervals.

    Parameters
    ----------
    psi : array (n,)
        Doubly robust scores (held out from the model that produced ``tau_hat``).
    tau_hat : array (n,)
        The CATE predictions that rank the units (highest first).
    n_boot : int
        Bootstrap replicates (units resampled, the ranking kept).
    seed : int
    grid : array
        Fractions :math:`q` for the curve.

    Returns
    -------
    (curve, summary) : DataFrames
        ``curve``: ``q``, ``toc``, ``lower``, ``upper``; ``summary``: tidy rows
        ``AUTOC`` and ``Qini`` with bootstrap standard errors and percentile intervals.
    """
    order = np.lexsort((np.arange(len(psi)), -tau_hat))
    toc = _toc_sums(order, psi, np.ones((1, len(psi))), grid)[0]
    boot = cluster_bootstrap(np.arange(len(psi)), n_boot, seed)
    reps = _toc_sums(order, psi, boot.weights, grid)
    lo, hi = percentile_interval(reps)
    curve = pd.DataFrame({"q": grid, "toc": toc, "lower": lo, "upper": hi})
    rows = []
    for name, weight in (("AUTOC", np.ones_like(grid)), ("Qini", grid)):
        est = float(np.mean(weight * toc))
        rep = np.mean(weight * reps, axis=1)
        se = float(np.std(rep, ddof=1))
        rlo, rhi = percentile_interval(rep)
        rows.append({"term": name, "estimate": est, "std_error": se, "ci_lower": float(rlo),
                     "ci_upper": float(rhi),
                     "p_value": float(2 * min(np.mean(rep <= 0), np.mean(rep >= 0)))})
    return curve, pd.DataFrame(rows)


def policy_value(policy: np.ndarray, psi: np.ndarray, cost: float = 0.0,
                 tau: np.ndarray | None = None) -> dict[str, float]:
    """A policy's gain per unit over treating nobody, its SE and (on simulated data) truth.

    Returns
    -------
    dict
        ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``, ``share_treated`` and,
        with ``tau``, ``true_value`` :math:`= \\frac1n\\sum_i \\pi(x_i)(\\tau_i - c)`.
    """
    pi = np.asarray(policy, dtype=np.float64)
    contrib = pi * (psi - cost)
    est = float(contrib.mean())
    se = float(contrib.std(ddof=1) / np.sqrt(len(contrib)))
    out = {"estimate": est, "std_error": se, "ci_lower": est - 1.959964 * se,
           "ci_upper": est + 1.959964 * se, "share_treated": float(pi.mean())}
    if tau is not None:
        out["true_value"] = float(np.mean(pi * (tau - cost)))
    return out


def tree_nodes(tree, feature_names: list[str], X: np.ndarray) -> pd.DataFrame:
    """The nodes of a fitted EconML ``PolicyTree`` as a table for drawing.

    Parameters
    ----------
    tree : econml.policy.PolicyTree
    feature_names : list of str
    X : array
        The units the policy is for; ``share`` is the share of them in each leaf.

    Returns
    -------
    DataFrame
        ``node``, ``depth``, ``feature`` (empty for a leaf), ``threshold``, ``left``,
        ``right``, ``share``, ``treat`` (the leaf's action: 1 to treat) and ``gain`` (the
        leaf's estimated gain of treating over not, per unit).
    """
    t = tree.tree_
    depth = np.zeros(t.node_count, dtype=int)
    for i in range(t.node_count):
        for child in (t.children_left[i], t.children_right[i]):
            if child >= 0:
                depth[child] = depth[i] + 1
    values = t.value[:, :, 0]
    leaf = t.children_left < 0
    return pd.DataFrame({
        "node": np.arange(t.node_count), "depth": depth,
        "feature": [feature_names[f] if not lf else "" for f, lf in zip(t.feature, leaf,
                                                                        strict=True)],
        "threshold": np.where(leaf, np.nan, t.threshold),
        "left": t.children_left, "right": t.children_right,
        "share": np.bincount(tree.apply(X), minlength=t.node_count) / len(X),
        "treat": np.where(leaf, (values[:, 1] > values[:, 0]).astype(int), -1),
        "gain": values[:, 1] - values[:, 0]})
