"""The dowhy_recs study end to end (small settings), its facts, real-data benchmarks and
the weak-instrument diagnostic."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from analysis.report import dowhy_recs as rep
from analysis.report.summaries import render_summary
from analysis.studies import dowhy_recs as study

SMALL = study.Config(n_users=1500, refuter_simulations=10, bootstrap=10, dml_folds=2,
                     dml_trees=40, seed=7)


@pytest.fixture(scope="module")
def result():
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        return study.run(SMALL)


def test_estimates_sit_beside_the_truth(result):
    t = result.tidy()
    est = result.table("estimates")
    assert list(t.columns[:6]) == ["term", "estimate", "std_error", "ci_lower", "ci_upper",
                                   "p_value"]
    assert (est["truth"] == 1.0).all()
    np.testing.assert_allclose(est["error"], est["estimate"] - 1.0)
    adjusted = est[est["method"] != "naive"]
    assert (abs(adjusted["error"]) < 4 * adjusted["std_error"]).all(), adjusted
    naive = est.iloc[0]
    assert abs(naive["estimate"] - 1.15) < 4 * naive["std_error"]
    br = 1 - abs(est.loc[1, "error"]) / abs(naive["error"])
    assert est.loc[1, "bias_reduction"] == pytest.approx(br)


def test_facts_are_plain_and_consistent(result):
    f = result.facts
    assert f["truth_ate"] == 1.0 and f["synthetic"] is True
    assert f["effect_direction"] == "increase" and f["effect_significant"] is True
    assert f["iv_dowhy_matches"] is True  # DoWhy's Wald IV equals our 2SLS without controls
    assert 0 < f["rv_alpha"] < f["rv"] < 1 and f["e_value"] > f["e_value_ci"] >= 1
    assert f["bench_moved_estimate"] == pytest.approx(f["lr"] - f["bench_shift"])
    assert f["ch_adjusted_1x"] < f["lr"]


def test_lalonde_benchmark_is_computed_from_the_experiment(result):
    from causaldata import nsw_mixtape

    d = nsw_mixtape.load_pandas().data
    diff = d.loc[d.treat == 1, "re78"].mean() - d.loc[d.treat == 0, "re78"].mean()
    f = result.facts
    assert f["lalonde_benchmark"] == pytest.approx(float(diff), rel=1e-6)
    assert f["lalonde_benchmark"] == pytest.approx(1794, abs=1)
    # naive fails badly; backdoor regression and weighting land within 2 benchmark SEs
    assert f["lalonde_naive"] < -8000
    for key in ("lalonde_lr", "lalonde_psw"):
        assert abs(f[key] - f["lalonde_benchmark"]) < 2 * f["lalonde_benchmark_se"], key
    assert f["lalonde_n_treated"] == 185 and f["lalonde_n_controls"] == 15992


def test_weak_instrument_demo_flags_weak_rows(result):
    t = result.table("weak_iv_demo")
    assert t.loc[t["instrument_strength"] == 0.0, "weak"].item()
    assert not t.loc[t["instrument_strength"] == 1.2, "weak"].item()
    assert "Weak instrument" in rep.weak_iv_diagnostics(result).data


def test_weak_instrument_becomes_a_chapter_diagnostic(tmp_path, monkeypatch):
    """With an instrument that does not predict the treatment the study still runs, and the
    runner turns the WeakInstrumentWarning into a diagnostic the chapter shows."""
    from analysis.config import load_config
    from analysis.report.chapter import Chapter
    from analysis.runner import run_study

    toml = tmp_path / "analysis.toml"
    toml.write_text("[studies.dowhy_recs]\ninstrument_strength = 0.0\nn_users = 1000\n"
                    "refuter_simulations = 5\nbootstrap = 10\ndml_folds = 2\ndml_trees = 20\n"
                    "real_data = false\n")
    config = load_config(toml, profile="default")
    run = run_study("dowhy_recs", config=config)
    topics = [d.topic for d in run.result.diagnostics]
    assert "WeakInstrumentWarning" in topics
    assert run.result.facts["iv_weak"] is True
    shown = Chapter(run=run, config=config).diagnostics().data
    assert "Diagnostic: WeakInstrumentWarning" in shown and "first-stage F" in shown


def test_study_config_rejects_bad_values():
    from analysis.config import build_study_config
    from analysis.errors import ConfigError

    with pytest.raises(ConfigError, match="'n_users'.*must be at least 50"):
        build_study_config(study.Config, {"n_users": 0}, section="[studies.dowhy_recs]",
                           root=None)


def test_summary_and_templates_render(result):
    text = render_summary(result)
    assert "{{" not in text and "LaLonde" in text
    for fn in (rep.recommendations, rep.limitations):
        assert fn(result).data.count("- **") + fn(result).data.count("\n- ") >= 3
    for block in ("estimation", "iv", "sensitivity", "robustness", "lalonde", "card"):
        assert len(rep.section_text(result, block).data.split()) > 20


def test_figures_render(result):
    for fn in (rep.fig_graph, rep.fig_estimates, rep.fig_sweep, rep.fig_contour,
               rep.fig_lalonde):
        fig = fn(result)
        assert fig.axes


def test_default_config_is_the_reports_setting():
    c = study.Config()
    assert c.true_effect == 1.0 and c.n_users == 10_000
    assert dataclasses.is_dataclass(c)


def test_quick_profile_checks_pass_and_counterexamples_fail(quick_runs):
    """The validation appendix's promise for this study on the quick profile: every method
    check contains its known answer (planted effect, NSW experiment, Card's published IV,
    the heterogeneous scenario's ATE) and every counterexample (naive comparisons,
    estimators that target another average than the ATE) misses it."""
    res = quick_runs["dowhy_recs"].result
    checks = res.table("checks")
    method = checks[checks["role"] == "method"]
    counter = checks[checks["role"] == "counterexample"]
    assert method["covered"].all(), method.loc[~method["covered"], "check"].tolist()
    assert not counter["covered"].any(), counter.loc[counter["covered"], "check"].tolist()
    het = checks[checks["check"].str.startswith("Heterogeneous effect")]
    assert len(het) == 6 and (het["role"] == "method").sum() == 2
    iv = res.table("iv")
    assert (iv["ar_kind"] == "interval").all()
    weak = res.table("weak_iv_demo").set_index("instrument_strength")
    assert weak.loc[0.0, "ar_kind"] in ("two rays", "real line")
    assert weak["ar_covers_truth"].all()
    assert "Anderson-Rubin" in rep.iv_table(res).data
    assert "targets" in res.table("heterogeneous").columns
