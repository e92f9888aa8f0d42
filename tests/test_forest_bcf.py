"""The Bayesian causal forest (``fit_cate(method="bcf")``): planted truth, determinism,
bad input."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.errors import EstimationError
from analysis.estimators.cate import fit_cate, score_cate

QUICK = {"num_gfr": 5, "num_mcmc": 100, "num_trees_mu": 50, "num_trees_tau": 25}
"""Few draws and small forests: enough for the tests, seconds per fit."""


def planted(n: int = 1200, seed: int = 0):
    """Confounded binary treatment, effect 1 + x1 (linear), noise SD 1."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    e = 1 / (1 + np.exp(-0.8 * X[:, 0]))
    t = rng.binomial(1, e)
    tau = 1.0 + X[:, 1]
    y = 2 * X[:, 0] + X[:, 2] + tau * t + rng.normal(size=n)
    return X, y, t, tau


@pytest.fixture(scope="module")
def bcf_fit():
    X, y, t, tau = planted()
    return fit_cate(X, y, t, method="bcf", seed=3, **QUICK), tau, (X, y, t)


def test_bcf_recovers_the_planted_ate_and_effects(bcf_fit):
    fit, tau, _ = bcf_fit
    truth = float(tau.mean())
    # the posterior SD of the mean CATE is the ATE's standard error: 4 of them is the band
    assert abs(fit.ate["estimate"] - truth) < 4 * fit.ate["std_error"], fit.ate
    assert fit.ate["ci_lower"] <= fit.ate["estimate"] <= fit.ate["ci_upper"]
    assert 0 < fit.ate["std_error"] < 0.3
    score = score_cate(fit.cate, tau)
    assert np.corrcoef(fit.cate["estimate"], tau)[0, 1] > 0.9, score
    assert score["coverage"] > 0.8, score  # credible intervals cover most true effects
    assert list(fit.tidy()["term"]) == ["Bayesian causal forest (stochtree)"]


def test_bcf_uses_the_cross_fitted_propensity(bcf_fit):
    fit, _, _ = bcf_fit
    assert fit.nuisance["t_name"] in set(fit.nuisance["t_losses"]["learner"])
    assert len(fit.nuisance["m_hat"]) == len(fit.cate)


def test_bcf_is_byte_identical_across_runs(bcf_fit):
    fit, _, (X, y, t) = bcf_fit
    again = fit_cate(X, y, t, method="bcf", seed=3, nuisance=fit.nuisance, **QUICK)
    assert again.cate.equals(fit.cate)
    assert again.ate == fit.ate
    other = fit_cate(X, y, t, method="bcf", seed=4, nuisance=fit.nuisance, **QUICK)
    assert not other.cate.equals(fit.cate)  # the seed reaches the sampler


@pytest.mark.parametrize("params,match", [
    ({"num_mcmc": 5}, "num_mcmc=5 posterior draws are too few"),
    ({"n_estimators": 100}, r"bcf does not know the settings \['n_estimators'\]"),
])
def test_bcf_bad_settings_are_named(params, match):
    X, y, t, _ = planted(n=300, seed=1)
    with pytest.raises(EstimationError, match=match):
        fit_cate(X, y, t, method="bcf", **params)


def test_a_bcf_fit_can_cross_processes_without_its_sampler(bcf_fit):
    """Worker processes return fits by pickling; stochtree's forests cannot be pickled."""
    import pickle

    fit, _, (X, _, _) = bcf_fit
    again = pickle.loads(pickle.dumps(fit))
    assert again.cate.equals(fit.cate) and again.ate == fit.ate and again.model is None
    assert len(fit.effect(X[:5], propensity=fit.nuisance["m_hat"][:5])) == 5
    with pytest.raises(EstimationError, match="crossed processes without its sampler"):
        again.effect(X[:5], propensity=fit.nuisance["m_hat"][:5])
