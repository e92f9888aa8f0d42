"""The aipw_panel study: its result on the quick profile, its configuration, and the Monte
Carlo coverage of its intervals (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.config import load_config
from analysis.errors import ConfigError
from analysis.result import CHECK_COLUMNS, TIDY_COLUMNS
from analysis.studies.aipw_panel_parts import coverage_study


@pytest.fixture(scope="module")
def result(quick_runs):
    return quick_runs["aipw_panel"].result


def test_estimates_sit_beside_the_truth(result):
    est = result.table("estimates").set_index("method")
    assert list(result.tidy().columns) == TIDY_COLUMNS
    truth = result.facts["truth_ate"]
    assert truth > 0 and est["truth"].eq(truth).all()
    aipw = est.loc["aipw"]
    assert abs(aipw["estimate"] - truth) < 3 * aipw["std_error"]
    assert est.loc["naive", "estimate"] > truth + 3 * est.loc["naive", "std_error"]  # confounded
    assert 0.7 < aipw["boot_se"] / aipw["std_error"] < 1.4  # bootstrap and analytic agree


def test_learners_are_chosen_and_every_combination_is_reported(result):
    comb = result.table("combinations")
    assert len(comb) == 9 and comb["selected"].sum() == 1
    prop = result.table("learners_propensity")
    assert prop["selected"].sum() == 1
    assert result.facts["selected_m"] == prop.loc[prop["log_loss"].idxmin(), "learner"]


def test_segments_have_truth_and_corrected_intervals(result):
    seg = result.table("segments")
    assert seg["n_tests"].eq(len(seg)).all() and "truth" in seg
    assert (seg["boot_lower_adj"] <= seg["boot_lower"]).all()
    assert (seg["p_holm"] >= seg["p_value"]).all()


def test_checks_and_headline(result):
    checks = result.table("checks")
    assert list(checks.columns) == CHECK_COLUMNS
    kinds = set(checks["kind"])
    assert {"planted truth", "Monte Carlo coverage"} <= kinds
    assert result.table("headline")["unit"].iloc[0] == "plays"


def test_facts_drive_the_wording(result):
    f = result.facts
    assert f["aipw_significant"] == bool(f["aipw_lo"] > 0 or f["aipw_hi"] < 0)
    assert f["n_days"] > f["n_panel_days"]


@pytest.mark.parametrize("text,match", [
    ("[studies.aipw_panel]\nclip = 0.6\n", "clip must be below 0.5"),
    ("[studies.aipw_panel]\nn_days = 9\n", r"'n_days' .* is 9; it must be at least 11"),
    ("[studies.aipw_panel]\nn_users = 10\n", r"'n_users' .* is 10; it must be at least 60"),
    ("[studies.aipw_panel]\nhorizon = 14\nn_days = 14\n", r"n_days = 14 is too short for "
                                                           r"horizon = 14"),
    ("[studies.aipw_panel]\nmatrix = \"huge\"\n", r"'matrix' .* is 'huge'; use one of"),
])
def test_bad_settings(tmp_path, text, match):
    path = tmp_path / "analysis.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path, profile="default")


@pytest.mark.slow
def test_monte_carlo_coverage_of_the_aipw_intervals():
    """200 simulated panels: both AIPW intervals cover the design's true ATE in 93-97% of
    them; the naive comparison almost never does."""
    reps, summary, truth = coverage_study(reps=200, n_users=400, n_days=30, horizon=7,
                                          n_folds=3, n_boot=200, seed=20200712)
    cov = summary.set_index("interval")["coverage"]
    assert 0.93 <= cov["AIPW, analytic cluster SE"] <= 0.97, summary
    assert 0.93 <= cov["AIPW, user-cluster bootstrap"] <= 0.97, summary
    assert cov["Naive difference, user-cluster bootstrap"] < 0.2
    assert abs(reps["aipw"].mean() - truth) < 3 * reps["aipw"].std() / np.sqrt(len(reps))
