"""The DoWhy chapter: do personalized recommendations raise listening hours?

Runs the source report's analysis properly on a simulated music app with a
planted effect (:mod:`analysis.data.music`): the causal graph, identification,
four estimators beside the truth, instrumental variables, DoWhy's refuters,
a hidden-confounder sweep, Cinelli-Hazlett and E-value sensitivity, and then
the same pipeline on real data with known answers (LaLonde's NSW experiment
and Card's college-proximity IV).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from analysis.causal.iv import ARConfidenceSet, anderson_rubin, two_stage_least_squares
from analysis.causal.pipeline import DoWhyPipeline, quiet_dowhy
from analysis.causal.realdata import CARD_LITERATURE_IV, card_check, lalonde_check
from analysis.causal.refute import RefuterSettings, refutation_table
from analysis.causal.sensitivity import (
    adjusted_estimate,
    benchmark_bounds,
    confounder_sweep,
    covariate_strength,
    e_value,
    robustness_value,
)
from analysis.config import StudyConfig, at_least, folds, fraction, positive, seed_field
from analysis.data.common import DataRef, params_fingerprint
from analysis.data.music import (
    CONFOUNDING_FOR_15_PERCENT,
    CONTENT,
    ENGAGEMENT,
    INSTRUMENT,
    OUTCOME,
    TREATMENT,
    music_params,
    simulate_music,
    variable_table,
)
from analysis.errors import WeakInstrumentWarning
from analysis.parallel import common_seeds, map_tasks
from analysis.result import (
    StudyResult,
    check_row,
    checks_frame,
    count_phrase,
    headline_frame,
    tidy_frame,
)
from analysis.studies import dowhy_recs_het as het
from analysis.studies.base import Timer, make_result

NAME = "dowhy_recs"
TITLE = "Personalized recommendations and listening hours"
CHAPTER = "chapters/dowhy.qmd"
SUMMARY_TEMPLATE = "studies/dowhy_recs.md.j2"
RECOMMENDATION_TEMPLATE = "studies/dowhy_recs_recommendation.md.j2"
CALLOUT_TEMPLATE = "studies/dowhy_recs_callout.md.j2"
DESIGN = "simulation"
"""The chapter is a simulation by design; its real-data checks are LaLonde and Card."""
QUESTION = "Do personalized recommendations raise listening hours?"
REPORT = {"naive": 1.1475, "backdoor": 0.9996, "iv": 0.9778, "range_low": -0.271,
          "range_high": 0.881, "bias_reduction": 0.9971}
"""Numbers the source report quoted (shown only as what the report said)."""
WEAK_DEMO_STRENGTHS = (1.2, 0.3, 0.1, 0.0)


@dataclass(frozen=True, kw_only=True)
class Config(StudyConfig):
    """Settings of the DoWhy chapter.

    Attributes
    ----------
    n_users : int
        Simulated users.
    true_effect : float
        Planted effect of recommendations (hours per week).
    instrument_strength, confounding : float
        See :func:`analysis.data.music.simulate_music`.
    refuter_simulations : int
        Re-estimations per refuter.
    bootstrap : int
        Bootstrap resamples for the propensity-weighting intervals.
    dml_folds, dml_trees : int
        Cross-fitting folds and LightGBM trees of the double-ML nuisances.
    subset_fraction : float
        Share of users kept by the data-subset refuter.
    real_data : bool
        Run the LaLonde and Card checks.
    het_effect, het_confounding : float
        The heterogeneous-effect scenario (:mod:`analysis.studies.dowhy_recs_het`): the
        effect's dependence on engagement :math:`h` and the confounding :math:`\\lambda`.
    """

    seed: int = seed_field(20240611)
    n_users: int = at_least(10_000, 50, "the simulated app needs users in every fold")
    true_effect: float = 1.0
    instrument_strength: float = 1.2
    confounding: float = CONFOUNDING_FOR_15_PERCENT
    refuter_simulations: int = at_least(100, 2, "a refuter compares several re-estimates")
    bootstrap: int = at_least(50, 10, "a percentile interval needs resamples")
    dml_folds: int = folds(5)
    dml_trees: int = positive(200)
    subset_fraction: float = fraction(0.8)
    real_data: bool = True
    het_effect: float = 1.0
    het_confounding: float = 1.0

    def sim_params(self) -> dict:
        """Keyword arguments of :func:`simulate_music`."""
        return music_params(n=self.n_users, effect=self.true_effect,
                            instrument_strength=self.instrument_strength,
                            confounding=self.confounding, seed=self.seed)


def data_ref(config: Config, root: Path | None = None) -> DataRef:
    """The simulated music app (plus the bundled causaldata files, which never change)."""
    return DataRef(name="synthetic-music-app", source="synthetic",
                   fingerprint=params_fingerprint("music-app-v1", config.sim_params()))


def music_graph() -> nx.DiGraph:
    """The report's causal graph: two confounders, one instrument."""
    return nx.DiGraph([(ENGAGEMENT, TREATMENT), (ENGAGEMENT, OUTCOME), (CONTENT, TREATMENT),
                       (CONTENT, OUTCOME), (INSTRUMENT, TREATMENT), (TREATMENT, OUTCOME)])


def lgbm_factories(trees: int, seed: int):
    """LightGBM outcome regressor and treatment classifier (one thread each)."""
    from lightgbm import LGBMClassifier, LGBMRegressor

    kw = {"n_estimators": trees, "learning_rate": 0.05, "num_leaves": 15,
          "min_child_samples": 20, "n_jobs": 1, "verbose": -1, "random_state": seed}
    return (lambda: LGBMRegressor(**kw)), (lambda: LGBMClassifier(**kw))


def run(config: Config, root: Path | None = None) -> StudyResult:
    """Run the whole chapter's analysis.

    Returns
    -------
    StudyResult
        Tables ``estimates``, ``variables``, ``graph_nodes``, ``graph_edges``, ``iv``,
        ``weak_iv_demo``, ``refutation``, ``sweep``, ``sensitivity_contour``,
        ``benchmarks``, ``lalonde``, ``lalonde_balance``, ``lalonde_overlap``, ``card``,
        ``heterogeneous`` (the heterogeneous-effect scenario),
        ``checks`` (known answers) and ``headline``.
    """
    from analysis.causal.graph import graph_tables

    timer = Timer()
    sim = simulate_music(**config.sim_params())
    truth = sim.truth["ate"]
    pipe = DoWhyPipeline(sim.frame, music_graph(), treatment=TREATMENT, outcome=OUTCOME,
                         seed=config.seed)
    ident = pipe.identify()
    model_y, model_t = lgbm_factories(config.dml_trees, config.seed)
    naive = pipe.naive()
    lr, lr_est = pipe.backdoor_linear()
    psw, _ = pipe.propensity_weighting(n_bootstrap=config.bootstrap)
    dml, _ = pipe.double_ml(model_y=model_y, model_t=model_t, folds=config.dml_folds)
    iv = two_stage_least_squares(sim.frame, outcome=OUTCOME, treatment=TREATMENT,
                                 instrument=ident.instruments[0], covariates=[ENGAGEMENT, CONTENT])
    iv_row = iv.tidy("Instrumental variable (2SLS)", method="iv.2sls")
    estimates = _estimates_table([naive, lr, psw, dml, iv_row], truth)
    nodes, edges = graph_tables(pipe.graph, TREATMENT, OUTCOME)
    refute = refutation_table(pipe, lr_est, settings=RefuterSettings(
        simulations=config.refuter_simulations, subset_fraction=config.subset_fraction,
        benchmark=ENGAGEMENT), unit=" h")
    sens_tables, sens_facts = _sensitivity(pipe, lr, sim.frame)
    iv_table, iv_facts = _iv_tables(config, pipe, iv)
    tables = {"estimates": estimates, "variables": variable_table(), "graph_nodes": nodes,
              "graph_edges": edges, "iv": iv_table, "refutation": refute, **sens_tables,
              "weak_iv_demo": _weak_demo(config)}
    facts = {**_estimate_facts(estimates, truth), **iv_facts, **sens_facts,
             **_refute_facts(refute), **_ident_facts(ident),
             **{f"report_{k}": v for k, v in REPORT.items()},
             "n_users": config.n_users, "treated_share": float(sim.frame[TREATMENT].mean()),
             "outcome_mean": float(sim.frame[OUTCOME].mean()),
             "refuter_simulations": config.refuter_simulations, "bootstrap": config.bootstrap,
             "real_data": config.real_data}
    if config.real_data:
        for check in (lalonde_check(n_bootstrap=config.bootstrap, model_y=model_y,
                                    model_t=model_t, folds=config.dml_folds, seed=config.seed),
                      card_check()):
            tables.update(check.tables)
            facts.update(check.facts)
    tables["heterogeneous"], het_facts = het.heterogeneous(config, music_graph(), model_y,
                                                           model_t)
    facts.update(het_facts)
    facts.update(_recommendation_facts(facts))
    tables["checks"] = _checks(tables, truth)
    tables["headline"] = _headline(facts)
    return make_result(study=NAME, config=config, ref=data_ref(config, root),
                       rows=len(sim.frame), tables=tables, facts=facts, timer=timer)


def _estimates_table(rows: list[dict], truth: float) -> pd.DataFrame:
    t = tidy_frame(rows)
    t["truth"] = truth
    t["error"] = t["estimate"] - truth
    t["covers_truth"] = (t["ci_lower"] <= truth) & (truth <= t["ci_upper"])
    naive_err = abs(t.loc[0, "error"])
    t["bias_reduction"] = 1 - t["error"].abs() / naive_err
    t.loc[0, "bias_reduction"] = np.nan
    return t


def _estimate_facts(t: pd.DataFrame, truth: float) -> dict:
    by = t.set_index("method")
    naive, lr = by.loc["naive"], by.loc["backdoor.linear_regression"]
    adjusted = t[t["method"].str.startswith("backdoor")]
    out = {"truth_ate": truth, "naive": naive["estimate"], "naive_error": naive["error"],
           "naive_bias_pct": naive["error"] / truth,
           "naive_abs_bias_pct": abs(naive["error"] / truth),
           "naive_overstates": bool(naive["error"] > 0), "naive_covers_truth": bool(naive[
               "covers_truth"]),
           "all_adjusted_cover_truth": bool(adjusted["covers_truth"].all()),
           "n_adjusted_cover_truth": int(adjusted["covers_truth"].sum()),
           "max_adjusted_error": float(adjusted["error"].abs().max()),
           "adjusted_cover_phrase": count_phrase(int(adjusted["covers_truth"].sum()),
                                                 len(adjusted), "intervals", "contain")
           + " the truth",
           "typical_bias_reduction": float(1 - 0.674 * lr["std_error"] / abs(naive["error"]))}
    for key, method in (("lr", "backdoor.linear_regression"),
                        ("psw", "backdoor.propensity_score_weighting"),
                        ("dml", "backdoor.econml.dml.LinearDML"), ("iv", "iv.2sls")):
        r = by.loc[method]
        out.update({key: r["estimate"], f"{key}_se": r["std_error"], f"{key}_lower": r["ci_lower"],
                    f"{key}_upper": r["ci_upper"], f"{key}_error": r["error"],
                    f"{key}_bias_reduction": r["bias_reduction"],
                    f"{key}_covers_truth": bool(r["covers_truth"])})
    out["iv_se_ratio"] = out["iv_se"] / out["lr_se"]
    out["effect_significant"] = bool(lr["ci_lower"] > 0 or lr["ci_upper"] < 0)
    out["effect_direction"] = "increase" if lr["estimate"] > 0 else "decrease"
    return out


def _ident_facts(ident) -> dict:
    return {"adjustment_set": ", ".join(ident.adjustment_set),
            "instrument": ", ".join(ident.instruments),
            "backdoor_latex": ident.backdoor_latex, "iv_latex": ident.iv_latex,
            "unconfoundedness": ident.assumption}


def _iv_tables(config: Config, pipe: DoWhyPipeline, iv) -> tuple[pd.DataFrame, dict]:
    """2SLS with and without covariates, plus DoWhy's own IV estimate as a cross-check."""
    plain = two_stage_least_squares(pipe.data, outcome=OUTCOME, treatment=TREATMENT,
                                    instrument=INSTRUMENT)
    with quiet_dowhy():
        wald = pipe._model(pipe.data.copy()).estimate_effect(
            pipe.estimand(), method_name="iv.instrumental_variable").value
    table = tidy_frame([plain.tidy("2SLS, instrument only", covariates="none",
                                   first_stage_coef=plain.first_stage_coef),
                        iv.tidy("2SLS, with confounders as controls",
                                covariates=f"{ENGAGEMENT}, {CONTENT}",
                                first_stage_coef=iv.first_stage_coef)])
    table["truth"] = config.true_effect
    ars = [anderson_rubin(pipe.data, outcome=OUTCOME, treatment=TREATMENT, instrument=INSTRUMENT,
                          covariates=covs) for covs in ([], [ENGAGEMENT, CONTENT])]
    for key, value in _ar_columns(ars).items():
        table[key] = value
    ar = ars[1]
    facts = {"ar_kind": ar.kind, "ar_lower": float(ar.lower), "ar_upper": float(ar.upper),
             "ar_bounded": ar.bounded, "ar_covers_truth": bool(ar.contains(config.true_effect)),
             "iv_first_stage_f": iv.first_stage_f, "iv_first_stage_coef": iv.first_stage_coef,
             "iv_weak": iv.weak, "iv_plain": plain.estimate, "iv_plain_se": plain.std_error,
             "iv_dowhy_wald": float(wald),
             "iv_dowhy_matches": bool(abs(float(wald) - plain.estimate) < 1e-6)}
    return table, facts


def _ar_columns(sets: list[ARConfidenceSet]) -> dict[str, list]:
    """Anderson-Rubin sets as table columns: shape, ends, and a readable description."""
    def text(a: ARConfidenceSet) -> str:
        if a.kind == "interval":
            return f"[{a.lower:.2f}, {a.upper:.2f}]"
        if a.kind == "two rays":
            return f"(-inf, {a.lower:.2f}] and [{a.upper:.2f}, inf)"
        return "every value" if a.kind == "real line" else "empty"

    return {"ar_kind": [a.kind for a in sets], "ar_lower": [float(a.lower) for a in sets],
            "ar_upper": [float(a.upper) for a in sets], "ar_set": [text(a) for a in sets]}


def _weak_demo(config: Config) -> pd.DataFrame:
    """What happens to 2SLS as the instrument weakens (warnings kept in the table)."""
    items = [(config, strength) for strength in WEAK_DEMO_STRENGTHS]
    rows = map_tasks(_weak_point, items, seeds=common_seeds(config.seed, len(items)))
    return tidy_frame(rows)


def _weak_point(item: tuple[Config, float], seed: int) -> dict:
    """2SLS on one simulated app with the given instrument strength (one grid task)."""
    config, strength = item
    sim = simulate_music(**{**config.sim_params(), "instrument_strength": strength,
                            "seed": seed})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = two_stage_least_squares(sim.frame, outcome=OUTCOME, treatment=TREATMENT,
                                    instrument=INSTRUMENT, covariates=[ENGAGEMENT, CONTENT])
    msgs = [str(w.message) for w in caught if issubclass(w.category, WeakInstrumentWarning)]
    ar = anderson_rubin(sim.frame, outcome=OUTCOME, treatment=TREATMENT, instrument=INSTRUMENT,
                        covariates=[ENGAGEMENT, CONTENT])
    cols = {k: v[0] for k, v in _ar_columns([ar]).items()}
    return r.tidy(f"Instrument strength {strength:g}", instrument_strength=strength,
                  weak=r.weak, warning=msgs[0] if msgs else "", **cols,
                  ar_covers_truth=bool(ar.contains(config.true_effect)))


def _refute_facts(t: pd.DataFrame) -> dict:
    by = t.set_index("refuter")
    out = {"refuters_all_passed": bool(t["passed"].all()),
           "refuters_n_passed": int(t["passed"].sum()), "refuters_n": len(t),
           "failed_refuters": ", ".join(t.loc[~t["passed"], "refuter"]).lower()}
    out["refuters_sentence"] = (
        f"All {len(t)} refuters pass." if out["refuters_all_passed"] else
        f"{out['refuters_n_passed']} of {len(t)} refuters pass; failing: "
        f"{out['failed_refuters']}.")
    for key, name in (("placebo", "Placebo treatment"), ("random_cause", "Random common cause"),
                      ("subset", "Data subset"), ("unobserved", "Add unobserved common cause")):
        if name in by.index:
            out[f"refute_{key}_effect"] = float(by.loc[name, "new_effect"])
            out[f"refute_{key}_passed"] = bool(by.loc[name, "passed"])
    return out


def _sensitivity(pipe: DoWhyPipeline, lr: dict, frame: pd.DataFrame) -> tuple[dict, dict]:
    """Confounder sweep, Cinelli-Hazlett bounds and E-values for the regression estimate."""
    from analysis.estimators.linear import design, ols

    covs = [ENGAGEMENT, CONTENT]
    bench = covariate_strength(frame, outcome=OUTCOME, treatment=TREATMENT, covariates=covs,
                               benchmark=ENGAGEMENT)
    est = lr["estimate"]
    imbalance = np.linspace(0, 1.0, 41)
    effect = np.linspace(0, 4.0, 41)
    sweep = confounder_sweep(est, imbalance, effect)
    X, names = design(frame, [TREATMENT, *covs])
    fit = ols(frame[OUTCOME].to_numpy(float), X, names)
    t_stat, dof = fit.t_classical(TREATMENT), fit.dof
    se = float(fit.se_classical[fit.index(TREATMENT)])
    bounds = benchmark_bounds(bench.r2_treatment, bench.r2_outcome, [1, 2, 3])
    bounds["adjusted"] = adjusted_estimate(est, se, dof, bounds["r2_treatment"],
                                           bounds["r2_outcome"])
    r2d, r2y = np.meshgrid(np.linspace(0, 0.3, 61), np.linspace(0, 1.0, 81), indexing="ij")
    contour = pd.DataFrame({"r2_treatment": r2d.ravel(), "r2_outcome": r2y.ravel(),
                            "adjusted": adjusted_estimate(est, se, dof, r2d.ravel(),
                                                          r2y.ravel())})
    ev, ev_ci = e_value(est, lr["ci_lower"], lr["ci_upper"], float(frame[OUTCOME].std()))
    shift = bench.imbalance * bench.outcome_effect
    # imbalance needed at the benchmark's outcome effect, as a multiple of the benchmark
    facts = {"bench_name": ENGAGEMENT, "bench_imbalance": bench.imbalance,
             "bench_outcome_effect": bench.outcome_effect, "bench_shift": shift,
             "bench_moved_estimate": est - shift, "zero_multiple": est / shift,
             "bench_r2_treatment": bench.r2_treatment, "bench_r2_outcome": bench.r2_outcome,
             "rv": robustness_value(t_stat, dof),
             "rv_alpha": robustness_value(t_stat, dof, alpha=0.05),
             "r2_treatment_outcome": float(t_stat**2 / (t_stat**2 + dof)),
             "ch_adjusted_1x": float(bounds["adjusted"].iloc[0]),
             "ch_adjusted_3x": float(bounds["adjusted"].iloc[-1]),
             "ch_3x_positive": bool(bounds["adjusted"].iloc[-1] > 0),
             "e_value": ev, "e_value_ci": ev_ci,
             "sweep_min": float(sweep["adjusted"].min()),
             "sweep_share_negative": float((sweep["adjusted"] < 0).mean())}
    bench_table = pd.DataFrame({
        "benchmark": [f"{k:g}× {ENGAGEMENT}" for k in bounds["multiple"]],
        "r2_treatment": bounds["r2_treatment"], "r2_outcome": bounds["r2_outcome"],
        "adjusted": bounds["adjusted"]})
    return {"sweep": sweep, "sensitivity_contour": contour, "benchmarks": bench_table}, facts


def _recommendation_facts(f: dict) -> dict:
    """Booleans the recommendations template branches on, derived from the results."""
    out = {
        "rec_adjust": bool(not f["naive_covers_truth"] and f["all_adjusted_cover_truth"]),
        "rec_robust_to_engagement": bool(f["ch_3x_positive"] and
                                         f.get("refute_unobserved_passed", False)),
        "rec_iv_wider": bool(f["iv_se_ratio"] > 1.5),
        "rec_refuters_ok": bool(f["refuters_all_passed"]),
    }
    if f.get("real_data"):
        out["rec_lalonde_regression_close"] = bool(
            abs(f["lalonde_lr"] - f["lalonde_benchmark"]) < 2 * f["lalonde_benchmark_se"])
        out["rec_card_weakish"] = bool(f["card_first_stage_f"] < 20)
    return out


def _checks(tables: dict[str, pd.DataFrame], truth: float) -> pd.DataFrame:
    """Known answers: the planted effect, LaLonde's experiment and Card's published IV."""
    rows = []
    for r in tables["estimates"].itertuples():
        role = "counterexample" if r.method == "naive" else "method"
        rows.append(check_row(f"{r.term} vs the planted effect", "planted truth", r.estimate,
                              r.ci_lower, r.ci_upper, truth, "planted effect", role=role))
    if "lalonde" in tables:
        t = tables["lalonde"]
        for r in t.iloc[1:].itertuples():
            role = "counterexample" if r.Index == 1 else "method"
            rows.append(check_row(f"LaLonde: {r.term} vs the NSW experiment",
                                  "real benchmark", r.estimate, r.ci_lower, r.ci_upper,
                                  r.benchmark, "NSW experimental estimate", role=role,
                                  detail="CPS comparison group; earnings in 1978 dollars"))
    if "card" in tables:
        iv = tables["card"].set_index("term").loc["2SLS (Mixtape controls)"]
        rows.append(check_row("Card: 2SLS return to schooling vs the literature",
                              "real benchmark", iv["estimate"], iv["ci_lower"], iv["ci_upper"],
                              CARD_LITERATURE_IV, "quoted 2SLS return",
                              detail="close_college as the instrument; Mixtape controls"))
    if "heterogeneous" in tables:
        rows += het.checks(tables["heterogeneous"])
    return checks_frame(rows)


def _headline(f: dict) -> pd.DataFrame:
    """The answer at a glance: the backdoor regression beside the planted truth."""
    if not f["effect_significant"]:
        answer = "No effect detectable"
    else:
        answer = "Yes, they raise hours" if f["effect_direction"] == "increase" else \
            "No, they lower hours"
    verdict = "recovers the planted effect" if f["lr_covers_truth"] else \
        "misses the planted effect"
    return headline_frame(question=QUESTION, answer=answer, estimate=f["lr"],
                          ci_lower=f["lr_lower"], ci_upper=f["lr_upper"], unit="hours/week",
                          reference=f["truth_ate"], reference_label="planted effect",
                          verdict=verdict)
