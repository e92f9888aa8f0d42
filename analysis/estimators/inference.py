"""Inference for linear Neyman-orthogonal scores: point estimate, iid and cluster-robust SEs.

Every estimator in :mod:`analysis.estimators.dml` reduces to a score linear in
the parameter, :math:`\\psi(W;\\theta,\\eta) = \\psi_a(W;\\eta)\\,\\theta + \\psi_b(W;\\eta)`,
so the estimate, its variance and the aggregation over repeated cross-fitting
live here once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.errors import EstimationError


@dataclass(frozen=True)
class ScoreSolution:
    """The solution of one linear score.

    Attributes
    ----------
    theta : float
        :math:`\\hat\\theta`.
    se : float
        Cluster-robust standard error (iid when no clusters were given).
    se_iid : float
        Standard error that treats every observation as independent.
    n_clusters : int
        Number of clusters used (``n`` when none were given).
    """

    theta: float
    se: float
    se_iid: float
    n_clusters: int


def split_ways(clusters: np.ndarray | None,
               second: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """One-way labels and an optional second way, from ``clusters`` of shape (n,) or (n, 2).

    Multiway cross-fitting passes one column of labels per way (user and movie); a
    second way given explicitly as ``second`` is used as is.
    """
    if clusters is None:
        return None, second
    c = np.asarray(clusters)
    if c.ndim == 1:
        return c, second
    if c.ndim == 2 and c.shape[1] in (1, 2) and second is None:
        return c[:, 0], (c[:, 1] if c.shape[1] == 2 else None)
    raise EstimationError(f"clusters has shape {c.shape}; pass one label per row (n,), or "
                          "one per row and way of clustering (n, 2), and no second grouping "
                          "besides a two-column one.")


def cluster_codes(clusters: np.ndarray | None, n: int) -> tuple[np.ndarray, int]:
    """Integer codes ``0..G-1`` of cluster labels (each observation its own cluster if None)."""
    if clusters is None:
        return np.arange(n), n
    codes, uniques = pd.factorize(np.asarray(clusters), use_na_sentinel=False)
    return codes, len(uniques)


def cluster_variance(psi: np.ndarray, codes: np.ndarray, n_clusters: int) -> float:
    """:math:`\\frac{G}{G-1}\\frac1{n^2}\\sum_g\\big(\\sum_{i\\in g}\\psi_i\\big)^2`, the
    cluster-robust variance of a sample mean of ``psi`` (which has mean zero)."""
    n = len(psi)
    sums = np.bincount(codes, weights=psi, minlength=n_clusters)
    adj = n_clusters / (n_clusters - 1) if n_clusters > 1 else 1.0
    return float(adj * np.sum(sums**2) / n**2)


def solve_score(psi_a: np.ndarray, psi_b: np.ndarray,
                clusters: np.ndarray | None = None) -> ScoreSolution:
    """Solve :math:`\\frac1n\\sum_i \\psi_a\\theta + \\psi_b = 0` and estimate its variance.

    Parameters
    ----------
    psi_a, psi_b : arrays of shape (n,)
        The two parts of the linear score.
    clusters : array of shape (n,) or (n, 2), optional
        Cluster labels for the cluster-robust variance; two columns (e.g. user and
        movie) give the two-way variance of :func:`twoway_variance`.

    Returns
    -------
    ScoreSolution
        ``n_clusters`` is the smaller number of clusters of the two ways when two-way.

    Notes
    -----
    :math:`\\hat\\theta = -\\bar\\psi_b/\\bar\\psi_a`, :math:`J = \\bar\\psi_a` and
    :math:`\\hat\\psi_i = \\psi_{a,i}\\hat\\theta + \\psi_{b,i}`.  The iid variance is
    :math:`J^{-2}\\,\\overline{\\hat\\psi^2}/n` (as in DoubleML); the cluster-robust one is
    :math:`J^{-2}\\,\\frac{G}{G-1}\\,n^{-2}\\sum_g(\\sum_{i\\in g}\\hat\\psi_i)^2`
    (Chiang et al., 2022, one-way clustering).
    """
    n = len(psi_a)
    J = float(np.mean(psi_a))
    theta = -float(np.mean(psi_b)) / J
    psi = psi_a * theta + psi_b
    se_iid = float(np.sqrt(np.mean(psi**2) / J**2 / n))
    first, second = split_ways(clusters)
    codes, G = cluster_codes(first, n)
    if second is not None:
        G = min(G, cluster_codes(second, n)[1])
        se = float(np.sqrt(twoway_variance(psi, first, second) / J**2))
    else:
        se = float(np.sqrt(cluster_variance(psi, codes, G) / J**2)) if first is not None \
            else se_iid
    return ScoreSolution(theta=theta, se=se, se_iid=se_iid, n_clusters=G)


def twoway_variance(psi: np.ndarray, first: np.ndarray, second: np.ndarray) -> float:
    """Two-way cluster-robust variance of a mean of ``psi`` (Cameron, Gelbach & Miller, 2011).

    Notes
    -----
    :math:`V = V_1 + V_2 - V_{12}`, each a one-way :func:`cluster_variance`, with
    :math:`V_{12}` clustered on the intersection of the two groupings.  Clamped at
    the larger of :math:`V_1` and :math:`V_2` in the rare case the difference is smaller.
    """
    n = len(psi)
    c1, g1 = cluster_codes(first, n)
    c2, g2 = cluster_codes(second, n)
    c12, g12 = cluster_codes(c1.astype(np.int64) * g2 + c2, n)
    v1, v2 = cluster_variance(psi, c1, g1), cluster_variance(psi, c2, g2)
    return max(v1 + v2 - cluster_variance(psi, c12, g12), v1, v2)


def score_se(psi_a: np.ndarray, psi_b: np.ndarray, theta: float,
             clusters: np.ndarray | None = None, second: np.ndarray | None = None) -> float:
    """Standard error of a solved linear score under iid, one-way or two-way clustering.

    Notes
    -----
    :math:`\\widehat{se} = \\sqrt{V}/|J|` with :math:`J=\\bar\\psi_a` and :math:`V` the
    variance of the mean of :math:`\\hat\\psi = \\psi_a\\hat\\theta + \\psi_b`: iid
    (``clusters`` None), :func:`cluster_variance`, or :func:`twoway_variance`
    when ``second`` is given.
    """
    psi = psi_a * theta + psi_b
    n = len(psi)
    clusters, second = split_ways(clusters, second)
    if second is not None:
        var = twoway_variance(psi, clusters if clusters is not None else np.arange(n), second)
    elif clusters is None:
        var = float(np.mean(psi**2) / n)
    else:
        codes, G = cluster_codes(clusters, n)
        var = cluster_variance(psi, codes, G)
    return float(np.sqrt(var) / abs(np.mean(psi_a)))


def median_aggregate(thetas: np.ndarray, ses: np.ndarray) -> tuple[float, float]:
    """Aggregate repeated cross-fitting by the median (Chernozhukov et al., 2018, Def. 3.3).

    Notes
    -----
    :math:`\\tilde\\theta = \\operatorname{med}_r\\hat\\theta_r` and
    :math:`\\tilde\\sigma^2 = \\operatorname{med}_r\\big(\\hat\\sigma_r^2 +
    (\\hat\\theta_r - \\tilde\\theta)^2\\big)`, as in DoubleML.
    """
    thetas, ses = np.asarray(thetas, float), np.asarray(ses, float)
    theta = float(np.median(thetas))
    return theta, float(np.sqrt(np.median(ses**2 + (thetas - theta) ** 2)))


def group_means(phi: np.ndarray, groups: np.ndarray, clusters: np.ndarray | None = None,
                second: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means of a pseudo-outcome within groups, with their cluster-robust covariance.

    Parameters
    ----------
    phi : array of shape (n,)
        Pseudo-outcome (for AIPW, the score's :math:`\\psi_b`).
    groups : array of shape (n,)
        Integer group codes ``0..H-1``.
    clusters : array of shape (n,), optional
    second : array of shape (n,), optional
        A second grouping for two-way clustering.

    Returns
    -------
    means : ndarray (H,)
    cov : ndarray (H, H)
        Cluster-robust covariance of the means; clusters spanning several groups
        make the means correlated, which the covariance keeps.
    counts : ndarray (H,)

    Notes
    -----
    With :math:`n_h` rows in group :math:`h`, the influence of row :math:`i` on mean
    :math:`h` is :math:`\\mathbb 1[g_i=h](\\phi_i-\\hat\\mu_h)/n_h`; the covariance is
    :math:`\\frac{G}{G-1}\\sum_c s_c s_c^\\top` over cluster sums :math:`s_c`
    (two-way: :math:`C_1 + C_2 - C_{12}`, as in :func:`twoway_variance`).
    """
    clusters, second = split_ways(clusters, second)
    H = int(groups.max()) + 1
    n = len(phi)
    counts = np.bincount(groups, minlength=H).astype(float)
    means = np.bincount(groups, weights=phi, minlength=H) / counts
    infl = (phi - means[groups]) / counts[groups]

    def cov(labels: np.ndarray | None) -> np.ndarray:
        codes, G = cluster_codes(labels, n)
        sums = np.bincount(codes * H + groups, weights=infl, minlength=G * H).reshape(G, H)
        return (G / (G - 1) if G > 1 else 1.0) * sums.T @ sums

    if second is None:
        return means, cov(clusters), counts
    first = clusters if clusters is not None else np.arange(n)
    c1, _ = cluster_codes(first, n)
    c2, g2 = cluster_codes(second, n)
    both = cov(first) + cov(second) - cov(c1.astype(np.int64) * g2 + c2)
    return means, both, counts
