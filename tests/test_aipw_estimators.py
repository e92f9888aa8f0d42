"""The AIPW toolkit: learner selection, the vectorised bootstrap, g-methods, heterogeneity.

Checked against plain re-implementations (the bootstrap loop, explicit ridge refits,
statsmodels' WLS and multiple testing, EconML's DRTester) and against known truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.linear_model import LinearRegression, LogisticRegression

from analysis.errors import EstimationError, OverlapError
from analysis.estimators.aipw import AIPW
from analysis.estimators.bootstrap import cluster_bootstrap, loop_bootstrap, percentile_interval
from analysis.estimators.gmethods import RidgeGComputation, msm, stabilized_weights
from analysis.estimators.heterogeneity import blp, gates, holm, segment_effects
from analysis.estimators.linear import normal_equations


def cross_section(n: int = 1500, seed: int = 0, tau: float = 1.0):
    """A small cross-sectional design with a known ATE, confounding and effect
    heterogeneity in x0: tau(x) = tau + 0.5 x0."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    m = 1 / (1 + np.exp(-(0.8 * X[:, 0] - 0.5 * X[:, 1])))
    d = (rng.random(n) < m).astype(float)
    te = tau + 0.5 * X[:, 0]
    y = X[:, 0] + np.sin(X[:, 1]) + 0.5 * X[:, 2] + te * d + rng.normal(size=n)
    return X, y, d, te, rng.integers(0, 150, n)


def test_auto_selection_works_on_a_small_cross_section():
    X, y, d, te, _ = cross_section(1500)
    model = AIPW(ml_m="auto", ml_g="auto", seed=1).fit(X, y, d)
    sel = model.selection_m_.set_index("learner")
    assert set(sel.index) == {"linear", "lgbm-small", "lgbm-large"}
    assert sel.loc["lgbm-large", "log_loss"] > sel.loc["linear", "log_loss"]  # over-fits
    assert sel.loc["lgbm-large", "max_weight"] > 10 * sel.loc["linear", "max_weight"]
    assert model.selected_["ml_m"] != "lgbm-large"
    assert abs(model.coef_ - te.mean()) < 3 * model.se_
    chosen = model.combination(model.selected_["ml_m"], model.selected_["ml_g"])
    assert chosen["estimate"] == pytest.approx(model.coef_, abs=1e-12)
    assert chosen["std_error"] == pytest.approx(model.se_, abs=1e-12)


def test_rescore_without_clipping_matches_the_plain_score():
    X, y, d, _, c = cross_section(1200, seed=2)
    model = AIPW(ml_m=LogisticRegression(), ml_g=LinearRegression(), seed=2).fit(
        X, y, d, clusters=c)
    m, g0, g1 = (model.nuisance_[k][0] for k in ("m_hat", "g0_hat", "g1_hat"))
    mc = np.clip(m, 1e-6, 1 - 1e-6)
    plain = np.mean(g1 - g0 + d * (y - g1) / mc - (1 - d) * (y - g0) / (1 - mc))
    assert model.rescore(clip=1e-6)["estimate"] == pytest.approx(plain, rel=1e-12)
    trimmed = model.rescore(clip=0.01, trim=0.2)
    assert trimmed["n_used"] == int(((m >= 0.2) & (m <= 0.8)).sum())


def test_overlap_error_names_how_many_rows():
    X, y, d, _, _ = cross_section(600, seed=3)
    d = (X[:, 0] > 0).astype(float)  # the treatment is a function of X: no overlap
    with pytest.raises(OverlapError, match=r"No overlap: [\d,]+ of 600 rows .*\(trim those "
                                           r"rows"):
        AIPW(ml_m=LogisticRegression(C=1e6), ml_g=LinearRegression()).fit(X, y, d)


def test_constant_treatment_in_a_fold_is_named():
    X, y, _, _, _ = cross_section(300, seed=4)
    clusters = np.repeat(np.arange(3), 100)
    d = (clusters == 0).astype(float)  # only one cluster is ever treated
    with pytest.raises(EstimationError, match="constant"):
        AIPW(ml_m=LogisticRegression(), ml_g=LinearRegression(), n_folds=3).fit(
            X, y, d, clusters=clusters)


def test_no_treated_or_no_control_rows_and_nan_covariates():
    X, y, d, _, _ = cross_section(300, seed=5)
    with pytest.raises(EstimationError, match="constant"):
        AIPW().fit(X, y, np.zeros(300))
    X[3, 2] = np.nan
    with pytest.raises(EstimationError, match=r"NaN or infinite values in features \['x2'\]"):
        AIPW().fit(X, y, d)


# ------------------------------------------------------------------------ bootstrap


def test_vectorised_bootstrap_equals_the_loop_for_the_same_draws():
    rng = np.random.default_rng(0)
    n = 2000
    frame = pd.DataFrame({"user": rng.integers(0, 60, n), "psi": rng.normal(size=n),
                          "seg": rng.integers(0, 3, n)})
    boot = cluster_bootstrap(frame["user"].to_numpy(), 40, seed=11)
    fast = boot.mean(frame["psi"].to_numpy())
    slow = loop_bootstrap(frame, "user", lambda f: f["psi"].mean(), boot.draws)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    fast_seg = boot.mean(frame["psi"].to_numpy(), frame["seg"].to_numpy())
    slow_seg = loop_bootstrap(frame, "user",
                              lambda f: f.groupby("seg")["psi"].mean().to_numpy(), boot.draws)
    np.testing.assert_allclose(fast_seg, slow_seg, rtol=0, atol=1e-12)
    lo, hi = percentile_interval(fast)
    assert lo < frame["psi"].mean() < hi


def test_bootstrap_needs_enough_clusters():
    with pytest.raises(EstimationError, match="Only 5 clusters: a cluster bootstrap needs at "
                                              "least 20"):
        cluster_bootstrap(np.repeat(np.arange(5), 10), 100, 0)


def test_ridge_bootstrap_refits_exactly():
    rng = np.random.default_rng(1)
    n = 900
    X, d, u = rng.normal(size=(n, 3)), rng.integers(0, 2, n), rng.integers(0, 40, n)
    y = X @ [1.0, -1.0, 0.5] + 0.7 * d + rng.normal(size=n)
    g = RidgeGComputation(alpha=2.0).fit(X, y, d)
    boot = cluster_bootstrap(u, 25, seed=3)
    fast = g.bootstrap(X, y, d, boot)
    for b in range(5):
        idx = np.concatenate([np.flatnonzero(boot.codes == c) for c in boot.draws[b]])
        Z = g._design(X[idx])
        coef = {}
        for arm in (0, 1):
            keep = d[idx] == arm
            A, v = normal_equations(Z[keep], y[idx][keep, None])
            coef[arm] = np.linalg.solve(A + g._penalty(Z.shape[1]), v)[:, 0]
        assert fast[b] == pytest.approx(np.mean(Z @ (coef[1] - coef[0])), abs=1e-10)


def test_msm_equals_weighted_least_squares():
    X, y, d, _, c = cross_section(800, seed=6)
    m = 1 / (1 + np.exp(-(0.8 * X[:, 0] - 0.5 * X[:, 1])))
    w = stabilized_weights(d, m)
    ours = msm(y, d, w, c)
    wls = sm.WLS(y, sm.add_constant(d), weights=w).fit()
    assert ours["estimate"] == pytest.approx(wls.params[1], rel=1e-10)
    assert ours["std_error"] > 0


# ------------------------------------------------------------------------ heterogeneity


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, 0.2, 0.001])
    assert np.allclose(holm(p), multipletests(p, method="holm")[1])


def test_segment_effects_are_score_means_with_corrected_intervals():
    rng = np.random.default_rng(2)
    psi, g, u = rng.normal(size=3000), rng.integers(0, 3, 3000), rng.integers(0, 100, 3000)
    t = segment_effects(psi, g, ["a", "b", "c"], clusters=u,
                        boot=cluster_bootstrap(u, 200, 1), n_tests=6)
    assert np.allclose(t["estimate"], [psi[g == h].mean() for h in range(3)])
    assert (t["ci_lower_adj"] < t["ci_lower"]).all()
    assert (t["boot_lower_adj"] < t["boot_lower"]).all()


def test_blp_and_gates_find_planted_heterogeneity():
    X, y, d, te, c = cross_section(4000, seed=7)
    model = AIPW(ml_m=LogisticRegression(), ml_g=LinearRegression(), seed=7).fit(
        X, y, d, clusters=c)
    b = blp(model.psi_b_[0], te, c).set_index("term")  # the true CATE as the proxy
    assert abs(b.loc["beta2", "estimate"] - 1) < 3 * b.loc["beta2", "std_error"]
    assert b.loc["beta2", "p_one_sided"] < 0.01
    noise = np.random.default_rng(0).normal(size=4000)
    assert blp(model.psi_b_[0], noise, c).set_index("term").loc["beta2", "p_value"] > 0.01
    gt = gates(model.psi_b_[0], te, c)
    assert gt["estimate"].iloc[-1] > 0 and gt["ci_lower"].iloc[-1] > 0  # top minus bottom


def test_blp_matches_econml_drtester_on_the_same_nuisances():
    """EconML's DRTester, given our folds and the same learners, computes the same doubly
    robust outcomes, and its BLP slope equals ours."""
    from econml.validate import DRTester

    X, y, d, te, _ = cross_section(1500, seed=8)
    model = AIPW(ml_m=LogisticRegression(), ml_g=LinearRegression(), n_folds=3,
                 seed=8).fit(X, y, d)
    folds = model.folds_[0]
    splits = [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(3)]

    class Proxy:  # a CATE model whose effect is our proxy
        def effect(self, X, T0, T1):
            return X[:, 0] * 0.5 + 1.0

    tester = DRTester(model_regression=LinearRegression(), model_propensity=LogisticRegression(),
                      cate=Proxy(), cv=splits).fit_nuisance(X, d.astype(int), y)
    np.testing.assert_allclose(tester.dr_val_[:, 0], model.psi_b_[0], rtol=0, atol=1e-8)
    theirs = tester.evaluate_blp(X).params[0]
    ours = blp(model.psi_b_[0], Proxy().effect(X, 0, 1)).set_index("term")
    assert ours.loc["beta2", "estimate"] == pytest.approx(theirs, rel=1e-8)
