"""The one cross-fitting helper every double machine learning estimator uses.

Cross-fitting splits the sample into :math:`K` folds, fits a nuisance learner
on :math:`K-1` of them and predicts on the held-out fold, so every observation
gets an out-of-fold prediction (Chernozhukov et al., 2018, Definition 3.1).
When observations are clustered (ratings by one user), whole clusters are
assigned to folds, so no user's ratings are used both to fit a nuisance model
and to evaluate it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import clone

from analysis.errors import EstimationError

Method = Literal["predict", "predict_proba"]


def make_folds(n_obs: int, n_folds: int = 3, *, clusters: np.ndarray | None = None,
               seed: int = 0) -> np.ndarray:
    """Assign every observation to one of ``n_folds`` folds.

    Parameters
    ----------
    n_obs : int
        Number of observations.
    n_folds : int
        :math:`K`, at least 2.
    clusters : array of shape (n_obs,) or (n_obs, W), optional
        Cluster labels; all observations of a cluster land in the same fold.
        Clusters are shuffled and cut into folds of about equal *rows*, so
        folds stay balanced when cluster sizes are skewed.  With one column per way
        of clustering (e.g. user and movie), each way gets its own folds (way
        :math:`w` shuffled with ``seed + w``) and the result has shape (n_obs, W), for
        multiway cross-fitting (see :func:`fold_splits`).
    seed : int
        Seed of the shuffle.

    Returns
    -------
    ndarray of int
        Fold index in ``0..n_folds-1`` per observation (and per way).

    Raises
    ------
    EstimationError
        If ``n_folds < 2`` or there are fewer clusters (or observations) than folds.
    """
    if n_folds < 2:
        raise EstimationError(f"n_folds={n_folds}: cross-fitting needs at least 2 folds. "
                              "Use n_folds=3 (the default) or more.")
    if clusters is not None and np.ndim(clusters) == 2:
        c = np.asarray(clusters)
        return np.column_stack([make_folds(n_obs, n_folds, clusters=c[:, w], seed=seed + w)
                                for w in range(c.shape[1])])
    rng = np.random.default_rng(seed)
    if clusters is None:
        if n_obs < n_folds:
            raise EstimationError(f"Only {n_obs} observations for n_folds={n_folds}. "
                                  "Use fewer folds or more data.")
        folds = np.empty(n_obs, dtype=np.int64)
        folds[rng.permutation(n_obs)] = np.arange(n_obs) % n_folds
        return folds
    codes, uniques = pd.factorize(np.asarray(clusters), use_na_sentinel=False)
    n_clusters = len(uniques)
    if n_clusters < n_folds:
        raise EstimationError(
            f"Only {n_clusters} clusters for n_folds={n_folds}: cross-fitting by cluster "
            "needs at least one whole cluster per fold. Use n_folds <= "
            f"{max(n_clusters, 1)}, cluster at a finer level, or pass clusters=None.")
    sizes = np.bincount(codes, minlength=n_clusters)
    order = rng.permutation(n_clusters)
    start = np.cumsum(sizes[order]) - sizes[order]  # rows before each shuffled cluster
    fold_of = np.empty(n_clusters, dtype=np.int64)
    fold_of[order] = np.minimum(start * n_folds // max(n_obs, 1), n_folds - 1)
    # Cuts by rows could leave a fold without clusters when one cluster is huge.
    if np.unique(fold_of).size < n_folds:
        fold_of[order] = np.arange(n_clusters) % n_folds
    return fold_of[codes]


def fold_splits(folds: np.ndarray) -> list[tuple[tuple[int, ...], np.ndarray, np.ndarray]]:
    """The held-out cells of a fold assignment, each with its held-out and training rows.

    Parameters
    ----------
    folds : array of int, shape (n,) or (n, W)
        One fold label per observation, or one per observation and per way of clustering
        (e.g. a user fold and an item fold).

    Returns
    -------
    list of (cell, test, train)
        ``cell`` is the tuple of fold labels (one per way), ``test`` and ``train`` boolean
        masks of length ``n``, in lexicographic order of the cells that hold rows.

    Notes
    -----
    With one way, cell :math:`k` holds out :math:`I_k` and trains on its complement.  With
    :math:`W` ways (multiway cross-fitting, Chiang, Kato, Ma & Sasaki, 2022), cell
    :math:`(k_1, \\dots, k_W)` holds out the rows whose labels equal :math:`k_w` in every way
    and trains only on rows whose labels differ from :math:`k_w` in *every* way, so no
    cluster of any way (no user, no item) is on both sides.  Rows sharing a cluster with
    the held-out cell in some but not all ways are in neither set for that cell.
    """
    f = np.asarray(folds)
    f2 = f.reshape(len(f), -1)
    cells = np.unique(f2, axis=0)
    out = []
    for cell in cells:
        eq = f2 == cell
        out.append((tuple(int(c) for c in cell), eq.all(axis=1), (~eq).all(axis=1)))
    return out


def cross_fit(learner: object, X: np.ndarray, y: np.ndarray, folds: np.ndarray, *,
              method: Method = "predict", fit_mask: np.ndarray | None = None,
              name: str = "learner") -> np.ndarray:
    """Out-of-fold predictions of a cloned ``learner``.

    Parameters
    ----------
    learner : scikit-learn compatible estimator
        Cloned with :func:`sklearn.base.clone` for every fold; never fitted itself.
    X : array of shape (n, p)
    y : array of shape (n,)
    folds : array of int, shape (n,) or (n, W)
        From :func:`make_folds` (one fold label per observation), or one label per
        observation and per *way* of clustering (multiway cross-fitting); see
        :func:`fold_splits`.
    method : {"predict", "predict_proba"}
        ``predict_proba`` returns the probability of class 1.
    fit_mask : bool array, optional
        Fit only on training rows where the mask is true (e.g. treated units for
        :math:`g_1`); predictions are still made for every held-out row.
    name : str
        Name of the nuisance function, for error messages (``"ml_m"``).

    Returns
    -------
    ndarray of float, shape (n,)

    Notes
    -----
    For fold :math:`k` with held-out set :math:`I_k`,
    :math:`\\hat\\eta(x_i) = \\hat\\eta_{-k}(x_i)` for :math:`i \\in I_k`, where
    :math:`\\hat\\eta_{-k}` is fitted on :math:`\\{j \\notin I_k\\}` (restricted to
    ``fit_mask``).
    """
    if not hasattr(learner, method):
        need = ("a classifier with predict_proba, e.g. LGBMClassifier or "
                "LogisticRegression" if method == "predict_proba" else "a regressor")
        raise EstimationError(f"{name} = {type(learner).__name__} has no {method}(); the "
                              f"treatment is binary, so {name} must be {need}. "
                              "Use a classifier instead.")
    out = np.full(len(y), np.nan)
    for cell, test, train in fold_splits(folds):
        k = cell[0] if len(cell) == 1 else cell
        if fit_mask is not None:
            train = train & fit_mask
        if not train.any():
            raise EstimationError(f"Fold {k} leaves no training rows for {name}: the other "
                                  "folds hold no unit of that arm, so the treatment is constant "
                                  "there. Use fewer folds, or check that both arms have units in "
                                  "many clusters.")
        if method == "predict_proba" and np.unique(y[train]).size < 2:
            raise EstimationError(f"The treatment is constant ({y[train][0]:g} everywhere) in the "
                                  f"training folds of fold {k}, so {name} cannot learn a "
                                  "propensity. Use fewer folds, or check that treated and "
                                  "untreated units are spread over many clusters.")
        est = clone(learner).fit(X[train], y[train])
        if method == "predict_proba":
            proba = est.predict_proba(X[test])
            classes = list(getattr(est, "classes_", [0, 1]))
            out[test] = proba[:, classes.index(1)] if 1 in classes else 0.0
        else:
            out[test] = est.predict(X[test])
    return out
