"""The one cross-fitting helper every double machine learning estimator uses.

Cross-fitting splits the sample into :math:`K` folds, fits a nuisance learner
on :math:`K-1` of them and predicts on the held-out fold, so every observation
gets an out-of-fold prediction (Chernozhukov et al., 2018, Definition 3.1).
When observations are clustered (ratings by one user), whole clusters are
assigned to folds, so no user's ratings are used both to fit a nuisance model
and to evaluate it.

Every fit of one held-out cell of one nuisance in one repetition is a task of
:func:`analysis.parallel.map_tasks` (:func:`cross_fit_all`): the data reach each worker
once, the tasks carry only indices, and each fit runs on one thread, so the predictions
are the same to the last bit on every backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import clone

from analysis.errors import EstimationError
from analysis.parallel import common_seeds, map_tasks

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


@dataclass(frozen=True)
class Nuisance:
    """One nuisance function to cross-fit.

    Attributes
    ----------
    name : str
        Key of its predictions in the result of :func:`cross_fit_all` (``"g_hat"``).
    learner : scikit-learn compatible estimator
        Cloned for every fit; never fitted itself.
    target : str
        Key of its outcome in the ``targets`` of :func:`cross_fit_all` (``"y"``, ``"d"``).
    kind : {"predict", "predict_proba"}
        ``predict_proba`` gives the probability of class 1.
    where : str, optional
        Key of a boolean mask in ``targets``: fit only on training rows where it is true
        (one arm for :math:`g_0` and :math:`g_1`); every held-out row is still predicted.
    reps : tuple of int, optional
        The repetitions to fit (default all); the others stay NaN.
    label : str, optional
        Its name in error messages (default ``name``).
    """

    name: str
    learner: Any
    target: str
    kind: Method = "predict"
    where: str | None = None
    reps: tuple[int, ...] | None = None
    label: str | None = None


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
    ``fit_mask``).  The folds' fits are tasks of :func:`cross_fit_all`.
    """
    targets = {"y": np.asarray(y)}
    if fit_mask is not None:
        targets["mask"] = np.asarray(fit_mask, dtype=bool)
    spec = Nuisance("eta", learner, "y", method, None if fit_mask is None else "mask",
                    label=name)
    return cross_fit_all([spec], X, targets, [folds])["eta"][0]


def cross_fit_all(nuisances: Sequence[Nuisance], X: np.ndarray,
                  targets: Mapping[str, np.ndarray], folds_list: Sequence[np.ndarray]
                  ) -> dict[str, np.ndarray]:
    """Out-of-fold predictions of several nuisances over several repetitions, all fits at once.

    Parameters
    ----------
    nuisances : sequence of Nuisance
    X : array of shape (n, p)
    targets : mapping of str to array of shape (n,)
        The outcomes and masks the nuisances name.
    folds_list : sequence of arrays of int, each (n,) or (n, W)
        One fold assignment per repetition of cross-fitting.

    Returns
    -------
    dict of str to ndarray of shape (len(folds_list), n)
        Each nuisance's out-of-fold predictions, one row per repetition.

    Notes
    -----
    One task of :func:`analysis.parallel.map_tasks` per nuisance, held-out cell and
    repetition: it fits a clone of the learner on the cell's training rows and predicts
    its held-out rows.  ``X``, the targets and the folds are passed as the tasks' shared
    data (memory-mapped for ``local`` workers, broadcast once on Dask), so a task ships
    three integers and returns its predictions.  Fits depend only on their rows and the
    learner's own seed, so the result is the same on every backend.
    """
    X = np.asarray(X)
    n = X.shape[0]
    folds_list = [np.asarray(f) for f in folds_list]
    splits = [fold_splits(f) for f in folds_list]
    tasks = []
    for i, nu in enumerate(nuisances):
        _check_learner(nu)
        reps = range(len(folds_list)) if nu.reps is None else nu.reps
        for r in reps:
            for c, (cell, _, train) in enumerate(splits[r]):
                _check_cell(nu, targets, cell, train)
                tasks.append((i, r, c))
    shared = {"X": X, "targets": dict(targets), "folds": folds_list,
              "cells": [[cell for cell, _, _ in sp] for sp in splits],
              "nuisances": list(nuisances)}
    preds = map_tasks(_fit_cell, tasks, seeds=common_seeds(0, len(tasks)), shared=shared)
    out = {nu.name: np.full((len(folds_list), n), np.nan) for nu in nuisances}
    for (i, r, c), pred in zip(tasks, preds, strict=True):
        out[nuisances[i].name][r, splits[r][c][1]] = pred
    return out


def _fit_cell(task: tuple[int, int, int], seed: int, shared: dict) -> np.ndarray:
    """One task: fit nuisance ``i`` on the training rows of cell ``c`` of repetition ``r``
    and predict that cell's held-out rows (the seed is unused: learners carry theirs)."""
    i, r, c = task
    nu = shared["nuisances"][i]
    f = np.asarray(shared["folds"][r])
    eq = f.reshape(len(f), -1) == np.asarray(shared["cells"][r][c])  # as in fold_splits
    test, train = eq.all(axis=1), (~eq).all(axis=1)
    if nu.where is not None:
        train = train & shared["targets"][nu.where]
    X, y = shared["X"], shared["targets"][nu.target]
    est = clone(nu.learner).fit(X[train], y[train])
    if nu.kind == "predict_proba":
        classes = list(getattr(est, "classes_", [0, 1]))
        if 1 not in classes:
            return np.zeros(int(test.sum()))
        return est.predict_proba(X[test])[:, classes.index(1)]
    return np.asarray(est.predict(X[test]), dtype=np.float64)


def _check_learner(nu: Nuisance) -> None:
    if not hasattr(nu.learner, nu.kind):
        label = nu.label or nu.name
        need = ("a classifier with predict_proba, e.g. LGBMClassifier or "
                "LogisticRegression" if nu.kind == "predict_proba" else "a regressor")
        raise EstimationError(f"{label} = {type(nu.learner).__name__} has no {nu.kind}(); the "
                              f"treatment is binary, so {label} must be {need}. "
                              "Use a classifier instead.")


def _check_cell(nu: Nuisance, targets: Mapping[str, np.ndarray], cell: tuple[int, ...],
                train: np.ndarray) -> None:
    """The errors a cell's fit would hit, raised here with their fix before any task runs."""
    label = nu.label or nu.name
    k = cell[0] if len(cell) == 1 else cell
    if nu.where is not None:
        train = train & targets[nu.where]
    if not train.any():
        raise EstimationError(f"Fold {k} leaves no training rows for {label}: the other "
                              "folds hold no unit of that arm, so the treatment is constant "
                              "there. Use fewer folds, or check that both arms have units in "
                              "many clusters.")
    if nu.kind == "predict_proba":
        y = targets[nu.target][train]
        if np.unique(y).size < 2:
            raise EstimationError(f"The treatment is constant ({y[0]:g} everywhere) in the "
                                  f"training folds of fold {k}, so {label} cannot learn a "
                                  "propensity. Use fewer folds, or check that treated and "
                                  "untreated units are spread over many clusters.")
