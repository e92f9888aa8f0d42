"""Multiway cross-fitting with two-way cluster-robust inference (Chiang et al., 2022)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from analysis.errors import EstimationError
from analysis.estimators.crossfit import fold_splits, make_folds
from analysis.estimators.dml import AIPW
from analysis.estimators.inference import solve_score, twoway_variance


def _data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    user, movie = rng.integers(0, 80, n), rng.integers(0, 50, n)
    X = rng.normal(size=(n, 2)) + rng.normal(size=50)[movie, None]
    d = (rng.random(n) < 1 / (1 + np.exp(-X[:, 0]))).astype(float)
    y = 0.3 * d + X.sum(axis=1) + rng.normal(size=80)[user] + rng.normal(size=n)
    return X, y, d, user, movie


def test_two_column_clusters_give_one_fold_per_way():
    _, _, _, user, movie = _data()
    f = make_folds(len(user), 3, clusters=np.column_stack([user, movie]), seed=4)
    assert f.shape == (len(user), 2)
    assert np.array_equal(f[:, 0], make_folds(len(user), 3, clusters=user, seed=4))
    assert np.array_equal(f[:, 1], make_folds(len(user), 3, clusters=movie, seed=5))
    for _, test, train in fold_splits(f):  # no user and no movie on both sides
        assert not set(user[test]) & set(user[train])
        assert not set(movie[test]) & set(movie[train])


def test_multiway_fit_uses_two_way_variance():
    X, y, d, user, movie = _data()
    m = AIPW(ml_g=LinearRegression(), ml_m=LogisticRegression(), seed=2).fit(
        X, y, d, clusters=np.column_stack([user, movie]))
    assert m.se_ == pytest.approx(m.std_error(user, movie), rel=1e-12)
    assert m.n_clusters_ == 50
    psi = m.psi_a_[0] * m.coef_ + m.psi_b_[0]
    assert m.se_ == pytest.approx(np.sqrt(twoway_variance(psi, user, movie)), rel=1e-12)
    g = m.group_ate(X[:, 0] > 0)  # group means take the two-way variance too
    g2 = m.group_ate(X[:, 0] > 0)
    assert np.isfinite(g["std_error"]).all() and g.equals(g2)


def test_bad_cluster_shape():
    with pytest.raises(EstimationError, match="clusters has shape"):
        solve_score(-np.ones(4), np.ones(4), np.zeros((4, 3)))
