"""Estimators of effects under interference, on any data frame of slates and items.

Design 1 (one row per slate, the slate's per-slate outcome ``o``):

* :func:`difference_in_means` - promoted minus unpromoted mean of ``o``; the standard
  error is clustered by slate when ``o`` is an item-level click (rows are items) and
  by the cluster given otherwise.
* :func:`lin_adjustment` - Lin's (2013) regression adjustment: ``o`` on the promotion,
  the centred covariates and their interactions, with cluster-robust errors.
* AIPW with cross-fitted LightGBM nuisances comes from :class:`analysis.estimators.AIPW`.

Design 2 (two-stage): :func:`hudgens_halloran`, the estimators of the direct, indirect,
total and overall effects of Hudgens and Halloran (2008) with their variance estimators
under stratified interference.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.errors import EstimationError, VarianceWarning
from analysis.estimators.linear import cluster_ols
from analysis.result import tidy_frame, tidy_row

MIN_SLATES = 20
"""Fewer slates per arm than this make a clustered standard error meaningless."""


def check_design(promoted: np.ndarray, clusters: np.ndarray | None = None) -> None:
    """Both arms present, with enough slates (or clusters) for clustered errors."""
    z = np.asarray(promoted)
    if z.min() == z.max():
        raise EstimationError(f"Every slate is {'promoted' if z.max() else 'unpromoted'}: a "
                              "design with one arm only identifies no effect. Randomise "
                              "promotions so both arms occur.")
    for arm in (0, 1):
        n = int((z == arm).sum()) if clusters is None else \
            len(np.unique(np.asarray(clusters)[z == arm]))
        if n < MIN_SLATES:
            raise EstimationError(f"Only {n} {'promoted' if arm else 'unpromoted'} slates: "
                                  f"clustered standard errors need at least {MIN_SLATES} per "
                                  "arm. Run the experiment on more slates.")


def difference_in_means(o: np.ndarray, promoted: np.ndarray,
                        clusters: np.ndarray | None = None) -> dict[str, float]:
    """Difference in means with a cluster-robust standard error.

    Parameters
    ----------
    o : array (n,)
        Outcome per row (a slate's total, or one item's click).
    promoted : array (n,) of 0/1
        The row's slate's promotion.
    clusters : array (n,), optional
        Cluster of each row (the slate for item rows); rows are independent when omitted.

    Returns
    -------
    dict
        ``estimate`` and ``std_error`` (CR1, from the regression of ``o`` on a constant
        and the promotion).
    """
    check_design(promoted, clusters)
    X = np.column_stack([np.ones(len(o)), promoted])
    coef, se = cluster_ols(np.asarray(o, dtype=np.float64), X, clusters)
    return {"estimate": float(coef[1]), "std_error": float(se[1])}


def lin_adjustment(o: np.ndarray, promoted: np.ndarray, covariates: np.ndarray,
                   clusters: np.ndarray | None = None) -> dict[str, float]:
    """Lin's (2013) interacted regression adjustment of the difference in means.

    Notes
    -----
    :math:`o = \\alpha + \\tau Z + (X - \\bar X)'\\beta + Z (X - \\bar X)'\\gamma + e`; the
    coefficient :math:`\\hat\\tau` is the adjusted estimate, with a cluster-robust error.
    """
    check_design(promoted, clusters)
    Xc = covariates - covariates.mean(axis=0)
    z = np.asarray(promoted, dtype=np.float64)
    design = np.column_stack([np.ones(len(o)), z, Xc, z[:, None] * Xc])
    coef, se = cluster_ols(np.asarray(o, dtype=np.float64), design, clusters)
    return {"estimate": float(coef[1]), "std_error": float(se[1])}


@dataclass(frozen=True)
class HHResult:
    """Hudgens-Halloran estimates: a tidy table and the group-level pieces."""

    table: pd.DataFrame
    group_means: pd.DataFrame


def hudgens_halloran(y: np.ndarray, z: np.ndarray, group: np.ndarray, saturation: np.ndarray,
                     levels: tuple[float, float]) -> HHResult:
    """Direct, indirect, total and overall effects of a two-stage randomised design.

    Parameters
    ----------
    y : array (n,)
        Outcome of each unit (a slate's total clicks).
    z : array (n,) of 0/1
        Each unit's treatment (promotion).
    group : array (n,)
        Each unit's group (the user).
    saturation : array (n,)
        The saturation assigned to the unit's group.
    levels : (psi_low, psi_high)

    Returns
    -------
    HHResult
        Tidy rows ``DE(psi_low)``, ``DE(psi_high)``, ``IE``, ``TE`` and ``OE``, signed as
        effects of promotion and of the higher saturation.

    Notes
    -----
    Following Hudgens and Halloran (2008), for group :math:`i` with :math:`n_i` units,
    :math:`\\hat Y_i(z;\\psi)` is the mean outcome of its units with treatment :math:`z`,
    :math:`\\hat Y_i(\\psi)` the mean of all its units, and :math:`\\hat Y(z;\\psi)` the mean of
    :math:`\\hat Y_i(z;\\psi)` over the :math:`C_\\psi` groups assigned :math:`\\psi` (of
    :math:`C`).  Here
    :math:`\\widehat{DE}(\\psi) = \\hat Y(1;\\psi) - \\hat Y(0;\\psi)`,
    :math:`\\widehat{IE} = \\hat Y(0;\\psi_h) - \\hat Y(0;\\psi_l)`,
    :math:`\\widehat{TE} = \\hat Y(1;\\psi_h) - \\hat Y(0;\\psi_l)` and
    :math:`\\widehat{OE} = \\hat Y(\\psi_h) - \\hat Y(\\psi_l)` (the paper signs them the other
    way round, as reductions of risk), so :math:`TE = DE(\\psi_h) + IE`.

    Variances, under stratified interference:

    .. math::

        \\widehat{V}[\\widehat{DE}(\\psi)] = \\Big(1 - \\frac{C_\\psi}{C}\\Big)
        \\frac{\\hat\\sigma^2_{DE}(\\psi)}{C_\\psi} + \\frac{1}{C\\,C_\\psi}\\sum_{i: S_i=\\psi}
        \\Big(\\frac{\\hat\\sigma^2_i(1;\\psi)}{m_i} + \\frac{\\hat\\sigma^2_i(0;\\psi)}
        {n_i - m_i}\\Big),

    with :math:`\\hat\\sigma^2_{DE}(\\psi)` the variance of the group estimates
    :math:`\\widehat{DE}_i(\\psi)` across the groups assigned :math:`\\psi` and
    :math:`\\hat\\sigma^2_i(z;\\psi)` the variance of the outcomes of group :math:`i`'s units
    with treatment :math:`z`; and, for the between-saturation contrasts,

    .. math::

        \\widehat{V}[\\widehat{IE}] = \\frac{\\hat\\sigma^2_g(0;\\psi_h)}{C_h}
        + \\frac{\\hat\\sigma^2_g(0;\\psi_l)}{C_l},

    with :math:`\\hat\\sigma^2_g(z;\\psi)` the variance of :math:`\\hat Y_i(z;\\psi)` across the
    groups assigned :math:`\\psi` (likewise for :math:`TE` with :math:`(1;\\psi_h)` and
    :math:`(0;\\psi_l)`, and :math:`OE` with the groups' means :math:`\\hat Y_i(\\psi)`).  These
    drop the unidentified covariance terms, so they are unbiased when effects are additive
    and conservative otherwise.

    A group with a single treated (or untreated) unit has a defined mean but no
    :math:`\\hat\\sigma^2_i(z;\\psi)`; that term is dropped from the sum, as in the R package
    ``interference`` (``estimates_hierarchical``), and a
    :class:`~analysis.errors.VarianceWarning` says how many groups lost a term.  A group
    with no treated or no untreated unit is refused: its :math:`\\widehat{DE}_i` is undefined.
    """
    frame = pd.DataFrame({"y": np.asarray(y, dtype=np.float64), "z": np.asarray(z),
                          "g": np.asarray(group), "psi": np.asarray(saturation)})
    per = frame.groupby(["g", "psi", "z"])["y"].agg(["mean", "var", "size"]).unstack("z")
    if len(per.columns) < 6 or per["mean"].isna().any().any():
        raise EstimationError("Some group has no treated or no untreated unit: its direct "
                              "effect is undefined. Use saturations strictly between 0 and 1 "
                              "and groups large enough that each saturation promotes at least "
                              "one unit and leaves at least one unpromoted.")
    per.columns = [f"{stat}{arm}" for stat, arm in per.columns]
    per = per.reset_index()
    per["all"] = frame.groupby(["g", "psi"])["y"].mean().to_numpy()
    per["de"] = per["mean1"] - per["mean0"]
    # a single unit in an arm has no within-group variance: its term is dropped (as R's
    # interference::estimates_hierarchical does with na.rm = TRUE)
    terms = np.column_stack([per["var1"] / per["size1"], per["var0"] / per["size0"]])
    per["within"] = np.nansum(terms, axis=1)
    missing = int(np.isnan(terms).any(axis=1).sum())
    if missing:
        warnings.warn(f"{missing} of {len(per)} groups have a single treated or a single "
                      "untreated unit, so no within-group variance for that arm: those terms "
                      "are dropped from the variance of the direct effects (as R's "
                      "interference package does), which may understate it. Use groups "
                      "with at least two units in each arm for the full variance estimator.",
                      VarianceWarning, stacklevel=2)
    C = len(per)
    lo, hi = levels
    counts = per.groupby("psi").size()
    if counts.reindex(list(levels)).fillna(0).min() < 2:
        raise EstimationError(f"A saturation has fewer than two groups ({dict(counts)}): the "
                              "between-group variance needs at least two groups per arm.")
    by = {psi: per[per["psi"] == psi] for psi in levels}
    rows = []
    for psi in levels:
        g = by[psi]
        c = len(g)
        var = (1 - c / C) * g["de"].var(ddof=1) / c + g["within"].sum() / (C * c)
        rows.append(tidy_row(f"DE({psi:g})", g["de"].mean(), float(np.sqrt(var)),
                             estimand="direct", saturation=psi, groups=c))

    def contrast(name: str, a: pd.Series, b: pd.Series) -> dict:
        var = a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)
        return tidy_row(name, a.mean() - b.mean(), float(np.sqrt(var)), estimand=name.lower(),
                        saturation=np.nan, groups=len(a) + len(b))

    rows.append(contrast("IE", by[hi]["mean0"], by[lo]["mean0"]))
    rows.append(contrast("TE", by[hi]["mean1"], by[lo]["mean0"]))
    rows.append(contrast("OE", by[hi]["all"], by[lo]["all"]))
    return HHResult(table=tidy_frame(rows), group_means=per)


def item_level_naive(clicks: np.ndarray, promoted: np.ndarray,
                     focal: np.ndarray) -> dict[str, float]:
    """What a team that ignores interference reports: the focal item's click rate when
    promoted minus when not, with an independent (unclustered) standard error, read as
    the promotion's value per slate."""
    S = len(promoted)
    y = clicks[np.arange(S), focal].astype(np.float64)
    return difference_in_means(y, promoted)
