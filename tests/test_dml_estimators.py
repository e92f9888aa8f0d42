"""DML estimators: EconML agreement, a plain-numpy re-implementation, known truth, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression

from analysis.errors import EstimationError, NotFittedError, OverlapError
from analysis.estimators import AIPW, PartiallyLinearDML, default_learner, dml, make_folds
from analysis.estimators.coverage import clustered_design, coverage_simulation
from analysis.estimators.inference import (
    cluster_codes,
    cluster_variance,
    median_aggregate,
    twoway_variance,
)


def design(n: int = 3000, theta: float = 0.5, seed: int = 0, n_clusters: int = 150):
    """Confounded binary-treatment data with clusters and a known constant effect."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    clusters = rng.integers(0, n_clusters, n)
    p = 1 / (1 + np.exp(-(0.8 * X[:, 0] - 0.5 * X[:, 1])))
    d = (rng.random(n) < p).astype(float)
    y = theta * d + X[:, 0] + 0.5 * np.sin(X[:, 1]) + 0.3 * X[:, 2] + rng.standard_normal(n)
    return X, y, d, clusters


def splits(folds: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in np.unique(folds)]


# --------------------------------------------------------------------------- EconML


@pytest.mark.parametrize("learners", ["linear", "lightgbm"])
def test_plr_matches_econml_lineardml(learners):
    from econml.dml import LinearDML

    X, y, d, clusters = design(n=2000)
    if learners == "linear":
        ml_g, ml_m = LinearRegression(), LogisticRegression()
    else:
        ml_g = LGBMRegressor(n_estimators=30, n_jobs=1, verbose=-1, random_state=1)
        ml_m = LGBMClassifier(n_estimators=30, n_jobs=1, verbose=-1, random_state=1)
    ours = PartiallyLinearDML(ml_g=ml_g, ml_m=ml_m, n_folds=3, seed=7).fit(
        X, y, d, clusters=clusters)
    econ = LinearDML(model_y=ml_g, model_t=ml_m, discrete_treatment=True,
                     cv=splits(ours.folds_[0]), random_state=0)
    econ.fit(y, d, X=None, W=X)
    assert ours.coef_ == pytest.approx(float(econ.intercept_), abs=1e-10)


# --------------------------------------------------------------------------- plain numpy


def _ols_predict(Xtr, ytr, Xte):
    A = np.column_stack([np.ones(len(Xtr)), Xtr])
    beta = np.linalg.lstsq(A, ytr, rcond=None)[0]
    return np.column_stack([np.ones(len(Xte)), Xte]) @ beta


def _cluster_se(psi, J, clusters):
    n = len(psi)
    labels = np.unique(clusters)
    sums = np.array([psi[clusters == c].sum() for c in labels])
    G = len(labels)
    return np.sqrt(G / (G - 1) * np.sum(sums**2) / n**2) / abs(J)


def test_plr_matches_plain_numpy_reimplementation():
    """Cross-fitting with least squares, the partialling-out score and the clustered SE,
    written out with numpy only."""
    X, y, d, clusters = design(n=1500, seed=3)
    model = PartiallyLinearDML(ml_g=LinearRegression(), ml_m=LinearRegression(), n_folds=4,
                        seed=11).fit(X, y, d, clusters=clusters)
    folds = model.folds_[0]
    g_hat, m_hat = np.empty_like(y), np.empty_like(y)
    for k in range(4):
        tr, te = folds != k, folds == k
        g_hat[te] = _ols_predict(X[tr], y[tr], X[te])
        m_hat[te] = _ols_predict(X[tr], d[tr], X[te])
    v, u = d - m_hat, y - g_hat
    theta = np.sum(u * v) / np.sum(v * v)
    psi = -(v * v) * theta + u * v
    J = -np.mean(v * v)
    se_iid = np.sqrt(np.mean(psi**2) / J**2 / len(y))
    assert model.coef_ == pytest.approx(theta, rel=1e-10)
    assert model.se_ == pytest.approx(_cluster_se(psi, J, clusters), rel=1e-10)
    assert model.se_iid_ == pytest.approx(se_iid, rel=1e-10)
    np.testing.assert_allclose(model.nuisance_["g_hat"][0], g_hat, rtol=1e-9, atol=1e-9)


def test_irm_matches_plain_numpy_reimplementation():
    X, y, d, clusters = design(n=1500, seed=4)
    model = AIPW(ml_g=LinearRegression(), ml_m=LogisticRegression(), n_folds=3,
                        seed=5).fit(X, y, d, clusters=clusters)
    folds = model.folds_[0]
    g0, g1 = np.empty_like(y), np.empty_like(y)
    for k in range(3):
        tr, te = folds != k, folds == k
        g0[te] = _ols_predict(X[tr & (d == 0)], y[tr & (d == 0)], X[te])
        g1[te] = _ols_predict(X[tr & (d == 1)], y[tr & (d == 1)], X[te])
    m = np.clip(model.nuisance_["m_hat"][0], 0.01, 0.99)
    phi = g1 - g0 + d * (y - g1) / m - (1 - d) * (y - g0) / (1 - m)
    theta = phi.mean()
    assert model.coef_ == pytest.approx(theta, rel=1e-10)
    assert model.se_ == pytest.approx(_cluster_se(phi - theta, -1.0, clusters), rel=1e-10)
    groups = X[:, 3] > 0
    t = model.group_ate(groups, ["low", "high"]).set_index("term")
    assert t.loc["high", "estimate"] == pytest.approx(phi[groups].mean(), rel=1e-10)
    assert t.loc["high − low", "estimate"] == pytest.approx(
        phi[groups].mean() - phi[~groups].mean(), rel=1e-10)


def test_variances_match_their_definitions():
    rng = np.random.default_rng(0)
    psi = rng.standard_normal(400)
    c1, c2 = rng.integers(0, 30, 400), rng.integers(0, 20, 400)
    codes, G = cluster_codes(c1, 400)
    one = cluster_variance(psi, codes, G)
    assert one == pytest.approx(_cluster_se(psi, 1.0, c1) ** 2, rel=1e-12)
    iid = cluster_variance(psi, np.arange(400), 400)
    # each observation its own second cluster: V1 + Viid - Viid, floored at max(V1, Viid)
    assert twoway_variance(psi, c1, np.arange(400)) == pytest.approx(max(one, iid), rel=1e-12)
    assert twoway_variance(psi, c1, c2) >= one


# --------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("model", ["plr", "irm"])
def test_recovers_known_effect_with_default_lightgbm(model):
    X, y, d, clusters = design(n=4000, theta=0.5, seed=1)
    kw = {"ml_g": default_learner("regressor", n_estimators=60),
          "ml_m": default_learner("classifier", n_estimators=60)}
    fit = dml(X, y, d, model=model, clusters=clusters, **kw)
    assert abs(fit.coef_ - 0.5) < 4 * fit.se_
    row = fit.tidy("treatment").iloc[0]
    assert list(fit.tidy().columns[:6]) == ["term", "estimate", "std_error", "ci_lower",
                                            "ci_upper", "p_value"]
    assert row["ci_lower"] < 0.5 < row["ci_upper"]


def test_repeated_crossfitting_is_aggregated_by_the_median():
    X, y, d, clusters = design(n=1200, seed=2)
    m = PartiallyLinearDML(ml_g=LinearRegression(), ml_m=LogisticRegression(), n_rep=5,
                    seed=3).fit(X, y, d, clusters=clusters)
    assert len(m.thetas_) == 5 and len(np.unique(m.thetas_)) == 5
    assert m.coef_ == pytest.approx(np.median(m.thetas_))
    assert m.se_ == pytest.approx(median_aggregate(m.thetas_, m.ses_)[1])
    assert not np.array_equal(m.folds_[0], m.folds_[1])


def test_learners_are_cloned_not_fitted():
    X, y, d, clusters = design(n=600)
    ml_g, ml_m = LinearRegression(), LogisticRegression()
    AIPW(ml_g=ml_g, ml_m=ml_m).fit(X, y, d, clusters=clusters)
    assert not hasattr(ml_g, "coef_") and not hasattr(ml_m, "coef_")


def test_folds_keep_clusters_whole_and_balanced():
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(200), rng.integers(1, 60, 200))
    folds = make_folds(len(clusters), 3, clusters=clusters, seed=1)
    per_cluster = {c: set(folds[clusters == c]) for c in np.unique(clusters)}
    assert all(len(s) == 1 for s in per_cluster.values())
    sizes = np.bincount(folds)
    assert sizes.min() > 0.8 * len(clusters) / 3


def test_default_k_is_three_and_configurable():
    X, y, d, clusters = design(n=900)
    assert PartiallyLinearDML().n_folds == 3
    m = PartiallyLinearDML(ml_g=LinearRegression(), ml_m=LogisticRegression(), n_folds=5).fit(
        X, y, d, clusters=clusters)
    assert set(np.unique(m.folds_[0])) == set(range(5))


# --------------------------------------------------------------------------- bad input


def test_constant_treatment_raises():
    X, y, _, _ = design(n=300)
    with pytest.raises(EstimationError, match="treatment d is constant.*both treated and "
                                              "untreated"):
        PartiallyLinearDML().fit(X, y, np.ones(300))


def test_no_overlap_raises_overlap_error():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 2))
    d = (X[:, 0] > 0).astype(float)  # the treatment is a deterministic function of X
    y = d + X[:, 0] + rng.standard_normal(1000)
    with pytest.raises(OverlapError, match="No overlap.*Drop controls that determine"):
        AIPW(ml_g=LinearRegression(), ml_m=LogisticRegression(C=1e6)).fit(X, y, d)


@pytest.mark.parametrize("where", ["features", "outcome"])
def test_nan_raises(where):
    X, y, d, _ = design(n=300)
    X, y = X.copy(), y.copy()
    if where == "features":
        X[5, 2] = np.nan
        match = r"NaN or infinite values in features \['x2'\].*Impute"
    else:
        y[7] = np.nan
        match = "NaN or infinite values in the outcome y.*Drop those rows"
    with pytest.raises(EstimationError, match=match):
        PartiallyLinearDML().fit(X, y, d)


def test_fewer_clusters_than_folds_raises():
    X, y, d, _ = design(n=300)
    clusters = np.where(np.arange(300) < 150, "a", "b")
    with pytest.raises(EstimationError, match="Only 2 clusters for n_folds=3.*Use n_folds <= 2"):
        PartiallyLinearDML(ml_g=LinearRegression(), ml_m=LogisticRegression()).fit(
            X, y, d, clusters=clusters)


def test_learner_without_predict_proba_raises():
    X, y, d, _ = design(n=300)
    with pytest.raises(EstimationError, match="ml_m = LinearRegression has no predict_proba.*"
                                              "Use a classifier instead"):
        AIPW(ml_m=LinearRegression()).fit(X, y, d)


def test_non_binary_treatment_in_irm_raises():
    X, y, d, _ = design(n=300)
    with pytest.raises(EstimationError, match="binary 0/1 treatment.*model='plr'"):
        AIPW().fit(X, y, d + 0.5 * X[:, 0])


def test_not_fitted_raises():
    with pytest.raises(NotFittedError, match=r"Call fit\(\) first"):
        PartiallyLinearDML().tidy()


# --------------------------------------------------------------------------- coverage


def test_clustered_design_has_dependence():
    X, y, d, c = clustered_design(np.random.default_rng(0))
    assert X.shape == (2000, 3) and set(np.unique(d)) == {0.0, 1.0} and len(np.unique(c)) == 200


@pytest.mark.slow
def test_monte_carlo_coverage_is_near_95_percent():
    """At least 200 replications: the cluster-robust 95% CI covers the truth ~95% of the time
    (Monte Carlo SE about 1.3 points); intervals assuming independence undercover."""
    reps = coverage_simulation(300, seed=2024)
    coverage = reps["covered"].mean()
    assert 0.92 <= coverage <= 0.98, coverage
    assert reps["covered_iid"].mean() < coverage - 0.03
    assert abs(reps["estimate"].mean() - 0.5) < 4 * reps["estimate"].std() / np.sqrt(300)


def test_linear_adjustment_matches_statsmodels_ols():
    import statsmodels.api as sm

    from analysis.estimators.inference import solve_score
    from analysis.estimators.linear import linear_adjustment_score

    X, y, d, clusters = design(n=800, seed=9)
    X = np.column_stack([X, np.zeros(800)])  # a constant column is harmless
    ols = sm.OLS(y, sm.add_constant(np.column_stack([d, X[:, :4]]))).fit(
        cov_type="cluster", cov_kwds={"groups": clusters})
    sol = solve_score(*linear_adjustment_score(X, y, d), clusters)
    assert sol.theta == pytest.approx(ols.params[1], rel=1e-9)
    # statsmodels adds the (n-1)/(n-k) small-sample factor to the same sandwich
    k = 6
    assert sol.se * np.sqrt((800 - 1) / (800 - k)) == pytest.approx(ols.bse[1], rel=1e-6)
