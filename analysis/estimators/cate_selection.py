"""Choosing a CATE method without the truth: held-out R-loss (and DR-loss).

Every method of :func:`~analysis.estimators.cate.fit_cate` is refitted on all folds but
one and predicts the effects of the held-out fold (:func:`out_of_fold_cate`); the
predictions are scored by the R-loss of Nie & Wager (2021), with the DR-loss as a check
(:func:`selection_table`).  Neither score needs the true effects, so a user can choose a
method on real data; on a simulator the table also shows the true √PEHE of the same
out-of-fold predictions, so that the two rankings can be compared.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from analysis.errors import EstimationError
from analysis.estimators.cate import fit_cate
from analysis.estimators.policy import dr_potential_outcomes
from analysis.parallel import common_seeds, map_tasks


def out_of_fold_cate(X: np.ndarray, y: np.ndarray, t: np.ndarray, *, methods: tuple[str, ...],
                     nuisance: dict, folds: np.ndarray, seed: int,
                     settings: dict[str, dict] | None = None,
                     modifiers: list[int] | None = None) -> dict[str, np.ndarray]:
    """Each method's CATE of every unit, fitted on the other folds (one task per method
    and fold).

    Parameters
    ----------
    X, y, t : arrays
        Features, outcome and binary treatment.
    methods : tuple of str
        Methods of :func:`fit_cate`.
    nuisance : dict
        The full-data nuisance choice of :func:`fit_cate` (``model_t``, ``model_y``,
        ``m_hat``): the chosen learners are refitted inside each training part, and the
        out-of-fold propensities ``m_hat`` are what ``bcf`` predicts held-out units with.
    folds : array of int
        Fold label of every unit.
    seed : int
    settings : dict, optional
        Extra settings per method (e.g. the BCF's draws).
    modifiers : list of int, optional
        Effect modifiers of ``linear_dml``.

    Returns
    -------
    dict
        Method -> out-of-fold CATE predictions (n,).
    """
    labels = np.unique(folds)
    if len(labels) < 2:
        raise EstimationError("Held-out scoring needs at least two folds; got one.")
    settings = settings or {}
    items = [(m, int(k), settings.get(m, {})) for m in methods for k in labels]
    shared = {"X": X, "y": y, "t": t, "folds": folds, "m_hat": np.asarray(nuisance["m_hat"]),
              "model_t": nuisance["model_t"], "model_y": nuisance["model_y"],
              "modifiers": modifiers}
    preds = map_tasks(_fold_fit, items, seeds=common_seeds(seed, len(items)), shared=shared)
    out = {m: np.empty(len(y)) for m in methods}
    for (m, k, _), p in zip(items, preds, strict=True):
        out[m][folds == k] = p
    return out


def _fold_fit(item: tuple, seed: int, shared: dict) -> np.ndarray:
    """One method fitted on all folds but ``k``, predicting fold ``k`` (one task)."""
    method, k, params = item
    X, y, t, folds = shared["X"], shared["y"], shared["t"], shared["folds"]
    train, test = folds != k, folds == k
    fit = fit_cate(X[train], y[train], t[train], method=method, seed=seed, n_folds=2,
                   modifiers=shared["modifiers"],
                   nuisance={"model_t": clone(shared["model_t"]),
                             "model_y": clone(shared["model_y"])},
                   **({**params, "inference": False} if method == "causal_forest"
                      else params))
    return fit.effect(X[test], propensity=shared["m_hat"][test])


def r_loss(y: np.ndarray, t: np.ndarray, tau_hat: np.ndarray, m_hat: np.ndarray,
           e_hat: np.ndarray) -> np.ndarray:
    """Per-unit R-loss terms :math:`((y - \\hat m(x)) - \\hat\\tau(x)(t - \\hat e(x)))^2`.

    Notes
    -----
    Nie & Wager (2021): with :math:`m(x) = E[Y \\mid X = x]` and
    :math:`e(x) = P(T = 1 \\mid X = x)` estimated out of fold, the expected R-loss equals
    :math:`E[(\\tau(X) - \\hat\\tau(X))^2 (T - e(X))^2]` plus a term free of
    :math:`\\hat\\tau`, so a smaller held-out mean ranks CATE functions by a
    propensity-weighted PEHE, without the true effects.
    """
    return ((y - m_hat) - tau_hat * (t - e_hat)) ** 2


def selection_table(oof: dict[str, np.ndarray], y: np.ndarray, t: np.ndarray, *,
                    nuisance: dict, tau: np.ndarray | None = None) -> pd.DataFrame:
    """Held-out R-loss and DR-loss of each method's out-of-fold CATE, ranked.

    The outcome regression is :math:`\\hat m = \\hat e\\,\\hat g_1 + (1-\\hat e)\\,\\hat g_0`
    from the cross-fitted nuisances; the DR-loss is the mean of
    :math:`(\\psi - \\hat\\tau)^2` with the doubly robust scores :math:`\\psi`.  With
    ``tau`` (a simulator's truth), the true √PEHE of the same predictions and its rank
    are added.

    Returns
    -------
    DataFrame
        ``method``, ``r_loss``, ``r_loss_se`` (of the difference from the winner, paired
        over units), ``r_rank``, ``dr_loss``, ``dr_rank``, ``chosen`` and, with ``tau``,
        ``sqrt_pehe`` and ``pehe_rank``.
    """
    e = np.asarray(nuisance["m_hat"], dtype=np.float64)
    g0, g1 = np.asarray(nuisance["g0_hat"]), np.asarray(nuisance["g1_hat"])
    m = e * g1 + (1 - e) * g0
    d0, d1 = dr_potential_outcomes(y, t, e, g0, g1)
    psi = d1 - d0
    terms = {k: r_loss(y, t, v, m, e) for k, v in oof.items()}
    rows = [{"method": k, "r_loss": float(v.mean()),
             "dr_loss": float(np.mean((psi - oof[k]) ** 2))} for k, v in terms.items()]
    out = pd.DataFrame(rows)
    best = str(out.loc[out["r_loss"].idxmin(), "method"])
    out["r_loss_se"] = [float(np.std(terms[k] - terms[best], ddof=1) / np.sqrt(len(y)))
                        for k in out["method"]]
    out["r_rank"] = out["r_loss"].rank(method="min").astype(int)
    out["dr_rank"] = out["dr_loss"].rank(method="min").astype(int)
    out["chosen"] = out["method"] == best
    if tau is not None:
        out["sqrt_pehe"] = [float(np.sqrt(np.mean((oof[k] - tau) ** 2))) for k in out["method"]]
        out["pehe_rank"] = out["sqrt_pehe"].rank(method="min").astype(int)
    return out.sort_values("r_rank", kind="stable").reset_index(drop=True)
