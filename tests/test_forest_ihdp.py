"""The IHDP benchmark (appendix): the data, and the quick study's tables, facts and checks."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.estimators.cate import METHODS, SHORT
from analysis.result import CHECK_COLUMNS, HEADLINE_COLUMNS
from analysis.studies.ihdp_benchmark import realization
from analysis.studies.ihdp_benchmark_facts import TARGETING_COVERAGE


def test_realizations_are_surface_b_and_reproducible():
    X, y, t, tau = realization(0)
    assert X.shape == (747, 25) and y.shape == t.shape == tau.shape == (747,)
    assert set(np.unique(t)) == {0.0, 1.0}
    assert np.array_equal(realization(0)[1], y)
    assert not np.array_equal(realization(1)[3], tau)  # each realization draws a surface
    assert tau.std() > 0.1  # heterogeneous effects


@pytest.fixture(scope="module")
def result(quick_runs):
    return quick_runs["ihdp_benchmark"].result


def test_every_method_is_scored_on_every_realization(result):
    reps = result.table("realizations")
    n = result.facts["n_realizations"]
    assert sorted(reps["method"].unique()) == sorted(METHODS)
    assert len(reps) == n * len(METHODS)
    summary = result.table("summary").set_index("method")
    assert (summary["pehe_mean"] > 0).all()
    for m in ("causal_forest", "linear_dml", "ols_interactions", "bcf"):
        assert 0 <= summary.loc[m, "cate_coverage_mean"] <= 1, m
    for m in ("dr_learner", "t_learner", "s_learner"):
        assert np.isnan(summary.loc[m, "cate_coverage_mean"]), m


def test_targeting_facts_follow_the_coverage_bar(result):
    f, summary = result.facts, result.table("summary").set_index("method")
    cov = summary["cate_coverage_mean"].dropna()
    for m, c in cov.items():
        assert (f"{SHORT[m]} (" in f["warned_list"]) == (c < TARGETING_COVERAGE), m
    usable = cov[cov >= TARGETING_COVERAGE]
    if len(usable):
        assert f["recommended_key"] == summary.loc[usable.index, "pehe_mean"].idxmin()
        assert f["recommended_meets_coverage"]
    else:
        assert not f["recommended_meets_coverage"]


def test_checks_and_headline(result):
    checks, head = result.table("checks"), result.table("headline")
    assert list(checks.columns) == CHECK_COLUMNS and list(head.columns) == HEADLINE_COLUMNS
    assert checks.loc[checks["role"] == "method", "covered"].all(), checks
    assert not checks.loc[checks["role"] == "counterexample", "covered"].any(), checks
    assert head["reference"].iloc[0] == 0.95
