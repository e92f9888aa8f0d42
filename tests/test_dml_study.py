"""The dml_genre study end to end on a small synthetic dataset, its graph check and settings."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from analysis.errors import ConfigError, GraphError
from analysis.estimators.adjustment import backdoor_check
from analysis.report import dml_genre as rep
from analysis.report.summaries import render_template
from analysis.studies import dml_genre, dml_genre_parts
from analysis.studies.movielens import MovieLensConfig
from tests.conftest import ROOT

SMALL = dml_genre.Config(source="synthetic", synthetic_users=150, synthetic_items=1000,
                         synthetic_ratings=12_000, n_rep=1, n_estimators=30, rf_trees=5,
                         comparison_max_rows=5000, coverage_reps=40, headline_reps=3,
                         headline_users=60, headline_movies=40, headline_ratings=1500,
                         report_sample=5000)


@pytest.fixture(scope="module")
def result():
    return dml_genre.run(SMALL, ROOT)


def test_estimates_are_tidy_and_near_the_planted_truth(result):
    t = result.tidy()
    assert list(t["term"]) == ["naive", "ols", "plr", "aipw"]
    truth = result.facts["truth_ate"]
    aipw = t.set_index("term").loc["aipw"]
    assert abs(aipw["estimate"] - truth) < 4 * aipw["std_error"]
    assert (t["ci_lower"] < t["estimate"]).all() and (t["estimate"] < t["ci_upper"]).all()


def test_two_way_clustering_is_the_widest(result):
    se = result.table("standard_errors")
    assert (se["se_twoway"] >= se[["se_user", "se_movie"]].max(axis=1) - 1e-12).all()
    assert (se["ratio_user"] > 0).all()


def test_segments_have_groups_differences_and_truth(result):
    seg = result.table("segments")
    assert seg["segment_key"].nunique() == 4
    assert (seg.groupby("segment_key")["kind"].apply(list)
            == [["group", "group", "difference"]] * 4).all()
    assert np.isfinite(seg["truth"]).all()


def test_adjustment_compares_report_style_and_justified(result):
    adj = result.table("adjustment")
    assert set(adj["set"]) == {"report", "all", "justified"}
    just = adj[(adj["set"] == "justified") & (adj["term"] == "plr")]["estimate"].item()
    assert just == pytest.approx(result.facts["plr"])
    sets = result.table("adjustment_sets").set_index("set")["valid"]
    assert sets["justified"] and not sets["report"] and not sets["all"]


def test_tables_for_the_chapter(result):
    assert set(result.table("model_comparison")["model"]) == {
        "Linear", "Ridge", "Lasso", "Random forest", "Gradient boosting (LightGBM)"}
    assert result.table("overlap")[["treated", "untreated"]].sum().round(6).tolist() == [1, 1]
    assert len(result.table("coverage_reps")) == 40
    assert len(result.table("balance")) == result.facts["n_justified"]


@pytest.mark.parametrize("name", ["leakage", "dependence", "truth", "segments", "overlap",
                                  "sensitivity", "headline"])
def test_paragraphs_render_from_facts(result, name):
    text = rep.paragraph(result, name).data
    assert len(text.split()) > 15 and "{{" not in text


def test_summary_renders(result):
    text = render_template(dml_genre.SUMMARY_TEMPLATE, result.facts)
    assert "AIPW" in text and "planted" in text


def test_figures_draw(result):
    for fig in (rep.fig_graph, rep.fig_overlap, rep.fig_balance, rep.fig_estimates,
                rep.fig_adjustment, rep.fig_segments, rep.fig_coverage, rep.fig_sensitivity):
        assert fig(result).axes
    for tbl in (rep.tbl_sensitivity, rep.tbl_sensitivity_benchmarks, rep.tbl_headline_coverage):
        assert "|" in tbl(result).data


def test_heavy_segment_counts_only_earlier_ratings(result):
    """A user's first rating has no earlier ratings, so it is never "heavy" (while the
    median earlier count is positive), however many ratings the user gives later; a
    segment built from each user's total count would put it among the heavy ones."""
    from analysis.features.movielens import build_features
    from analysis.studies.movielens import load_movielens_for

    data = load_movielens_for(SMALL, ROOT)
    X = build_features(data.ratings, data.items)
    heavy = dml_genre._segment_masks(X)["heavy"]
    first = X["user_n_prior"].to_numpy() == 0
    assert result.facts["heavy_prior_median"] > 0 and first.any()
    assert not heavy[first].any()
    totals = data.ratings.groupby("user")["item"].transform("size").to_numpy()
    assert (totals[first] >= np.median(totals)).any()  # the old definition would differ


def test_standard_errors_on_a_report_sized_sample(result):
    s = result.table("report_sample_ses").set_index("term")
    assert list(s.index) == ["plr", "aipw"] and (s["rows"] == SMALL.report_sample).all()
    assert result.facts["sample_rows"] == SMALL.report_sample
    assert not result.facts["sample_is_all"]
    assert (s[["ratio_user", "ratio_twoway"]] > 0).all().all()
    assert result.facts["sample_ratio_twoway_plr"] == pytest.approx(s.loc["plr", "ratio_twoway"])


def test_sensitivity_bounds_benchmarks_and_facts(result):
    t = result.table("sensitivity")
    f = result.facts
    assert list(t["term"])[:2] == ["plr", "aipw"]
    assert set(t["scenario"]) == {"cf_y = cf_d = 0.03", "as strong as release year",
                                  "as strong as genre taste"}
    assert (t["theta_lower"] <= t["estimate"] + 1e-12).all()
    assert (t["estimate"] <= t["theta_upper"] + 1e-12).all()
    assert (t["ci_bound_lower"] <= t["theta_lower"]).all()
    assert ((t["rv"] >= 0) & (t["rv"] <= 1) & (t["rva"] <= t["rv"] + 1e-12)).all()
    bench = result.table("sensitivity_benchmarks")
    assert list(bench["benchmark"]) == ["release year", "genre taste"]
    assert ((bench[["cf_y", "cf_d"]] >= 0) & (bench[["cf_y", "cf_d"]] <= 1)).all().all()
    assert f["sens_crosses"] == bool(f["sens_lo"] <= 0 <= f["sens_hi"])
    for key in ("year", "taste"):
        assert f[f"sens_{key}_crosses"] == bool(f[f"sens_{key}_lo"] <= 0 <= f[f"sens_{key}_hi"])
        assert f[f"sens_{key}_cf_d"] <= 0.99
    assert f["sens_covers_truth"] == bool(f["sens_lo"] <= f["truth_ate"] <= f["sens_hi"])
    grid = result.table("sensitivity_grid")
    corner = grid[(grid["cf_d"] == 0) & (grid["cf_y"] == 0)]
    assert corner["theta_lower"].item() == pytest.approx(f["aipw"])


def test_headline_coverage_facts_flag_undercoverage():
    """The verdict follows the Monte Carlo error: 80 of 100 is more than two MC SEs
    (0.04) below 95%; 94 of 100 is not; all of 6 covering has the floor SE 0.5/6."""
    import pandas as pd

    from analysis.studies.dml_genre_checks import headline_coverage_facts

    def reps(k: int, n: int) -> pd.DataFrame:
        cov = np.arange(n) < k
        return pd.DataFrame({"estimate": np.full(n, 0.3), "se": 0.1, "se_user": 0.1,
                             "covered": cov, "covered_user": cov})

    low = headline_coverage_facts(reps(80, 100))
    assert low["hl_undercovers"] and low["hl_mc_se"] == pytest.approx(0.04)
    assert not headline_coverage_facts(reps(94, 100))["hl_undercovers"]
    few = headline_coverage_facts(reps(6, 6))
    assert few["hl_mc_se"] == pytest.approx(0.5 / 6) and few["hl_coarse"]
    assert not few["hl_undercovers"] and few["hl_theta"] == 0.3
    assert few["hl_bias"] == pytest.approx(0.0) and few["hl_bias_mc_se"] == pytest.approx(0.0)


def test_headline_coverage_is_listed_in_the_checks(result):
    checks = result.table("checks")
    row = checks[checks["check"].str.startswith("Headline pipeline")]
    assert len(row) == 1 and row["role"].item() == "method"
    assert row["estimate"].item() == pytest.approx(result.facts["hl_coverage"])
    assert len(result.table("headline_coverage_reps")) == SMALL.headline_reps


@pytest.mark.slow
def test_headline_pipeline_covers_at_the_nominal_rate():
    """Monte Carlo coverage of the headline pipeline (AIPW, LightGBM, multiway folds,
    two-way SE) on the two-way clustered design.  Band: nominal 95% ± 3 Monte Carlo SEs,
    3·sqrt(0.95·0.05/60) ≈ 0.084, so a calibrated interval fails it about 0.3% of the time."""
    from analysis.studies.dml_genre_checks import headline_coverage

    n = 60
    reps = headline_coverage(n, n_users=300, n_movies=200, n_ratings=4000, n_folds=3,
                             n_estimators=30, seed=20150101)
    band = 3 * np.sqrt(0.95 * 0.05 / n)
    assert abs(reps["covered"].mean() - 0.95) <= band


def test_backdoor_check_rejects_bad_graphs():
    g = dml_genre_parts.causal_graph()
    assert backdoor_check(g, "D", "Y", ["history", "era", "time"])[0]
    valid, reason = backdoor_check(g, "D", "Y", ["history", "era"])
    assert not valid and "back-door path" in reason
    with pytest.raises(GraphError, match="not in the graph"):
        backdoor_check(g, "D", "Y", ["nope"])
    cyclic = nx.DiGraph([("D", "Y"), ("Y", "D")])
    with pytest.raises(GraphError, match="cycle"):
        backdoor_check(cyclic, "D", "Y", [])


def test_config_rejects_a_single_fold():
    assert issubclass(dml_genre.Config, MovieLensConfig)
    from analysis.config import build_study_config

    with pytest.raises(ConfigError, match="'n_folds' .* is 1; it must be at least 2"):
        build_study_config(dml_genre.Config, {"n_folds": 1}, section="[studies.dml_genre]",
                           root=None)
