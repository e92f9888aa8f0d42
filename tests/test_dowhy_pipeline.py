"""DoWhy pipeline: graph and data checks, and estimates against the simulator's truth."""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from analysis.causal.graph import make_graph, node_roles
from analysis.causal.pipeline import DoWhyPipeline
from analysis.data.music import (
    CONTENT,
    ENGAGEMENT,
    INSTRUMENT,
    OUTCOME,
    ROLES,
    TREATMENT,
    simulate_music,
)
from analysis.errors import DataError, EstimationError, GraphError
from analysis.studies.dowhy_recs import lgbm_factories, music_graph


@pytest.fixture(scope="module")
def sim():
    return simulate_music(n=6000, seed=11)


@pytest.fixture(scope="module")
def pipe(sim):
    return DoWhyPipeline(sim.frame, music_graph(), treatment=TREATMENT, outcome=OUTCOME, seed=3)


def test_graph_missing_treatment_or_outcome():
    g = nx.DiGraph([("a", "b")])
    with pytest.raises(GraphError, match="does not contain the treatment 'T'"):
        make_graph(g, treatment="T", outcome="b")
    with pytest.raises(GraphError, match="does not contain the outcome 'Y'"):
        make_graph(nx.DiGraph([("T", "b")]), treatment="T", outcome="Y")


def test_cyclic_graph_is_rejected():
    g = nx.DiGraph([("T", "Y"), ("Y", "W"), ("W", "T")])
    with pytest.raises(GraphError, match="cycle"):
        make_graph(g, treatment="T", outcome="Y")


def test_graph_without_path_is_rejected():
    with pytest.raises(GraphError, match="no directed path"):
        make_graph(nx.DiGraph([("W", "T"), ("W", "Y")]), treatment="T", outcome="Y")


def test_pipeline_rejects_bad_graph_before_dowhy(sim):
    g = music_graph()
    g.add_edge(OUTCOME, ENGAGEMENT)
    with pytest.raises(GraphError, match="cycle"):
        DoWhyPipeline(sim.frame, g, treatment=TREATMENT, outcome=OUTCOME)


def test_missing_columns_are_named(sim):
    with pytest.raises(DataError, match=r"lacks column\(s\) \['UserEngagementLevel'\]"):
        DoWhyPipeline(sim.frame.drop(columns=ENGAGEMENT), music_graph(), treatment=TREATMENT,
                      outcome=OUTCOME)


def test_non_binary_treatment_where_binary_is_required(sim):
    df = sim.frame.assign(**{TREATMENT: sim.frame[TREATMENT] * 2.5})
    p = DoWhyPipeline(df, music_graph(), treatment=TREATMENT, outcome=OUTCOME)
    with pytest.raises(EstimationError, match="needs a binary 0/1 treatment.*linear regression"):
        p.propensity_weighting(n_bootstrap=2)
    my, mt = lgbm_factories(10, 0)
    with pytest.raises(EstimationError, match="needs a binary 0/1 treatment"):
        p.double_ml(model_y=my, model_t=mt, folds=2)
    row, _ = p.backdoor_linear()  # a continuous treatment is fine for regression
    assert np.isfinite(row["estimate"])


def test_bool_treatment_is_stored_as_int_and_input_not_mutated(sim):
    df = sim.frame.assign(**{TREATMENT: sim.frame[TREATMENT].astype(bool)})
    before = df.copy()
    p = DoWhyPipeline(df, music_graph(), treatment=TREATMENT, outcome=OUTCOME)
    assert p.data[TREATMENT].dtype == np.int64
    p.backdoor_linear()
    pd.testing.assert_frame_equal(df, before)


def test_roles_match_the_simulator():
    g = make_graph(music_graph(), treatment=TREATMENT, outcome=OUTCOME)
    assert node_roles(g, TREATMENT, OUTCOME) == ROLES


def test_identification_finds_adjustment_set_and_instrument(pipe):
    ident = pipe.identify()
    assert set(ident.adjustment_set) == {ENGAGEMENT, CONTENT}
    assert ident.instruments == [INSTRUMENT]
    assert "\\mid" in ident.backdoor_latex and "NewFeatureExposure" in ident.iv_latex


def test_naive_is_biased_by_about_the_reports_amount():
    """Population check on a large draw: bias +0.15 (the report's ~15%), within 4 SE."""
    d = simulate_music(n=400_000, seed=5).frame
    y, t = d[OUTCOME].to_numpy(), d[TREATMENT].to_numpy()
    diff = y[t == 1].mean() - y[t == 0].mean()
    se = np.sqrt(y[t == 1].var() / (t == 1).sum() + y[t == 0].var() / (t == 0).sum())
    assert abs(diff - 1.15) < 4 * se
    assert 0.12 < diff - 1.0 < 0.18


def test_naive_is_biased_and_backdoor_estimators_recover_truth(pipe, sim):
    truth = sim.truth["ate"]
    naive = pipe.naive()
    assert abs(naive["estimate"] - (truth + 0.15)) < 4 * naive["std_error"]
    lr, _ = pipe.backdoor_linear()
    psw, scores = pipe.propensity_weighting(n_bootstrap=30)
    my, mt = lgbm_factories(100, 0)
    dml, _ = pipe.double_ml(model_y=my, model_t=mt, folds=3)
    for row in (lr, psw, dml):
        assert abs(row["estimate"] - truth) < 4 * row["std_error"], row
        assert row["ci_lower"] < row["estimate"] < row["ci_upper"]
    assert scores.min() > 0 and scores.max() < 1
    # regression and weighting are close to each other (same data, same adjustment set)
    assert abs(lr["estimate"] - psw["estimate"]) < 2 * lr["std_error"]


def test_without_confounding_naive_is_unbiased():
    d = simulate_music(n=200_000, confounding=0.0, seed=2).frame
    y, t = d[OUTCOME].to_numpy(), d[TREATMENT].to_numpy()
    se = np.sqrt(y[t == 1].var() / (t == 1).sum() + y[t == 0].var() / (t == 0).sum())
    assert abs(y[t == 1].mean() - y[t == 0].mean() - 1.0) < 4 * se


def test_simulator_is_seeded_and_sized():
    a, b = simulate_music(n=500, seed=1), simulate_music(n=500, seed=1)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert len(a.frame) == 500 and a.fingerprint == b.fingerprint
    assert a.fingerprint != simulate_music(n=500, seed=2).fingerprint
    assert set(a.frame[TREATMENT].unique()) <= {0, 1}
    with pytest.raises(ValueError, match="at least 10"):
        simulate_music(n=3)


def test_heterogeneous_simulator_plants_a_known_ate_and_keeps_constant_data_unchanged():
    """Each user's effect is tau + h(E^2 - 1): its population mean is tau exactly; the
    sample mean is tau + h(mean(E^2) - 1), which the truth reports; h = 0 gives the
    constant-effect data and fingerprint bit for bit."""
    base = simulate_music(n=4000, seed=3)
    same = simulate_music(n=4000, seed=3, heterogeneity=0.0)
    pd.testing.assert_frame_equal(base.frame, same.frame)
    assert base.fingerprint == same.fingerprint and "sate" not in base.truth
    het = simulate_music(n=4000, seed=3, heterogeneity=1.0, confounding=1.0)
    assert het.fingerprint != base.fingerprint
    e = het.frame[ENGAGEMENT].to_numpy()
    t = het.frame[TREATMENT].to_numpy()
    tau = 1.0 + (e**2 - 1)
    assert het.truth["ate"] == 1.0
    assert het.truth["sate"] == pytest.approx(tau.mean(), rel=1e-12)
    assert het.truth["att"] == pytest.approx(tau[t == 1].mean(), rel=1e-12)
    # outcomes differ from the constant-effect draw only through the treated users' effects
    const = simulate_music(n=4000, seed=3, confounding=1.0)
    np.testing.assert_allclose(het.frame[OUTCOME] - const.frame[OUTCOME],
                               t * (e**2 - 1), atol=1e-12)


def test_heterogeneous_scenario_separates_estimators_that_target_the_ate():
    """With the effect quadratic in engagement, IPW and the doubly robust learner recover
    the ATE; constant-effect regression (a variance-weighted average) does not."""
    from analysis.studies import dowhy_recs as study
    from analysis.studies.dowhy_recs_het import heterogeneous

    cfg = study.Config(n_users=10_000, bootstrap=20, dml_folds=3, dml_trees=60, seed=11)
    my, mt = study.lgbm_factories(cfg.dml_trees, cfg.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t, facts = heterogeneous(cfg, study.music_graph(), my, mt)
    by = t.set_index("method")
    assert by.loc["backdoor.propensity_score_weighting", "covers_truth"]
    assert by.loc["econml.dr.LinearDRLearner", "covers_truth"]
    assert not by.loc["backdoor.linear_regression", "covers_truth"]
    assert by.loc["backdoor.linear_regression", "estimate"] < facts["het_ate"]
    assert not by.loc["naive", "covers_truth"]
