"""Least squares, once: OLS and 2SLS with robust standard errors, and OLS as a linear score.

Every linear number in the book comes from here: the naive and regression
estimates of the DoWhy chapter, two-stage least squares, the sensitivity
regressions, and the naive/OLS rows of the DML chapter (written as a linear
score so they share DML's cluster-robust inference).  The normal equations are
accumulated in row chunks (:func:`normal_equations`), so memory stays one
chunk even on tens of millions of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

CHUNK = 250_000
"""Rows per chunk when accumulating the normal equations."""


@dataclass(frozen=True)
class LinearFit:
    """An OLS (or 2SLS) fit.

    Attributes
    ----------
    names : list of str
        Column names of the design, ``"const"`` first.
    coef, se_hc1, se_classical : ndarray
        Coefficients and their HC1-robust and classical standard errors.
    dof : int
        Residual degrees of freedom :math:`n - k`.
    resid : ndarray
    """

    names: list[str]
    coef: np.ndarray
    se_hc1: np.ndarray
    se_classical: np.ndarray
    dof: int
    resid: np.ndarray

    def index(self, name: str) -> int:
        """Position of a regressor."""
        return self.names.index(name)

    def t_classical(self, name: str) -> float:
        """Classical t statistic of one coefficient."""
        i = self.index(name)
        return float(self.coef[i] / self.se_classical[i])


def design(data: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """A design matrix with a constant; categorical columns become k-1 dummies."""
    parts = [pd.Series(1.0, index=data.index, name="const").to_frame()]
    for col in columns:
        s = data[col]
        if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or \
                pd.api.types.is_string_dtype(s):
            parts.append(pd.get_dummies(s, prefix=col, drop_first=True, dtype=float))
        else:
            parts.append(s.astype(float).to_frame())
    frame = pd.concat(parts, axis=1)
    return frame.to_numpy(dtype=float), list(frame.columns)


def _chunks(n: int, chunk: int = CHUNK) -> list[slice]:
    return [slice(i, min(i + chunk, n)) for i in range(0, n, chunk)]


def normal_equations(X: np.ndarray, targets: np.ndarray, *, center: np.ndarray | None = None,
                     scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:math:`Z'Z` and :math:`Z'T` for :math:`Z = (X - c)/s`, accumulated in row chunks.

    Parameters
    ----------
    X : array of shape (n, p)
        Any float dtype; a chunk at a time is converted to float64.
    targets : array of shape (n, m)
    center, scale : arrays of shape (p,), optional
        Column centring and scaling (none by default).

    Returns
    -------
    ZtZ : ndarray (p, p)
    ZtT : ndarray (p, m)
    """
    p = X.shape[1]
    ZtZ, ZtT = np.zeros((p, p)), np.zeros((p, targets.shape[1]))
    for c in _chunks(len(X)):
        Z = np.asarray(X[c], dtype=np.float64)
        if center is not None:
            Z = (Z - center) / scale
        ZtZ += Z.T @ Z
        ZtT += Z.T @ targets[c]
    return ZtZ, ZtT


def ols(y: np.ndarray, X: np.ndarray, names: list[str]) -> LinearFit:
    """Ordinary least squares of ``y`` on the columns of ``X`` (include a constant yourself).

    Notes
    -----
    :math:`\\hat\\beta = (X'X)^{-1}X'y`; the HC1 variance is
    :math:`\\frac{n}{n-k}(X'X)^{-1} X'\\operatorname{diag}(\\hat u^2) X (X'X)^{-1}` and the
    classical one :math:`\\hat\\sigma^2 (X'X)^{-1}` with
    :math:`\\hat\\sigma^2 = \\hat u'\\hat u/(n-k)`.
    """
    return _fit(y, X, X, names)


def two_stage(y: np.ndarray, X: np.ndarray, Z: np.ndarray, names: list[str]) -> LinearFit:
    """Two-stage least squares of ``y`` on ``X`` with instruments ``Z``.

    Notes
    -----
    With :math:`\\hat X = Z(Z'Z)^{-1}Z'X`, :math:`\\hat\\beta = (\\hat X'\\hat X)^{-1}\\hat X'y`
    and the residuals use the *structural* regressors, :math:`\\hat u = y - X\\hat\\beta`
    (not :math:`\\hat X`), as any correct 2SLS standard error must.
    """
    ZtZ, ZtX = normal_equations(Z, np.asarray(X, dtype=np.float64))
    return _fit(y, X, Z @ (np.linalg.pinv(ZtZ) @ ZtX), names)


def _fit(y: np.ndarray, X: np.ndarray, Xhat: np.ndarray, names: list[str]) -> LinearFit:
    n, k = X.shape
    y = np.asarray(y, dtype=np.float64)
    XtX, Xty = normal_equations(Xhat, y[:, None])
    bread = np.linalg.pinv(XtX)
    coef = (bread @ Xty)[:, 0]
    resid = y - X @ coef
    meat = (Xhat * resid[:, None] ** 2).T @ Xhat
    v_hc1 = bread @ meat @ bread * n / (n - k)
    sigma2 = resid @ resid / (n - k)
    return LinearFit(names=names, coef=coef, se_hc1=np.sqrt(np.diag(v_hc1)),
                     se_classical=np.sqrt(np.diag(bread) * sigma2), dof=n - k, resid=resid)


def linear_adjustment_score(X: np.ndarray | None, y: np.ndarray,
                            d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The OLS coefficient of ``d`` in ``y ~ 1 + d + X`` as a linear score.

    Parameters
    ----------
    X : array of shape (n, p) or None
        Controls; None gives the naive difference in means.
    y, d : arrays of shape (n,)

    Returns
    -------
    psi_a, psi_b : ndarrays
        With :math:`\\tilde d, \\tilde y` the residuals of ``d`` and ``y`` on
        ``[1, X]``: :math:`\\psi_a = -\\tilde d^2`, :math:`\\psi_b = \\tilde y\\tilde d`.

    Notes
    -----
    By Frisch-Waugh-Lovell the solution :math:`\\sum\\tilde y\\tilde d/\\sum\\tilde d^2`
    is the OLS coefficient, and the score's sandwich variance is the HC0 /
    cluster-robust OLS variance.  The controls are centred and scaled before the
    normal equations (:func:`normal_equations`) for numerical stability.
    """
    y = np.asarray(y, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    ry, rd = y - y.mean(), d - d.mean()
    if X is None:
        return -rd * rd, ry * rd
    X = np.asarray(X)
    n = len(y)
    mean = sum(X[c].sum(axis=0, dtype=np.float64) for c in _chunks(n)) / n
    var = sum(((X[c] - mean) ** 2).sum(axis=0) for c in _chunks(n)) / n
    scale = np.sqrt(var)
    scale[scale == 0] = 1.0
    ZtZ, Ztr = normal_equations(X, np.column_stack([ry, rd]), center=mean, scale=scale)
    beta = np.linalg.lstsq(ZtZ, Ztr, rcond=None)[0]
    for c in _chunks(n):
        fit = ((X[c] - mean) / scale) @ beta
        ry[c] -= fit[:, 0]
        rd[c] -= fit[:, 1]
    return -rd * rd, ry * rd


def cluster_ols(y: np.ndarray, X: np.ndarray,
                clusters: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """OLS coefficients with cluster-robust (CR1) standard errors.

    Parameters
    ----------
    y : array of shape (n,)
    X : array of shape (n, k)
        The design, constant included.
    clusters : array of shape (n,), optional
        Cluster labels; each row is its own cluster when omitted (HC1).

    Returns
    -------
    coef, se : ndarrays of shape (k,)

    Notes
    -----
    :math:`V = c\\,(X'X)^{-1}\\big(\\sum_g X_g'\\hat u_g\\hat u_g'X_g\\big)(X'X)^{-1}` with
    :math:`c = \\frac{G}{G-1}\\frac{n-1}{n-k}`, Stata's small-sample correction.
    """
    from analysis.estimators.inference import cluster_codes

    y = np.asarray(y, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    n, k = X.shape
    XtX, Xty = normal_equations(X, y[:, None])
    bread = np.linalg.pinv(XtX)
    coef = (bread @ Xty)[:, 0]
    u = y - X @ coef
    codes, G = cluster_codes(clusters, n)
    scores = np.stack([np.bincount(codes, weights=X[:, j] * u, minlength=G)
                       for j in range(k)], axis=1)
    adj = (G / (G - 1) if G > 1 else 1.0) * ((n - 1) / (n - k) if n > k else 1.0)
    V = adj * bread @ (scores.T @ scores) @ bread
    return coef, np.sqrt(np.diag(V))
