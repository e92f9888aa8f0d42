"""Choosing a CATE method without the truth: the held-out R-loss and DR-loss."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.errors import EstimationError
from analysis.estimators.cate import fit_cate
from analysis.estimators.cate_selection import out_of_fold_cate, r_loss, selection_table
from analysis.estimators.crossfit import make_folds


def planted(n: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    e = 1 / (1 + np.exp(-0.5 * X[:, 0]))
    t = rng.binomial(1, e)
    tau = 2.0 * X[:, 1]
    y = X[:, 0] + tau * t + rng.normal(size=n)
    return X, y, t, tau, e


def test_r_loss_is_smallest_at_the_true_effect():
    X, y, t, tau, e = planted()
    m = X[:, 0] + e * tau  # the true E[y | x]
    true = r_loss(y, t, tau, m, e).mean()
    for wrong in (np.zeros_like(tau), tau + 1.0, 0.5 * tau):
        assert r_loss(y, t, wrong, m, e).mean() > true


def test_selection_ranks_the_truth_first_and_reports_it():
    X, y, t, tau, _ = planted()
    fit = fit_cate(X, y, t, method="linear_dml", seed=1)
    rng = np.random.default_rng(3)
    oof = {"truth": tau, "noisy": tau + rng.normal(scale=2.0, size=len(tau)),
           "flat": np.full(len(tau), tau.mean())}
    sel = selection_table(oof, y, t, nuisance=fit.nuisance, tau=tau)
    assert sel["method"].tolist()[0] == "truth" and sel["chosen"].iloc[0]
    assert sel.set_index("method").loc["truth", "dr_rank"] == 1
    assert sel["r_rank"].tolist() == sel["pehe_rank"].tolist()
    assert sel.set_index("method").loc["truth", "r_loss_se"] == 0


def test_out_of_fold_cate_predicts_every_unit_from_other_folds():
    X, y, t, tau, _ = planted(n=1200, seed=2)
    fit = fit_cate(X, y, t, method="linear_dml", seed=1)
    folds = make_folds(len(y), 3, seed=4)
    oof = out_of_fold_cate(X, y, t, methods=("linear_dml", "ols_interactions"),
                           nuisance=fit.nuisance, folds=folds, seed=1)
    for m, pred in oof.items():
        assert np.isfinite(pred).all(), m
        assert np.corrcoef(pred, tau)[0, 1] > 0.9, m
    with pytest.raises(EstimationError, match="at least two folds"):
        out_of_fold_cate(X, y, t, methods=("linear_dml",), nuisance=fit.nuisance,
                         folds=np.zeros(len(y), dtype=int), seed=1)
