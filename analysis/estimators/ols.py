"""Linear regression adjustment written as a linear score, so it shares DML's inference.

By Frisch-Waugh-Lovell, the OLS coefficient of ``d`` in ``y ~ 1 + d + X`` equals
the partialling-out estimate with *in-sample linear* nuisances; writing it as a
score lets naive, OLS and DML estimates use the same cluster-robust variance.
"""

from __future__ import annotations

import numpy as np

CHUNK = 250_000
"""Rows per chunk when accumulating the normal equations."""


def linear_adjustment_score(X: np.ndarray | None, y: np.ndarray,
                            d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The OLS coefficient of ``d`` as a linear score.

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
    The solution :math:`\\sum\\tilde y\\tilde d/\\sum\\tilde d^2` is the OLS coefficient;
    the score's sandwich variance is the HC0 / cluster-robust OLS variance.
    """
    y = np.asarray(y, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    ry, rd = y - y.mean(), d - d.mean()
    if X is None:
        return -rd * rd, ry * rd
    X = np.asarray(X)
    n = len(y)
    chunks = [slice(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK)]
    mean = sum(X[c].sum(axis=0, dtype=np.float64) for c in chunks) / n
    var = sum(((X[c] - mean) ** 2).sum(axis=0) for c in chunks) / n
    scale = np.sqrt(var)
    scale[scale == 0] = 1.0
    ZtZ = np.zeros((X.shape[1], X.shape[1]))
    Ztr = np.zeros((X.shape[1], 2))
    target = np.column_stack([ry, rd])
    for c in chunks:  # normal equations in row chunks: memory stays one chunk
        Z = (X[c] - mean) / scale
        ZtZ += Z.T @ Z
        Ztr += Z.T @ target[c]
    beta = np.linalg.lstsq(ZtZ, Ztr, rcond=None)[0]
    for c in chunks:
        fit = ((X[c] - mean) / scale) @ beta
        ry[c] -= fit[:, 0]
        rd[c] -= fit[:, 1]
    return -rd * rd, ry * rd
