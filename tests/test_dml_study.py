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
                         comparison_max_rows=5000, coverage_reps=40)


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


@pytest.mark.parametrize("name", ["leakage", "dependence", "truth", "segments", "overlap"])
def test_paragraphs_render_from_facts(result, name):
    text = rep.paragraph(result, name).data
    assert len(text.split()) > 15 and "{{" not in text


def test_summary_renders(result):
    text = render_template(dml_genre.SUMMARY_TEMPLATE, result.facts)
    assert "AIPW" in text and "planted" in text


def test_figures_draw(result):
    for fig in (rep.fig_graph, rep.fig_overlap, rep.fig_balance, rep.fig_estimates,
                rep.fig_adjustment, rep.fig_segments, rep.fig_coverage):
        assert fig(result).axes


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
