"""Facts, checks, headline and limitations of ``interference_slates``."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import norm

from analysis.interference.slates import Slates
from analysis.result import check_row, headline_frame
from analysis.studies.interference_parts import REPORT

QUESTION = "Does promoting a lower-ranked item in a slate raise total clicks?"
DIM = "Difference in means"


def facts(config, tables: Mapping[str, pd.DataFrame], slates: Slates) -> dict:
    """All facts of the study."""
    est = tables["estimates"]
    dim = est[est["estimator"] == DIM].set_index("estimand")
    out: dict = {"n_slates": slates.n_slates, "n_users": int(len(np.unique(slates.user))),
                 "slate_size": slates.size, "sessions": config.sessions,
                 "n_clusters": len(slates.cluster_names),
                 "saturation_low": config.saturation_low,
                 "saturation_high": config.saturation_high,
                 "intensity": config.intensity, "attention": config.attention,
                 "substitution": config.substitution,
                 **{f"report_{k}": v for k, v in REPORT.items()},
                 "report_total_per_1000": 1000 * REPORT["total"]}
    for key, r in dim.iterrows():
        out.update({f"{key}": float(r["estimate"]), f"{key}_lo": float(r["ci_lower"]),
                    f"{key}_hi": float(r["ci_upper"]), f"{key}_oracle": float(r["oracle"]),
                    f"{key}_per_1000": float(r["per_1000"]),
                    f"{key}_oracle_per_1000": float(r["oracle_per_1000"]),
                    f"{key}_lo_per_1000": float(1000 * r["ci_lower"]),
                    f"{key}_hi_per_1000": float(1000 * r["ci_upper"]),
                    f"{key}_covers": bool(r["covers_oracle"])})
    by_est = est[est["estimand"] == "total"].set_index("estimator")
    out.update({"total_lin": float(by_est.loc["Lin regression adjustment", "estimate"]),
                "total_lin_se": float(by_est.loc["Lin regression adjustment", "std_error"]),
                "total_aipw": float(by_est.loc["AIPW (cross-fitted LightGBM)", "estimate"]),
                "total_aipw_se": float(by_est.loc["AIPW (cross-fitted LightGBM)",
                                                  "std_error"]),
                "total_dim_se": float(by_est.loc[DIM, "std_error"]),
                "n_covering": int(est["covers_oracle"].sum()), "n_estimates": len(est),
                "n_above_oracle": int((est["estimate"] > est["oracle"]).sum())})
    out["total_negative"] = bool(out["total_hi"] < 0)
    out["total_positive"] = bool(out["total_lo"] > 0)
    out["total_unclear"] = not (out["total_negative"] or out["total_positive"])
    out["all_cover"] = bool(out["n_covering"] == out["n_estimates"])
    out["total_sign_word"] = "loses" if out["total"] < 0 else "gains"
    out["total_abs_per_1000"] = abs(out["total_per_1000"])
    out["spillovers_all_negative"] = bool((dim.loc[[k for k in dim.index
                                                    if k not in ("direct", "total")],
                                                   "estimate"] < 0).all())
    out["additivity_gap"] = float(tables["decomposition"]["additivity_gap"].iloc[2])
    out["additivity_exact"] = bool(abs(out["additivity_gap"]) < 1e-9)
    naive = tables["naive"]
    out.update({"naive_per_1000": float(naive["per_1000"].iloc[0]),
                "naive_bias_per_1000": float(naive["per_1000"].iloc[2])})
    out.update(_hh_facts(tables["hh"], config))
    out.update(_risk_facts(tables["by_cluster"], tables["by_position"]))
    out.update(_policy_facts(tables["policies"]))
    out.update(_sensitivity_facts(tables["sensitivity"]))
    out["has_coverage"] = "coverage" in tables
    if "coverage" in tables:
        cov = tables["coverage"].set_index("interval")["coverage"]
        out.update({"coverage_reps": int(tables["coverage"]["reps"].iloc[0]),
                    "coverage_direct": float(cov["Direct effect, slate-clustered"]),
                    "coverage_total": float(cov["Total effect, slate-clustered"]),
                    "coverage_item_iid": float(cov["Total effect from item rows, "
                                                   "unclustered"]),
                    "coverage_item_slate": float(cov["Total effect from item rows, "
                                                     "slate-clustered"]),
                    "coverage_hh_min": float(cov[[i for i in cov.index
                                                  if i.startswith("Hudgens")]].min()),
                    "coverage_hh_max": float(cov[[i for i in cov.index
                                                  if i.startswith("Hudgens")]].max())})
        hh = tables["coverage"][tables["coverage"]["interval"].str.startswith("Hudgens")]
        out["hh_se_ratio_min"] = float((hh["mean_se"] / hh["sd_error"]).min())
        out["hh_se_ratio_max"] = float((hh["mean_se"] / hh["sd_error"]).max())
        ratio = tables["coverage"].set_index("interval")
        ratio = ratio["mean_se"] / ratio["sd_error"]
        out["item_iid_se_ratio"] = float(ratio["Total effect from item rows, unclustered"])
        out["item_slate_se_ratio"] = float(ratio["Total effect from item rows, "
                                                 "slate-clustered"])
        # coverage of a normal interval whose SE is this ratio of the true spread
        out["item_iid_implied_coverage"] = float(
            2 * norm.cdf(1.959964 * out["item_iid_se_ratio"]) - 1)
    return out


def _hh_facts(hh: pd.DataFrame, config) -> dict:
    by = hh.set_index("term")
    hi = f"DE({config.saturation_high:g})"
    lo = f"DE({config.saturation_low:g})"
    gap = float(by.loc["TE", "estimate"] - by.loc[hi, "estimate"] - by.loc["IE", "estimate"])
    return {"hh_de_low": float(by.loc[lo, "estimate"]), "hh_de_high": float(by.loc[hi, "estimate"]),
            "hh_de_high_oracle": float(by.loc[hi, "oracle"]),
            "hh_ie": float(by.loc["IE", "estimate"]), "hh_ie_lo": float(by.loc["IE", "ci_lower"]),
            "hh_ie_hi": float(by.loc["IE", "ci_upper"]), "hh_ie_oracle": float(by.loc["IE",
                                                                                       "oracle"]),
            "hh_te": float(by.loc["TE", "estimate"]), "hh_te_oracle": float(by.loc["TE", "oracle"]),
            "hh_oe": float(by.loc["OE", "estimate"]), "hh_oe_oracle": float(by.loc["OE", "oracle"]),
            "hh_additivity_gap": gap, "hh_additivity_exact": bool(abs(gap) < 1e-9),
            "hh_n_covering": int(by["covers_oracle"].sum()), "hh_n": len(by),
            "hh_between_missed": bool(not by.loc[["IE", "TE", "OE"], "covers_oracle"].all()),
            "share_low": float(by.loc[lo, "realised_share"]),
            "share_high": float(by.loc[hi, "realised_share"]),
            "hh_ie_negative": bool(by.loc["IE", "ci_upper"] < 0)}


def _risk_facts(cl: pd.DataFrame, pos: pd.DataFrame) -> dict:
    """The groups that look riskiest by their estimate (what a team would see), with the
    oracle beside them (how much of that is noise)."""
    out: dict = {"n_cluster_groups": len(cl), "n_position_groups": len(pos)}
    for key, t in (("cluster", cl), ("position", pos)):
        worst = t.loc[t["estimate"].idxmin()] if len(t) else None
        out[f"riskiest_{key}"] = str(worst["term"]) if worst is not None else "none"
        for col in ("estimate", "oracle"):
            out[f"riskiest_{key}_{col}_per_1000"] = float(1000 * worst[col]) \
                if worst is not None else float("nan")
    if len(pos):
        out |= {"position_first": str(pos["term"].iloc[0]),
                "position_first_oracle_per_1000": float(1000 * pos["oracle"].iloc[0]),
                "position_last": str(pos["term"].iloc[-1]),
                "position_last_oracle_per_1000": float(1000 * pos["oracle"].iloc[-1]),
                "position_costs_rise": bool(pos["oracle"].is_monotonic_decreasing)}
    return out


def _policy_facts(p: pd.DataFrame) -> dict:
    by = p.set_index("policy")
    learned = by.drop(index=[i for i in by.index if i.startswith("Oracle")])
    best = learned["oracle_per_1000"].idxmax()
    return {"policy_all_per_1000": float(by.loc["Promote all", "oracle_per_1000"]),
            "policy_all_ipw": float(by.loc["Promote all", "ipw_per_1000"]),
            "policy_best": str(best), "policy_best_per_1000": float(learned.loc[best,
                                                                                "oracle_per_1000"]),
            "policy_best_ipw": float(learned.loc[best, "ipw_per_1000"]),
            "policy_best_ipw_lo": float(learned.loc[best, "ci_lower_per_1000"]),
            "policy_best_ipw_hi": float(learned.loc[best, "ci_upper_per_1000"]),
            "policy_oracle_per_1000": float(by.loc["Oracle: the true top 25%",
                                                   "oracle_per_1000"]),
            "policy_best_positive": bool(learned.loc[best, "oracle_per_1000"] > 0),
            "policy_all_at_experiment_per_1000": float(
                by.loc["Promote all", "oracle_at_experiment_per_1000"]),
            "policy_fatigue_gap_per_1000": float(
                (p["oracle_per_1000"] - p["oracle_at_experiment_per_1000"]).abs().max())}


def _sensitivity_facts(s: pd.DataFrame) -> dict:
    flips = s[s["negative"] != s["negative"].mode().iloc[0]]
    return {"sens_n": len(s), "sens_n_negative": int(s["negative"].sum()),
            "sens_flips": "; ".join(f"{r.parameter.lower()} {r.value:g}"
                                    for r in flips.itertuples()) or "none",
            "sens_any_flip": bool(len(flips)),
            "sens_min_per_1000": float(s["per_1000"].min()),
            "sens_max_per_1000": float(s["per_1000"].max())}


def checks(tables: Mapping[str, pd.DataFrame]) -> list[dict]:
    """Known-answer checks: every design-1 and design-2 interval against its oracle."""
    rows = []
    for r in tables["estimates"].itertuples():
        rows.append(check_row(f"{r.estimator}: {r.term}", "planted truth", r.estimate,
                              r.ci_lower, r.ci_upper, r.oracle, "oracle (click model)",
                              detail="per promoted slate"))
    for r in tables["hh"].itertuples():
        rows.append(check_row(f"Hudgens-Halloran {r.term}", "planted truth", r.estimate,
                              r.ci_lower, r.ci_upper, r.oracle, "oracle (click model)",
                              detail="two-stage design"))
    for r in tables["policies"].itertuples():
        rows.append(check_row(f"Off-policy value: {r.policy}", "planted truth",
                              r.ipw_per_1000 / 1000, r.ci_lower_per_1000 / 1000,
                              r.ci_upper_per_1000 / 1000,
                              r.oracle_at_experiment_per_1000 / 1000,
                              "oracle at the experiment's 50% saturation",
                              detail="per eligible slate; errors clustered by user"))
    n = tables["naive"]
    item = n.iloc[0]
    rows.append(check_row("Item-level A/B read as the value of a promotion", "planted truth",
                          item["per_1000"] / 1000, item["ci_lower_per_1000"] / 1000,
                          item["ci_upper_per_1000"] / 1000, n["per_1000"].iloc[1] / 1000,
                          "true total slate effect", role="counterexample"))
    return rows


def headline(f: Mapping) -> pd.DataFrame:
    """The answer at a glance: the total slate effect per promoted slate."""
    if f["total_negative"]:
        answer = "No: it costs clicks overall"
    elif f["total_positive"]:
        answer = "Yes: total clicks rise"
    else:
        answer = "No net gain detectable"
    verdict = "recovers the oracle" if f["total_covers"] else "misses the oracle"
    return headline_frame(question=QUESTION, answer=answer, estimate=f["total"],
                          ci_lower=f["total_lo"], ci_upper=f["total_hi"],
                          unit="clicks/slate", reference=f["total_oracle"],
                          reference_label="oracle", verdict=verdict)


def limitations(f: Mapping) -> pd.DataFrame:
    """What this analysis cannot do."""
    rows = [
        ("MovieLens has ratings, not impressions",
         "Slates and clicks are simulated from a recommender fitted to ratings; no user saw "
         "these slates.", "Every estimate is checked against the click model's exact oracle; "
                          "on real logs the oracle is unknown."),
        ("The click model is assumed",
         "Position bias, a limited attention budget and within-genre substitution are "
         "modelled, not measured.",
         f"The sensitivity grid varies each: the total effect's sign "
         f"{'changes' if f['sens_any_flip'] else 'does not change'} across the "
         f"{f['sens_n']} settings tried."),
        ("Genres are coarse substitutes",
         "A movie competes with its primary genre only; sequels, directors and moods are "
         "ignored.", "Five spillover definitions, from all other items to near-position "
                     "substitutes, show how much the definition matters."),
        ("One promotion design",
         "The focal item always jumps to the top; smaller moves or badges behave "
         "differently.", "The promotion's intensity is varied in the sensitivity grid."),
        ("Sessions of a user are not independent",
         "Promotion fatigue links a user's sessions, which is why the two-stage design "
         "randomises users to saturations.",
         "Design 1 randomises within users; design 2 estimates the spillover across "
         "sessions."),
        ("Policies are valued from a 50% experiment",
         "A policy that promotes fewer (or more) of a user's sessions changes the user's "
         "promotion fatigue, which an experiment at one saturation does not show.",
         "The off-policy estimates (errors clustered by user) are checked against the 50% "
         "oracle, and every policy is also valued exactly under the saturation it implies; "
         "on real logs only a test at several saturations measures the difference."),
    ]
    return pd.DataFrame(rows, columns=["limitation", "why_it_matters", "what_we_did"])
