"""Least squares with heteroskedasticity-robust standard errors (numpy only).

Shared by the naive regression, two-stage least squares and the sensitivity
analysis, so every linear number in the DoWhy chapter comes from one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class LinearFit:
    """An OLS fit.

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


def ols(y: np.ndarray, X: np.ndarray, names: list[str]) -> LinearFit:
    """Ordinary least squares.

    Notes
    -----
    :math:`\\hat\\beta = (X'X)^{-1}X'y`; the HC1 variance is
    :math:`\\frac{n}{n-k}(X'X)^{-1} X'\\operatorname{diag}(\\hat u^2) X (X'X)^{-1}` and the
    classical one :math:`\\hat\\sigma^2 (X'X)^{-1}` with
    :math:`\\hat\\sigma^2 = \\hat u'\\hat u/(n-k)`.
    """
    return _fit(y, X, X, names)


def _fit(y: np.ndarray, X: np.ndarray, Xhat: np.ndarray, names: list[str]) -> LinearFit:
    n, k = X.shape
    bread = np.linalg.pinv(Xhat.T @ Xhat)
    coef = bread @ Xhat.T @ y
    resid = y - X @ coef
    meat = (Xhat * resid[:, None] ** 2).T @ Xhat
    v_hc1 = bread @ meat @ bread * n / (n - k)
    sigma2 = resid @ resid / (n - k)
    return LinearFit(names=names, coef=coef, se_hc1=np.sqrt(np.diag(v_hc1)),
                     se_classical=np.sqrt(np.diag(bread) * sigma2), dof=n - k, resid=resid)


def two_stage(y: np.ndarray, X: np.ndarray, Z: np.ndarray, names: list[str]) -> LinearFit:
    """Two-stage least squares of ``y`` on ``X`` with instruments ``Z``.

    Notes
    -----
    With :math:`\\hat X = Z(Z'Z)^{-1}Z'X`, :math:`\\hat\\beta = (\\hat X'\\hat X)^{-1}\\hat X'y`
    and the residuals use the *structural* regressors, :math:`\\hat u = y - X\\hat\\beta`
    (not :math:`\\hat X`), as any correct 2SLS standard error must.
    """
    gamma, *_ = np.linalg.lstsq(Z, X, rcond=None)
    return _fit(y, X, Z @ gamma, names)
