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
    assert {"planted truth", "Monte Carlo coverage", "negative control"} <= kinds
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


def test_report_quotes_carry_the_reports_own_labels(result):
    """The report's comparison table: LightGBM 0.0359 [-0.64, 1.87], ridge 2.3288
    [-6.32, 9.36] (an earlier version swapped them)."""
    rep = result.table("report").set_index("estimator")
    assert rep.loc["g-computation, LightGBM"].tolist() == [0.0359, -0.64, 1.87]
    assert rep.loc["g-computation, ridge"].tolist() == [2.3288, -6.32, 9.36]


def test_negative_control_passes_and_the_naive_comparison_fails_it(result):
    """The plays of days t-7..t-4 cannot respond to day t: AIPW's interval contains 0,
    the raw comparison's does not (its confounding shows up on the past too)."""
    nc = result.table("negative_control").set_index("method")
    assert nc.loc["aipw", "ci_lower"] <= 0 <= nc.loc["aipw", "ci_upper"]
    assert nc.loc["naive", "ci_lower"] > 0
    checks = result.table("checks")
    rows = checks[checks["kind"] == "negative control"].set_index("role")
    assert bool(rows.loc["method", "covered"]) and not bool(rows.loc["counterexample",
                                                                     "covered"])


def test_targeting_rests_on_segment_differences(result):
    """The advice to target the least active users needs their effect to exceed the most
    active users' (a Holm-adjusted contrast), not to differ from zero."""
    con = result.table("segment_contrasts")
    seg = result.table("segments")
    pairs = sum(k * (k - 1) // 2 for k in seg.groupby("family_key").size())
    assert len(con) == pairs and con["n_tests"].eq(pairs).all()
    assert (con["p_holm"] >= con["p_value"]).all()
    f = result.facts
    assert f["rec_target_light"] == (f["light_minus_heavy_p_holm"] < 0.05
                                     and f["light_minus_heavy"] > 0)
    light = con[(con["family_key"] == "activity")
                & (con["term"] == "lightest third − heaviest third")].iloc[0]
    act = seg[seg["family_key"] == "activity"].set_index("term")["estimate"]
    assert light["estimate"] == pytest.approx(act["lightest third"] - act["heaviest third"])


def test_sensitivity_bounds_widen_with_strength(result):
    sens = result.table("sensitivity")
    base = sens.iloc[0]
    assert base["theta_lower"] == pytest.approx(base["estimate"])
    assert base["theta_upper"] == pytest.approx(base["estimate"])
    for r in sens.iloc[1:].itertuples():
        assert r.theta_lower <= base["estimate"] <= r.theta_upper
        assert r.ci_bound_lower <= r.theta_lower
    assert 0 <= result.facts["sens_rva"] <= result.facts["sens_rv"] <= 1
    grid = result.table("sensitivity_grid")
    assert len(grid) == 31 * 31 and grid["theta_lower"].iloc[0] == pytest.approx(
        base["estimate"])


def _band(reps: int, nominal: float = 0.95) -> tuple[float, float]:
    """nominal ± 3 Monte Carlo SEs of a coverage share over ``reps`` replications: a
    calibrated interval falls outside with probability about 0.3%."""
    half = 3 * np.sqrt(nominal * (1 - nominal) / reps)
    return nominal - half, nominal + half


@pytest.mark.slow
def test_monte_carlo_coverage_of_the_headline_pipeline():
    """The chapter's headline pipeline (learners chosen by cross-validated loss in every
    panel, one repetition, clipping at 0.01, user bootstrap) on 40 simulated panels:
    AIPW's analytic and bootstrap intervals and the MSM's cover the design's true ATE at
    a rate within 3 Monte Carlo SEs of 95% (the band is derived from the number of
    replications, not picked); the naive comparison almost never does."""
    n = 40
    reps, summary, truth = coverage_study(reps=n, n_users=300, n_days=25, horizon=7,
                                          n_folds=3, n_boot=100, seed=20200712, clip=0.01)
    cov = summary.set_index("interval")["coverage"]
    lo, hi = _band(n)
    assert lo <= cov["AIPW, analytic cluster SE"] <= hi, summary
    assert lo <= cov["AIPW, user-cluster bootstrap"] <= hi, summary
    assert lo <= cov["MSM (stabilised weights), cluster SE"] <= hi, summary
    assert cov["Naive difference, user-cluster bootstrap"] < 0.2
    assert abs(reps["aipw"].mean() - truth) < 3 * reps["aipw"].std() / np.sqrt(len(reps))
    assert set(reps["selected_m"]) | set(reps["selected_g"])  # learners were chosen
