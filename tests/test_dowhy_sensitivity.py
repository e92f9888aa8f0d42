"""Sensitivity: omitted-variable identity, Cinelli-Hazlett against DoWhy, E-values, refuters."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.causal.pipeline import DoWhyPipeline, quiet_dowhy
from analysis.causal.refute import RefuterSettings, refutation_table
from analysis.causal.sensitivity import (
    adjusted_estimate,
    benchmark_bounds,
    confounder_sweep,
    covariate_strength,
    e_value,
    partial_r2,
    robustness_value,
)
from analysis.data.music import CONTENT, ENGAGEMENT, OUTCOME, TREATMENT, simulate_music
from analysis.estimators.linear import design, ols
from analysis.studies.dowhy_recs import music_graph


@pytest.fixture(scope="module")
def fitted():
    sim = simulate_music(n=4000, seed=21)
    pipe = DoWhyPipeline(sim.frame, music_graph(), treatment=TREATMENT, outcome=OUTCOME, seed=1)
    row, est = pipe.backdoor_linear()
    return sim, pipe, row, est


def test_confounder_like_engagement_moves_estimate_by_ovb_identity(fitted):
    """Dropping engagement changes the estimate by exactly imbalance x effect."""
    sim, _, row, _ = fitted
    f = sim.frame
    b = covariate_strength(f, outcome=OUTCOME, treatment=TREATMENT,
                           covariates=[ENGAGEMENT, CONTENT], benchmark=ENGAGEMENT)
    X, names = design(f, [TREATMENT, CONTENT])
    short = ols(f[OUTCOME].to_numpy(float), X, names).coef[1]
    assert short - row["estimate"] == pytest.approx(b.imbalance * b.outcome_effect, rel=1e-8)
    # the simulator's engagement effect on hours is 1.5 per SD
    assert abs(b.outcome_effect - 1.5) < 0.1


def test_sweep_crosses_zero_on_the_hyperbola():
    s = confounder_sweep(1.0, np.array([0.0, 0.5, 1.0]), np.array([0.0, 2.0]))
    assert len(s) == 6
    assert s.loc[(s.imbalance == 0.5) & (s.outcome_effect == 2.0), "adjusted"].item() == 0.0
    assert s.loc[s.imbalance == 0.0, "adjusted"].eq(1.0).all()


def test_cinelli_hazlett_matches_dowhy(fitted):
    sim, pipe, row, est = fitted
    with quiet_dowhy():
        ref = pipe._model(pipe.data.copy()).refute_estimate(
            est.target_estimand, est, method_name="add_unobserved_common_cause",
            simulation_method="linear-partial-R2", benchmark_common_causes=[ENGAGEMENT],
            effect_fraction_on_treatment=[1.0, 2.0], plot_estimate=False)
    st = ref.stats
    assert robustness_value(st["t_statistic"], st["degree of freedom"]) == \
        pytest.approx(st["robustness_value"], rel=1e-9)
    assert robustness_value(st["t_statistic"], st["degree of freedom"], alpha=0.05) == \
        pytest.approx(st["robustness_value_alpha"], rel=1e-9)
    assert partial_r2(st["t_statistic"], st["degree of freedom"]) == \
        pytest.approx(st["r2yt_w"], rel=1e-9)
    b = covariate_strength(sim.frame, outcome=OUTCOME, treatment=TREATMENT,
                           covariates=[ENGAGEMENT, CONTENT], benchmark=ENGAGEMENT)
    bounds = benchmark_bounds(b.r2_treatment, b.r2_outcome, [1.0, 2.0])
    dw = ref.benchmarking_results
    np.testing.assert_allclose(bounds["r2_treatment"], dw["r2tu_w"], rtol=1e-8)
    np.testing.assert_allclose(bounds["r2_outcome"], dw["r2yu_tw"], rtol=1e-8)
    adj = adjusted_estimate(st["estimate"], st["standard_error"], st["degree of freedom"],
                            bounds["r2_treatment"], bounds["r2_outcome"])
    np.testing.assert_allclose(adj, dw["bias_adjusted_estimate"], rtol=1e-8)


def test_robustness_value_edge_cases():
    assert robustness_value(0.0, 100) == 0.0
    assert robustness_value(1.0, 100, alpha=0.05) == 0.0  # not significant: nothing to lose
    f = 5 / np.sqrt(100)
    assert robustness_value(5.0, 100) == pytest.approx(0.5 * (np.sqrt(f**4 + 4 * f**2) - f**2))


def test_e_value_known_values():
    # VanderWeele & Ding: RR = 2 gives E = 2 + sqrt(2) = 3.41
    d = np.log(2) / 0.91
    ev, ev_ci = e_value(d, d / 2, 2 * d, outcome_sd=1.0)
    assert ev == pytest.approx(2 + np.sqrt(2))
    assert 1 < ev_ci < ev
    assert e_value(0.1, -0.1, 0.3, 1.0)[1] == 1.0
    assert e_value(-d, -2 * d, -d / 2, 1.0)[0] == pytest.approx(2 + np.sqrt(2))


def test_refutation_table_verdicts(fitted):
    _, pipe, row, est = fitted
    t = refutation_table(pipe, est, settings=RefuterSettings(simulations=20, benchmark=ENGAGEMENT))
    assert list(t["refuter"]) == ["Placebo treatment", "Random common cause", "Data subset",
                                  "Add unobserved common cause"]
    assert t["passed"].all(), t[["refuter", "result"]]
    assert t["verdict"].str.startswith("Passed.").all()
    by = t.set_index("refuter")
    placebo_mean_se = row["std_error"] / np.sqrt(20)  # mean of 20 placebo estimates
    assert abs(by.loc["Placebo treatment", "new_effect"]) < 4 * placebo_mean_se
    assert abs(by.loc["Random common cause", "new_effect"] - row["estimate"]) < 0.25 * row[
        "std_error"]


def test_unobserved_refuter_fails_for_a_fragile_effect():
    """A tiny effect cannot survive a confounder as strong as engagement: the verdict says so."""
    sim = simulate_music(n=4000, effect=0.05, seed=3)
    pipe = DoWhyPipeline(sim.frame, music_graph(), treatment=TREATMENT, outcome=OUTCOME)
    _, est = pipe.backdoor_linear()
    t = refutation_table(pipe, est, settings=RefuterSettings(simulations=5, benchmark=ENGAGEMENT))
    row = t.set_index("refuter").loc["Add unobserved common cause"]
    assert not row["passed"] and row["verdict"].startswith("Failed.")
