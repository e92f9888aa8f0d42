"""Diagnostics of a binary-treatment adjustment: overlap, balance, learner comparison."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, GroupShuffleSplit

from analysis.parallel import common_seeds, map_tasks


def ipw_weights(d: np.ndarray, m_hat: np.ndarray, trim: float = 0.01) -> np.ndarray:
    """ATE weights :math:`D/\\hat m + (1-D)/(1-\\hat m)`, propensities clipped to ``[t, 1-t]``."""
    m = np.clip(m_hat, trim, 1 - trim)
    return np.where(d == 1, 1 / m, 1 / (1 - m))


def standardized_differences(X: pd.DataFrame, d: np.ndarray,
                             weights: np.ndarray | None = None) -> pd.Series:
    """Standardized mean differences of every column between treated and untreated.

    Parameters
    ----------
    X : DataFrame
    d : array of 0/1
    weights : array, optional
        Observation weights (e.g. :func:`ipw_weights`); the denominator always uses
        the *unweighted* pooled SD, so before/after values are comparable.

    Returns
    -------
    Series
        :math:`(\\bar x_1 - \\bar x_0)/\\sqrt{(s_1^2 + s_0^2)/2}` per column.
    """
    t = np.asarray(d) == 1
    w = np.ones(len(X)) if weights is None else np.asarray(weights, dtype=np.float64)
    out = {}
    for col in X.columns:  # column by column: no full float64 copy of X
        a = X[col].to_numpy(dtype=np.float64)
        sd = np.sqrt((a[t].var() + a[~t].var()) / 2) or 1.0
        out[col] = (np.average(a[t], weights=w[t]) - np.average(a[~t], weights=w[~t])) / sd
    return pd.Series(out)


def compare_learners(learners: Mapping[str, object], X: np.ndarray, y: np.ndarray,
                     groups: np.ndarray, *, n_folds: int = 3, test_size: float = 0.25,
                     seed: int = 0) -> pd.DataFrame:
    """Held-out and cross-validated accuracy of outcome learners, split by group (user).

    Parameters
    ----------
    learners : mapping of name -> scikit-learn regressor
        Each is cloned; none is modified.
    X, y : arrays
    groups : array
        Whole groups go to the held-out set and to CV folds, as in cross-fitting.
    n_folds : int
        Folds of the cross-validation on the training part.
    test_size : float
        Share of groups held out.
    seed : int

    Returns
    -------
    DataFrame
        ``model``, ``rmse`` and ``r2`` on the held-out users, ``cv_rmse`` (mean
        over folds) and ``cv_rmse_sd``.
    """
    split = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    train, test = next(split.split(X, y, groups))
    cv = list(GroupKFold(n_splits=n_folds).split(X[train], y[train], groups[train]))
    # every fit (each learner on each CV fold, and on the whole training part) is a task
    fits = [(train[tr], train[va]) for tr, va in cv] + [(train, test)]
    names = list(learners)
    tasks = [(i, j) for i in range(len(names)) for j in range(len(fits))]
    shared = {"X": X, "y": y, "fits": fits, "learners": [learners[k] for k in names]}
    preds = dict(zip(tasks, map_tasks(_fit_predict, tasks, seeds=common_seeds(0, len(tasks)),
                                      shared=shared), strict=True))
    rows = []
    for i, name in enumerate(names):
        fold_rmse = [_rmse(y[va], preds[i, j]) for j, (_, va) in enumerate(fits[:-1])]
        pred = preds[i, len(fits) - 1]
        resid = y[test] - pred
        r2 = 1 - np.sum(resid**2) / np.sum((y[test] - y[test].mean()) ** 2)
        rows.append({"model": name, "rmse": _rmse(y[test], pred), "r2": float(r2),
                     "cv_rmse": float(np.mean(fold_rmse)),
                     "cv_rmse_sd": float(np.std(fold_rmse))})
    return pd.DataFrame(rows)


def _fit_predict(task: tuple[int, int], seed: int, shared: dict) -> np.ndarray:
    """Fit learner ``i`` on the rows of fit ``j`` and predict its held-out rows."""
    i, j = task
    fit_rows, pred_rows = shared["fits"][j]
    X, y = shared["X"], shared["y"]
    est = clone(shared["learners"][i]).fit(X[fit_rows], y[fit_rows])
    return np.asarray(est.predict(X[pred_rows]), dtype=np.float64)


def _rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - pred) ** 2)))
