"""Facts, headline and limitations of the ``aipw_panel`` study.

Every judgement the chapter's prose makes ("the interval includes zero", "the
large LightGBM propensity doubles the standard error") is computed here as a fact,
so the templates only format.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from analysis.data.kuairec import KuaiRecLog
from analysis.estimators.aipw import AIPW
from analysis.features.panel import Panel
from analysis.result import count_phrase, headline_frame
from analysis.studies.aipw_panel_parts import (
    POPULATION_USERS,
    REPORT,
    effective_sample_size,
)

QUESTION = "Does a high-watch day change a user's plays over the next 7 days?"


def facts(config, tables: Mapping[str, pd.DataFrame], model: AIPW,
          effects: np.ndarray | None, f: pd.DataFrame, w: np.ndarray, d: np.ndarray,
          panel: Panel, data: KuaiRecLog, coverage_truth: float | None) -> dict:
    """All facts of the study (numbers and the judgements templates branch on)."""
    est = tables["estimates"].set_index("method")
    out: dict = {"n_users": int(f["user"].nunique()), "n_rows": len(f),
                 "n_days": int(data.log["day"].nunique()),
                 "n_panel_days": int(f["day"].nunique()), "treated_share": float(d.mean()),
                 "outcome_mean": float(f["outcome"].mean()), "horizon": panel.horizon,
                 "far_ratio": panel.far_ratio, "high_share": panel.high_share,
                 "dropped_window": panel.dropped_window,
                 "dropped_history": panel.dropped_history,
                 "dropped_no_day": data.dropped_no_day,
                 "dropped_duplicates": data.dropped_duplicates,
                 "n_folds": config.n_folds, "n_boot": config.n_boot, "clip": config.clip,
                 "selected_m": model.selected_["ml_m"], "selected_g": model.selected_["ml_g"],
                 **{f"report_{k}": v for k, v in REPORT.items() if not isinstance(v, tuple)},
                 "report_aipw_lo": REPORT["aipw_ci"][0], "report_aipw_hi": REPORT["aipw_ci"][1],
                 "report_msm_lo": REPORT["msm_ci"][0], "report_msm_hi": REPORT["msm_ci"][1],
                 "dropped_inactive": panel.dropped_inactive}
    for key, row in est.iterrows():
        out.update({key: float(row["estimate"]), f"{key}_se": float(row["std_error"]),
                    f"{key}_lo": float(row["ci_lower"]), f"{key}_hi": float(row["ci_upper"]),
                    f"{key}_boot_se": float(row["boot_se"]),
                    f"{key}_boot_lo": float(row["boot_lower"]),
                    f"{key}_boot_hi": float(row["boot_upper"])})
    a = est.loc["aipw"]
    out.update({"aipw_p": float(a["p_value"]),
                "aipw_significant": bool(a["ci_lower"] > 0 or a["ci_upper"] < 0),
                "aipw_direction": "more" if a["estimate"] > 0 else "fewer",
                "aipw_boot_ratio": float(a["boot_se"] / a["std_error"]),
                "aipw_pct_of_outcome": float(a["estimate"] / f["outcome"].mean())})
    truth = None if effects is None else float(np.mean(effects))
    out["truth_ate"] = truth
    if truth is not None:
        out.update({"aipw_covers_truth": bool(a["ci_lower"] <= truth <= a["ci_upper"]),
                    "aipw_error": float(a["estimate"] - truth),
                    "naive_error": float(est.loc["naive", "estimate"] - truth),
                    "naive_times_truth": float(est.loc["naive", "estimate"] / truth),
                    "msm_covers_truth": bool(est.loc["msm", "ci_lower"] <= truth
                                             <= est.loc["msm", "ci_upper"])})
    out.update(_learner_facts(tables, model))
    out.update(_overlap_facts(tables, w, d, model))
    out["clip_matters"] = bool(out["clip_range"] > 0.25 * out["aipw_se"])
    out.update(_segment_facts(tables["segments"], tables["segment_contrasts"]))
    out.update(_negative_control_facts(tables["negative_control"]))
    out.update(_sensitivity_facts(tables["sensitivity"]))
    out.update(_heterogeneity_facts(tables))
    if "coverage" in tables:
        cov = tables["coverage"].set_index("interval")
        out.update({"coverage_reps": int(cov["reps"].iloc[0]),
                    "coverage_truth": coverage_truth,
                    "coverage_population": POPULATION_USERS,
                    "coverage_aipw": float(cov.iloc[0]["coverage"]),
                    "coverage_aipw_boot": float(cov.iloc[1]["coverage"]),
                    "coverage_msm": float(cov.iloc[2]["coverage"]),
                    "coverage_naive": float(cov.iloc[3]["coverage"]),
                    "coverage_users": config.coverage_users,
                    "coverage_days": config.coverage_days,
                    "coverage_band_lo": float(cov.iloc[0]["band_lower"]),
                    "coverage_band_hi": float(cov.iloc[0]["band_upper"]),
                    "coverage_ok": bool(all(cov.iloc[k]["band_lower"] <= cov.iloc[k]["coverage"]
                                            <= cov.iloc[k]["band_upper"] for k in (0, 1))),
                    "coverage_under": bool(min(cov.iloc[0]["coverage"], cov.iloc[1]["coverage"])
                                           < cov.iloc[0]["band_lower"])})
    out["has_coverage"] = "coverage" in tables
    return out


def _learner_facts(tables: Mapping[str, pd.DataFrame], model: AIPW) -> dict:
    prop = tables["learners_propensity"].set_index("learner")
    comb = tables["combinations"].set_index(["propensity", "outcome"])
    g = model.selected_["ml_g"]
    sel = comb.loc[(model.selected_["ml_m"], g)]
    large = comb.loc[("lgbm-large", g)] if ("lgbm-large", g) in comb.index else sel
    return {"large_prop_se_ratio": float(large["std_error"] / sel["std_error"]),
            "large_prop_max_weight": float(prop.loc["lgbm-large", "max_weight"])
            if "lgbm-large" in prop.index else float("nan"),
            "selected_max_weight": float(prop.loc[model.selected_["ml_m"], "max_weight"]),
            "large_prop_estimate": float(large["estimate"]),
            "n_combinations": len(comb),
            "combination_min": float(comb["estimate"].min()),
            "combination_max": float(comb["estimate"].max()),
            "large_prop_worse": bool(large["std_error"] > 1.2 * sel["std_error"])}


def _overlap_facts(tables: Mapping[str, pd.DataFrame], w: np.ndarray, d: np.ndarray,
                   model: AIPW) -> dict:
    m = model.nuisance_["m_hat"][0]
    bal = tables["balance"]
    clip = tables["clip_sensitivity"]
    ess = effective_sample_size(w, d)
    return {**ess, "ess_share_treated": ess["ess_treated"] / ess["n_treated"],
            "ess_share_untreated": ess["ess_untreated"] / ess["n_untreated"],
            "propensity_min": float(m.min()), "propensity_max": float(m.max()),
            "trimmed_share": float(model.trimmed_share_),
            "max_smd_before": float(bal["smd_before"].abs().max()),
            "max_smd_after": float(bal["smd_after"].abs().max()),
            "worst_covariate": str(bal["covariate"].iloc[0]),
            **_clip_facts(clip, model.selected_["ml_m"])}


def _clip_facts(clip: pd.DataFrame, selected: str) -> dict:
    """How far the clipping and trimming rules move the estimate, per propensity model."""
    sel = clip[clip["propensity"] == selected]["estimate"]
    large = clip[clip["propensity"] == "lgbm-large"]["estimate"]
    return {"n_clip_rules": int(len(sel)), "clip_range": float(sel.max() - sel.min()),
            "clip_min": float(sel.min()), "clip_max": float(sel.max()),
            "has_clip_large": bool(len(large)) and selected != "lgbm-large",
            "clip_large_min": float(large.min()) if len(large) else float("nan"),
            "clip_large_max": float(large.max()) if len(large) else float("nan"),
            "clip_large_range": float(large.max() - large.min()) if len(large) else
            float("nan")}


def _segment_facts(seg: pd.DataFrame, contrasts: pd.DataFrame) -> dict:
    sig = seg[seg["p_holm"] < 0.05]
    out = {"n_segments": len(seg), "n_segments_holm": len(sig),
           "segments_holm": "; ".join(f"{r.family.split(' (')[0].lower()}: {r.term}"
                                      for r in sig.itertuples()) or "none",
           "n_segments_raw": int((seg["p_value"] < 0.05).sum())}
    act = seg[seg["family_key"] == "activity"].reset_index(drop=True)
    con = contrasts[contrasts["family_key"] == "activity"].reset_index(drop=True)
    light_heavy = con[(con["first"] == act["term"].iloc[0])
                      & (con["second"] == act["term"].iloc[-1])].iloc[0]
    sig_c = contrasts[contrasts["p_holm"] < 0.05]
    out.update({"seg_light": float(act["estimate"].iloc[0]),
                "seg_heavy": float(act["estimate"].iloc[-1]),
                "seg_light_lo": float(act["boot_lower_adj"].iloc[0]),
                "seg_light_hi": float(act["boot_upper_adj"].iloc[0]),
                "seg_heavy_lo": float(act["boot_lower_adj"].iloc[-1]),
                "seg_heavy_hi": float(act["boot_upper_adj"].iloc[-1]),
                "n_contrasts": len(contrasts), "n_contrasts_holm": len(sig_c),
                "contrasts_holm": "; ".join(
                    f"{r.family.split(' (')[0].lower()}: {r.term}"
                    for r in sig_c.itertuples()) or "none",
                "light_minus_heavy": float(light_heavy["estimate"]),
                "light_minus_heavy_lo": float(light_heavy["boot_lower_adj"]),
                "light_minus_heavy_hi": float(light_heavy["boot_upper_adj"]),
                "light_minus_heavy_p_holm": float(light_heavy["p_holm"]),
                # Targeting the least active needs them to gain MORE than the most
                # active (a contrast that survives Holm), not an effect unlike zero.
                "rec_target_light": bool(light_heavy["p_holm"] < 0.05
                                         and light_heavy["estimate"] > 0)})
    if "truth" in seg:
        out.update({"seg_truth_covered": int(seg["covers_truth_adj"].sum()),
                    "seg_truth_phrase": count_phrase(int(seg["covers_truth_adj"].sum()),
                                                     len(seg), "corrected intervals",
                                                     "contain") + " their true effect",
                    "seg_light_truth": float(act["truth"].iloc[0]),
                    "seg_heavy_truth": float(act["truth"].iloc[-1]),
                    "light_minus_heavy_truth": float(light_heavy["truth"])})
    return out


def _sensitivity_facts(sens: pd.DataFrame) -> dict:
    """Robustness values and the bounds at the benchmark strengths."""
    base, act, hist = sens.iloc[0], sens.iloc[1], sens.iloc[2]
    out = {"sens_rv": float(base["rv"]), "sens_rva": float(base["rva"])}
    for key, r in (("act", act), ("hist", hist)):
        out.update({f"sens_{key}_cf_y": float(r["cf_y"]), f"sens_{key}_cf_d": float(r["cf_d"]),
                    f"sens_{key}_lo": float(r["theta_lower"]),
                    f"sens_{key}_hi": float(r["theta_upper"]),
                    f"sens_{key}_ci_lo": float(r["ci_bound_lower"]),
                    f"sens_{key}_ci_hi": float(r["ci_bound_upper"]),
                    f"sens_{key}_keeps_sign": bool(r["ci_bound_lower"] > 0
                                                   or r["ci_bound_upper"] < 0)})
    return out


def _negative_control_facts(nc: pd.DataFrame) -> dict:
    t = nc.set_index("method")
    a, n = t.loc["aipw"], t.loc["naive"]
    return {"nc_aipw": float(a["estimate"]), "nc_aipw_lo": float(a["ci_lower"]),
            "nc_aipw_hi": float(a["ci_upper"]),
            "nc_passes": bool(a["ci_lower"] <= 0 <= a["ci_upper"]),
            "nc_naive": float(n["estimate"]), "nc_naive_lo": float(n["ci_lower"]),
            "nc_naive_hi": float(n["ci_upper"]),
            "nc_naive_flags": bool(not n["ci_lower"] <= 0 <= n["ci_upper"])}


def _heterogeneity_facts(tables: Mapping[str, pd.DataFrame]) -> dict:
    b = tables["blp"].set_index("term")
    g = tables["gates"]
    diff = g.iloc[-1]
    imp = tables["importance"]
    out = {"blp_beta1": float(b.loc["beta1", "estimate"]),
           "blp_beta2": float(b.loc["beta2", "estimate"]),
           "blp_beta2_se": float(b.loc["beta2", "std_error"]),
           "blp_beta2_lo": float(b.loc["beta2", "ci_lower"]),
           "blp_beta2_hi": float(b.loc["beta2", "ci_upper"]),
           "blp_beta2_p": float(b.loc["beta2", "p_one_sided"]),
           "blp_detects": bool(b.loc["beta2", "p_one_sided"] < 0.05),
           "gates_diff": float(diff["estimate"]), "gates_diff_lo": float(diff["ci_lower"]),
           "gates_diff_hi": float(diff["ci_upper"]),
           "gates_diff_significant": bool(diff["ci_lower"] > 0 or diff["ci_upper"] < 0),
           "gates_bottom": float(g["estimate"].iloc[0]),
           "gates_top": float(g["estimate"].iloc[-2]),
           "het_actionable": bool(b.loc["beta2", "p_one_sided"] < 0.05
                                  and diff["ci_lower"] > 0),
           "top_feature": str(imp["covariate"].iloc[0]),
           "top_feature_share": float(imp["share"].iloc[0])}
    if "truth" in g:
        out["gates_truth_diff"] = float(g["truth"].iloc[-1])
    return out


def headline(f: Mapping) -> pd.DataFrame:
    """The answer at a glance: AIPW with the selected learners."""
    if not f["aipw_significant"]:
        answer = "No effect detectable"
    else:
        answer = f"Yes: {f['aipw_direction']} plays"
    truth = f["truth_ate"]
    if truth is None:
        verdict, label = "no known answer (real data)", ""
    else:
        label = "planted effect"
        verdict = "recovers the planted effect" if f["aipw_covers_truth"] else \
            "misses the planted effect"
    return headline_frame(question=QUESTION, answer=answer, estimate=f["aipw"],
                          ci_lower=f["aipw_lo"], ci_upper=f["aipw_hi"], unit="plays",
                          reference=truth, reference_label=label, verdict=verdict)


def limitations(f: Mapping) -> pd.DataFrame:
    """What this analysis cannot do, with the numbers behind each point."""
    rows = [
        ("Exposure is not randomized",
         "The estimate is causal only if the covariates (activity and watching over the three "
         "previous days, the user's longer history, and the calendar) capture everything "
         "that drives both a high-watch day and the next week's plays.",
         "On the simulator this holds by construction and the estimate is checked against "
         "the truth; on real data it is an assumption, probed by a negative-control outcome "
         f"({f['nc_aipw']:+.2f} plays on days t−7..t−4, which must be 0) and bounded for an "
         f"omitted confounder (robustness value {f['sens_rv']:.1%}). After weighting the "
         f"largest standardised difference is {f['max_smd_after']:.3f}."),
        ("One day, not a policy",
         "The estimand is the effect of one more high-watch day with later days following "
         "their natural course, not the effect of a policy of many high-watch days.",
         "A policy's effect compounds over days; estimating it needs a marginal structural "
         "model over treatment histories, which this chapter does not fit."),
        ("Users are few clusters",
         f"{f['n_users']:,} users give {f['n_rows']:,} user-days, but a user's days are "
         "dependent; the effective sample is closer to the number of users.",
         "Folds, standard errors and the bootstrap all resample whole users."),
        ("Segments are many tests",
         f"{f['n_segments']} segments were tested; at p < 0.05, {f['n_segments_raw']} "
         "look different from zero before any correction.",
         f"Holm's correction over all {f['n_segments']}: {f['n_segments_holm']} remain; "
         f"of {f['n_contrasts']} differences between segments, {f['n_contrasts_holm']} remain, "
         "and only those may drive targeting. Intervals are Bonferroni-widened."),
        ("The learner choice matters",
         "A large LightGBM propensity model over-fits a sample of this size and inflates "
         f"the standard error {f['large_prop_se_ratio']:.1f}-fold.",
         f"Learners are chosen by cross-validated loss; all {f['n_combinations']} "
         "combinations are shown."),
    ]
    return pd.DataFrame(rows, columns=["limitation", "why_it_matters", "what_we_did"])
