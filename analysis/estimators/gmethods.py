"""The other g-methods beside AIPW: a marginal structural model and g-computation.

Both are what the source report ran; here they sit beside AIPW with honest
intervals.  For a treatment on one day (a point treatment), the marginal structural
model :math:`E[Y^d] = \\beta_0 + \\beta_1 d` fitted by weighted least squares with
stabilised weights :math:`sw_i = P(D = d_i)/\\hat P(D = d_i \\mid X_i)` gives
:math:`\\hat\\beta_1`, the difference of the two arms' weighted (Hajek) means.
g-computation predicts both potential outcomes with an outcome model per arm and
averages the difference.
"""

from __future__ import annotations

import numpy as np

from analysis.estimators.bootstrap import ClusterBootstrap
from analysis.estimators.diagnostics import ipw_weights
from analysis.estimators.inference import cluster_codes, cluster_variance
from analysis.estimators.linear import normal_equations


def stabilized_weights(d: np.ndarray, m_hat: np.ndarray, clip: float = 0.01) -> np.ndarray:
    """:math:`sw_i = \\bar D/\\hat m_i` for treated and :math:`(1-\\bar D)/(1-\\hat m_i)` for
    untreated units: the inverse-propensity weights (propensities clipped to
    ``[clip, 1 - clip]``) times the marginal probability of the arm."""
    p = d.mean()
    return ipw_weights(d, m_hat, clip) * np.where(d == 1, p, 1 - p)


def msm(y: np.ndarray, d: np.ndarray, weights: np.ndarray,
        clusters: np.ndarray | None = None) -> dict[str, float]:
    """The MSM contrast :math:`\\hat\\beta_1` with a cluster-robust (linearised) SE.

    Notes
    -----
    :math:`\\hat\\mu_a = \\sum_i w_i 1[D_i=a] Y_i / \\sum_i w_i 1[D_i=a]`; the influence of
    row :math:`i` on :math:`\\hat\\beta_1 = \\hat\\mu_1 - \\hat\\mu_0` is
    :math:`\\frac{w_i D_i (Y_i - \\hat\\mu_1)}{\\bar{wD}} - \\frac{w_i (1-D_i)(Y_i -
    \\hat\\mu_0)}{\\overline{w(1-D)}}`, whose clustered variance of the mean is the SE
    (the weights are held fixed, as the report did).
    """
    w1, w0 = weights * d, weights * (1 - d)
    mu1, mu0 = np.sum(w1 * y) / np.sum(w1), np.sum(w0 * y) / np.sum(w0)
    infl = w1 * (y - mu1) / w1.mean() - w0 * (y - mu0) / w0.mean()
    codes, G = cluster_codes(clusters, len(y))
    return {"estimate": float(mu1 - mu0),
            "std_error": float(np.sqrt(cluster_variance(infl, codes, G)))}


def msm_bootstrap(y: np.ndarray, d: np.ndarray, weights: np.ndarray,
                  boot: ClusterBootstrap) -> np.ndarray:
    """Bootstrap replicates of the MSM contrast (weights held fixed), all at once."""
    w1, w0 = weights * d, weights * (1 - d)
    s = boot.sums(np.column_stack([w1 * y, w1, w0 * y, w0]))
    return s[:, 0] / s[:, 1] - s[:, 2] / s[:, 3]


class RidgeGComputation:
    """g-computation with one ridge regression per arm, and a bootstrap that refits it.

    Parameters
    ----------
    alpha : float
        Ridge penalty on the standardised covariates (the intercept is not penalised).

    Attributes
    ----------
    coef_ : dict
        Per arm, the coefficients on ``[1, standardised X]``.
    estimate_ : float
        :math:`\\frac1n\\sum_i \\hat g_1(X_i) - \\hat g_0(X_i)`.

    Notes
    -----
    Each replicate's ridge fit needs only the weighted sums of the per-cluster Gram
    matrices :math:`\\sum_{i \\in c, D_i = a} x_i x_i'` and cross products, so all
    replicates are refitted with one matrix product and one batched solve; the
    outcome model's estimation error is therefore part of the interval.
    """

    def __init__(self, *, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, X: np.ndarray, y: np.ndarray, d: np.ndarray) -> RidgeGComputation:
        """Fit both arms; returns self."""
        self.center_ = X.mean(axis=0)
        self.scale_ = np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
        Z = self._design(X)
        self.coef_ = {}
        for arm in (0, 1):
            keep = d == arm
            ZtZ, Zty = normal_equations(Z[keep], y[keep, None])
            self.coef_[arm] = np.linalg.solve(ZtZ + self._penalty(Z.shape[1]), Zty)[:, 0]
        self.estimate_ = float(np.mean(Z @ (self.coef_[1] - self.coef_[0])))
        return self

    def bootstrap(self, X: np.ndarray, y: np.ndarray, d: np.ndarray,
                  boot: ClusterBootstrap) -> np.ndarray:
        """Replicates of the estimate with both ridge fits redone in every replicate."""
        Z = self._design(X)
        G, k = boot.weights.shape[1], Z.shape[1]
        codes = boot.codes
        grams, crosses = [], []
        for arm in (0, 1):
            keep = (d == arm).astype(np.float64)
            outer = (Z[:, :, None] * Z[:, None, :]).reshape(len(Z), k * k) * keep[:, None]
            grams.append(boot.cluster_sums(outer))                        # (G, k*k)
            crosses.append(boot.cluster_sums(Z * (y * keep)[:, None]))    # (G, k)
        zsum = boot.cluster_sums(Z)
        counts = np.bincount(codes, minlength=G).astype(np.float64)
        return boot.map_blocks(_ridge_block, (grams, crosses, zsum, counts, self._penalty(k)))

    def _design(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([np.ones(len(X)), (X - self.center_) / self.scale_])

    def _penalty(self, k: int) -> np.ndarray:
        return np.diag(np.r_[0.0, np.full(k - 1, self.alpha)])


def _ridge_block(item: tuple, seed: int) -> np.ndarray:
    """One block of refitted g-computation replicates (see :meth:`RidgeGComputation.bootstrap`)."""
    W, (grams, crosses, zsum, counts, penalty) = item
    k = zsum.shape[1]
    beta = [np.linalg.solve((W @ gram).reshape(-1, k, k) + penalty,
                            (W @ cross)[:, :, None])[:, :, 0]
            for gram, cross in zip(grams, crosses, strict=True)]
    return np.einsum("bk,bk->b", W @ zsum, beta[1] - beta[0]) / (W @ counts)
