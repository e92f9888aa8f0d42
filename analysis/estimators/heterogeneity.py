"""For whom? Heterogeneity from doubly robust pseudo-outcomes.

Every tool here works on the AIPW score :math:`\\psi_i` (``AIPW.psi_b_``), a
doubly robust pseudo-outcome whose conditional mean is the CATE :math:`\\tau(x)`:

* :func:`segment_effects` - the mean of :math:`\\psi` within pre-defined segments,
  with cluster-robust and bootstrap intervals and a Holm correction for testing
  several segments;
* :func:`dr_learner` - a cross-fitted smoother of :math:`\\psi` on the covariates (the
  DR-learner of Kennedy, 2023), whose out-of-fold predictions are a CATE proxy;
* :func:`blp` - the best linear predictor of the CATE given that proxy (Chernozhukov,
  Demirer, Duflo & Fernández-Val): the coefficient on the centred proxy is 1 when
  the proxy is calibrated and 0 when it carries no heterogeneity;
* :func:`gates` - group average effects by quantile of the proxy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, clone

from analysis.estimators.bootstrap import ClusterBootstrap, percentile_interval
from analysis.estimators.crossfit import cross_fit
from analysis.estimators.inference import group_means
from analysis.estimators.linear import cluster_ols
from analysis.result import tidy_frame, tidy_row


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control)."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p)
    m = len(p)
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def segment_effects(psi: np.ndarray, groups: np.ndarray, labels: list[str], *,
                    clusters: np.ndarray | None, boot: ClusterBootstrap | None = None,
                    level: float = 0.95, n_tests: int | None = None) -> pd.DataFrame:
    """Effects within segments as means of the doubly robust score.

    Parameters
    ----------
    psi : array of shape (n,)
    groups : array of int codes ``0..H-1``
    labels : list of H str
    clusters : array, optional
        For the cluster-robust standard error.
    boot : ClusterBootstrap, optional
        When given, percentile intervals from its replicates, plain and at the
        Bonferroni level :math:`1 - \\alpha/m`.
    level : float
    n_tests : int, optional
        :math:`m`, the number of tests the correction is for (default: the H segments
        here; pass the total when several families form one family of tests).

    Returns
    -------
    DataFrame
        Tidy rows (analytic, cluster-robust) plus ``n_obs``, ``p_holm`` (Holm-adjusted
        p-values of :math:`H_0\\colon \\tau_h = 0`), ``ci_lower_adj``/``ci_upper_adj``
        (Bonferroni-widened analytic intervals), and with ``boot`` ``boot_se``,
        ``boot_lower``, ``boot_upper``, ``boot_lower_adj``, ``boot_upper_adj``.
    """
    means, cov, counts = group_means(psi, groups, clusters)
    H = len(means)
    se = np.sqrt(np.diag(cov))
    rows = [tidy_row(labels[h], means[h], se[h], level=level, n_obs=int(counts[h]))
            for h in range(H)]
    out = tidy_frame(rows)
    m = n_tests or H
    out["p_holm"] = holm(out["p_value"].to_numpy())
    z_adj = stats.norm.ppf(1 - (1 - level) / (2 * m))
    out["ci_lower_adj"] = means - z_adj * se
    out["ci_upper_adj"] = means + z_adj * se
    if boot is not None:
        reps = boot.mean(psi, groups)
        out["boot_se"] = np.nanstd(reps, axis=0, ddof=1)
        out["boot_lower"], out["boot_upper"] = percentile_interval(reps, level)
        out["boot_lower_adj"], out["boot_upper_adj"] = percentile_interval(
            reps, 1 - (1 - level) / m)
    return out


def dr_learner(X: np.ndarray, psi: np.ndarray, folds: np.ndarray,
               learner: BaseEstimator) -> tuple[np.ndarray, BaseEstimator]:
    """Cross-fitted smoother of the pseudo-outcome: out-of-fold CATE predictions.

    Returns
    -------
    tau_hat : ndarray of shape (n,)
        Each row predicted by a model that never saw its fold.
    final : estimator
        The learner refitted on all rows (for feature importances only; its in-sample
        predictions are never used for inference).
    """
    tau_hat = cross_fit(learner, X, psi, folds, name="CATE smoother")
    final = clone(learner).fit(X, psi)
    return tau_hat, final


def blp(psi: np.ndarray, tau_hat: np.ndarray, clusters: np.ndarray | None = None,
        level: float = 0.95) -> pd.DataFrame:
    """Best linear predictor of the CATE: :math:`\\psi = \\beta_1 + \\beta_2(\\hat\\tau -
    \\bar{\\hat\\tau}) + e`, with cluster-robust standard errors.

    Returns
    -------
    DataFrame
        Tidy rows ``beta1`` (the ATE) and ``beta2`` (heterogeneity loading; 1 when the
        proxy is calibrated, 0 when it carries no signal), and for ``beta2`` the
        one-sided p-value of :math:`H_0\\colon\\beta_2 \\le 0` in ``p_one_sided``.

    Notes
    -----
    The slope equals that of an OLS of :math:`\\psi` on :math:`(1, \\hat\\tau)`, which is
    what EconML's ``DRTester.evaluate_blp`` reports; centring only makes the intercept
    the ATE.
    """
    X = np.column_stack([np.ones_like(tau_hat), tau_hat - tau_hat.mean()])
    coef, se = cluster_ols(psi, X, clusters)
    out = tidy_frame([tidy_row("beta1", coef[0], se[0], level=level,
                               label="ATE (β1)"),
                      tidy_row("beta2", coef[1], se[1], level=level,
                               label="Heterogeneity loading (β2)")])
    out["p_one_sided"] = [np.nan, float(stats.norm.sf(coef[1] / se[1]))]
    return out


def gates(psi: np.ndarray, tau_hat: np.ndarray, clusters: np.ndarray | None = None, *,
          n_groups: int = 5, level: float = 0.95) -> pd.DataFrame:
    """Group average treatment effects by quantile group of the CATE proxy.

    Returns
    -------
    DataFrame
        One tidy row per group (``G1`` lowest predicted effect ... ``Gk`` highest) with
        ``n_obs`` and ``mean_prediction``, and a final row ``top − bottom``.
    """
    edges = np.quantile(tau_hat, np.linspace(0, 1, n_groups + 1))
    g = np.clip(np.searchsorted(edges, tau_hat, side="right") - 1, 0, n_groups - 1)
    means, cov, counts = group_means(psi, g, clusters)
    rows = [tidy_row(f"G{h + 1}", means[h], float(np.sqrt(cov[h, h])), level=level,
                     n_obs=int(counts[h]), mean_prediction=float(tau_hat[g == h].mean()))
            for h in range(len(means))]
    k = len(means) - 1
    rows.append(tidy_row("top − bottom", means[k] - means[0],
                         float(np.sqrt(cov[k, k] + cov[0, 0] - 2 * cov[0, k])), level=level,
                         n_obs=int(counts[k] + counts[0]), mean_prediction=np.nan))
    return tidy_frame(rows)
