"""Linear regression adjustment written as a linear score, so it shares DML's inference.

By Frisch-Waugh-Lovell, the OLS coefficient of ``d`` in ``y ~ 1 + d + X`` equals
the partialling-out estimate with *in-sample linear* nuisances; writing it as a
score lets naive, OLS and DML estimates use the same cluster-robust variance.
"""

from __future__ import annotations

import numpy as np


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
    Z = np.ones((len(y), 1)) if X is None else np.column_stack(
        [np.ones(len(y)), np.asarray(X, dtype=np.float64)])
    scale = Z.std(axis=0)
    scale[scale == 0] = 1.0
    Zs = Z / scale
    coef, *_ = np.linalg.lstsq(Zs, np.column_stack([y, d]), rcond=None)
    res = np.column_stack([y, d]) - Zs @ coef
    ry, rd = res[:, 0], res[:, 1]
    return -rd * rd, ry * rd
