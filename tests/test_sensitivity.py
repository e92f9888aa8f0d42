"""Omitted-variable sensitivity bounds: against DoubleML, a plain-numpy version and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.linear_model import LinearRegression, LogisticRegression

from analysis.errors import EstimationError
from analysis.estimators.dml import AIPW, PartiallyLinearDML
from analysis.estimators.sensitivity import (
    robustness_value,
    sensitivity_benchmark,
    sensitivity_bounds,
    sensitivity_grid,
)


def _data(n: int = 1500, seed: int = 3, binary: bool = True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    p = 1 / (1 + np.exp(-(0.6 * X[:, 0] - 0.4 * X[:, 1])))
    d = (rng.random(n) < p).astype(float) if binary else X[:, 0] + rng.normal(size=n)
    y = 0.5 * d + X[:, 0] + 0.5 * X[:, 2] + rng.normal(size=n)
    groups = rng.integers(0, 60, n)
    return pd.DataFrame(X, columns=["a", "b", "c"]), y, d, groups


def _plr(X, y, d, n_rep=1, clusters=None):
    return PartiallyLinearDML(ml_g=LinearRegression(), ml_m=LinearRegression(), n_folds=3,
                              n_rep=n_rep, seed=1).fit(X, y, d, clusters=clusters)


def _aipw(X, y, d, n_rep=1, clusters=None):
    return AIPW(ml_g=LinearRegression(), ml_m=LogisticRegression(), n_folds=3, n_rep=n_rep,
                seed=1).fit(X, y, d, clusters=clusters)


def _doubleml(model, X, y, d):
    """DoubleML on the same data with our cross-fitted nuisances as external predictions."""
    import doubleml as dml

    df = X.assign(y=y, d=d)
    data = dml.DoubleMLData(df, y_col="y", d_cols="d", x_cols=list(X.columns))
    nu = model.nuisance_
    if isinstance(model, PartiallyLinearDML):
        obj = dml.DoubleMLPLR(data, LinearRegression(), LinearRegression(), n_folds=3,
                              n_rep=model.n_rep)
        preds = {"ml_l": nu["g_hat"].T, "ml_m": nu["m_hat"].T}
    else:
        obj = dml.DoubleMLIRM(data, LinearRegression(), LogisticRegression(), n_folds=3,
                              n_rep=model.n_rep)
        preds = {"ml_g0": nu["g0_hat"].T, "ml_g1": nu["g1_hat"].T, "ml_m": nu["m_hat"].T}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obj.fit(external_predictions={"d": preds})
    return obj


@pytest.mark.parametrize("kind", ["plr", "aipw"])
@pytest.mark.parametrize("cf", [(0.03, 0.03, 1.0), (0.1, 0.05, 0.5), (0.0, 0.2, -1.0)])
def test_matches_doubleml(kind, cf):
    X, y, d, _ = _data(binary=True)
    model = (_plr if kind == "plr" else _aipw)(X, y, d)
    ref = _doubleml(model, X, y, d)
    assert ref.coef[0] == pytest.approx(model.coef_, abs=1e-10)
    cf_y, cf_d, rho = cf
    ref.sensitivity_analysis(cf_y=cf_y, cf_d=cf_d, rho=rho, level=0.95)
    sp = ref.sensitivity_params
    ours = sensitivity_bounds(model, cf_y, cf_d, rho, level=0.95).iloc[0]
    for ours_key, (group, side) in {"theta_lower": ("theta", "lower"),
                                    "theta_upper": ("theta", "upper"),
                                    "se_lower": ("se", "lower"), "se_upper": ("se", "upper"),
                                    "ci_bound_lower": ("ci", "lower"),
                                    "ci_bound_upper": ("ci", "upper")}.items():
        assert ours[ours_key] == pytest.approx(sp[group][side][0], rel=1e-8, abs=1e-10), ours_key
    # DoubleML finds RV/RVa with a bounded scalar minimiser (about 1e-5 accurate)
    assert ours["rv"] == pytest.approx(sp["rv"][0], abs=2e-4)
    assert ours["rva"] == pytest.approx(sp["rva"][0], abs=2e-4)


def test_matches_doubleml_with_repetitions():
    """Bounds on theta and the confidence bounds are medians over repetitions, as in DoubleML."""
    X, y, d, _ = _data()
    model = _aipw(X, y, d, n_rep=3)
    ref = _doubleml(model, X, y, d)
    ref.sensitivity_analysis(cf_y=0.05, cf_d=0.05)
    ours = sensitivity_bounds(model, 0.05, 0.05).iloc[0]
    sp = ref.sensitivity_params
    assert ours["theta_lower"] == pytest.approx(sp["theta"]["lower"][0], rel=1e-8)
    assert ours["ci_bound_upper"] == pytest.approx(sp["ci"]["upper"][0], rel=1e-8)


def test_benchmark_matches_doubleml():
    X, y, d, _ = _data(binary=False)
    model = _plr(X, y, d)
    ours = sensitivity_benchmark(model, X, y, d, ["a"]).iloc[0]
    short = _plr(X.drop(columns=["a"]), y, d)
    ref_long, ref_short = _doubleml(model, X, y, d), _doubleml(short, X.drop(columns=["a"]), y, d)
    from doubleml.utils.gain_statistics import gain_statistics

    g = gain_statistics(dml_long=ref_long, dml_short=ref_short)
    for key in ("cf_y", "cf_d", "rho", "delta_theta"):
        assert ours[key] == pytest.approx(float(np.ravel(g[key])[0]), rel=1e-8, abs=1e-12), key
    assert ours["cf_y"] > 0.05  # "a" drives the outcome: leaving it out costs a lot


def _numpy_plr_bounds(y, d, g, m, cf_y, cf_d, rho, level, groups):
    """Plain-numpy PLR bounds with a one-way cluster-robust variance."""
    v = d - m
    theta = np.sum((y - g) * v) / np.sum(v * v)
    J = -np.mean(v * v)
    psi = (-v * v * theta + (y - g) * v) / J
    eps2 = (y - g - theta * v) ** 2
    sigma2, nu2 = eps2.mean(), 1 / np.mean(v * v)
    S = np.sqrt(sigma2 * nu2)
    psi_S = (sigma2 * (nu2 - v * v * nu2**2) + nu2 * (eps2 - sigma2)) / (2 * S)
    C = abs(rho) * np.sqrt(cf_y * cf_d / (1 - cf_d))
    out = {}
    for side, s in (("lower", -1), ("upper", 1)):
        phi = psi + s * C * psi_S
        sums = pd.Series(phi).groupby(groups).sum().to_numpy()
        G = len(sums)
        se = np.sqrt(G / (G - 1) * np.sum(sums**2)) / len(y)
        out[side] = (theta + s * C * S, theta + s * C * S + s * norm.ppf(level) * se)
    return out


def test_matches_numpy_clustered():
    X, y, d, groups = _data(binary=False)
    model = _plr(X, y, d, clusters=groups)
    ours = sensitivity_bounds(model, 0.04, 0.02, 0.8, level=0.9).iloc[0]
    ref = _numpy_plr_bounds(y, d, model.nuisance_["g_hat"][0], model.nuisance_["m_hat"][0],
                            0.04, 0.02, 0.8, 0.9, groups)
    assert ours["theta_lower"] == pytest.approx(ref["lower"][0], rel=1e-10)
    assert ours["ci_bound_lower"] == pytest.approx(ref["lower"][1], rel=1e-10)
    assert ours["ci_bound_upper"] == pytest.approx(ref["upper"][1], rel=1e-10)
    iid = sensitivity_bounds(model, 0.04, 0.02, 0.8, level=0.9, clusters=None).iloc[0]
    assert iid["theta_lower"] == ours["theta_lower"]
    assert iid["se_lower"] != ours["se_lower"]


def test_rv_closed_form_and_grid():
    X, y, d, _ = _data()
    model = _aipw(X, y, d)
    rv, rva = robustness_value(model)
    from analysis.estimators.sensitivity import sensitivity_elements

    el = sensitivity_elements(model)
    a = (el.thetas[0] / el.max_bias[0]) ** 2
    assert rv == pytest.approx((np.sqrt(a * a + 4 * a) - a) / 2, abs=1e-8)
    assert 0 <= rva < rv
    at_rv = sensitivity_bounds(model, rv, rv).iloc[0]
    assert at_rv["theta_lower"] == pytest.approx(0.0, abs=1e-8)
    grid = sensitivity_grid(model, size=5)
    assert len(grid) == 25
    corner = grid[(grid.cf_d == 0) & (grid.cf_y == 0)].iloc[0]
    assert corner["theta_lower"] == pytest.approx(model.coef_)
    assert (grid["theta_lower"] <= corner["theta_lower"] + 1e-12).all()


def test_bad_input():
    X, y, d, _ = _data()
    model = _aipw(X, y, d)
    with pytest.raises(EstimationError, match="cf_d=1.0 must lie in"):
        sensitivity_bounds(model, 0.1, 1.0)
    with pytest.raises(EstimationError, match="rho=2.*correlation"):
        sensitivity_bounds(model, rho=2.0)
    with pytest.raises(EstimationError, match="not fitted yet"):
        sensitivity_bounds(AIPW())
    with pytest.raises(EstimationError, match="not in X"):
        sensitivity_benchmark(model, X, y, d, ["zzz"])
    with pytest.raises(EstimationError, match="cols is empty"):
        sensitivity_benchmark(model, X, y, d, [])
