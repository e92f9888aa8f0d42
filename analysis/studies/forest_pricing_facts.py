"""Facts, headline and limitations of the ``forest_pricing`` study."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from analysis.data.pricing import PricingData
from analysis.estimators.cate import SHORT
from analysis.result import headline_frame
from analysis.studies.forest_pricing_parts import BEST_RULE, POPULATION_ATE, REPORT

QUESTION = "Who should get the price change (effect on 90-day revenue)?"
NAMES = {"usage": "usage", "log_usage": "log usage", "engagement": "engagement (X2)",
         "tenure": "tenure", "tickets": "support tickets", "plan_standard": "standard plan",
         "plan_premium": "premium plan", "region_south": "south", "region_east": "east",
         "region_west": "west"}


def facts(config, tables: Mapping[str, pd.DataFrame], data: PricingData,
          nonlinear: PricingData) -> dict:
    """All facts of the study."""
    est = tables["estimates"].iloc[0]
    truth = float(data.tau.mean())
    calls = tables["report_calls"]
    out: dict = {
        "n_customers": len(data.frame), "treated_share": float(data.frame["treated"].mean()),
        "cost": config.cost, "n_trees": config.n_trees, "leaf": config.min_samples_leaf,
        "truth_ate": truth, "population_ate": POPULATION_ATE,
        "ate": float(est["estimate"]), "ate_se": float(est["std_error"]),
        "ate_lo": float(est["ci_lower"]), "ate_hi": float(est["ci_upper"]),
        "ate_covers_truth": bool(est["ci_lower"] <= truth <= est["ci_upper"]),
        "ate_significant": bool(est["ci_lower"] > 0 or est["ci_upper"] < 0),
        "report_ate": REPORT["ate"], "report_lo": REPORT["ci"][0], "report_hi": REPORT["ci"][1],
        "report_n": REPORT["n"], "report_width": REPORT["ci"][1] - REPORT["ci"][0],
        "report_p": REPORT["p"],
        # a p-value below 0.05 goes with a 95% interval that excludes zero
        "report_p_agrees_with_interval": bool((REPORT["p"] < 0.05)
                                              == (REPORT["ci"][0] > 0 or REPORT["ci"][1] < 0)),
        "ate_width": float(est["ci_upper"] - est["ci_lower"]),
        "report_narrower": bool(REPORT["ci"][1] - REPORT["ci"][0]
                                < est["ci_upper"] - est["ci_lower"]),
        "mean_cate": float(calls["estimate"].iloc[1]),
        "mean_cate_lo": float(calls["ci_lower"].iloc[1]),
        "mean_cate_hi": float(calls["ci_upper"].iloc[1]),
        "first_cate": float(calls["estimate"].iloc[2]),
        "first_cate_lo": float(calls["ci_lower"].iloc[2]),
        "first_cate_hi": float(calls["ci_upper"].iloc[2]),
        "helped_share": float(np.mean(data.tau > 0)),
        "tau_p5": float(np.percentile(data.tau, 5)),
        "tau_p95": float(np.percentile(data.tau, 95)),
        "nonlinear_truth": float(nonlinear.tau.mean()),
        "propensity_name": str(tables["nuisance"].query("model == 'propensity' and selected")
                               ["learner"].iloc[0]),
        "outcome_name": str(tables["nuisance"].query("model == 'outcome' and selected")
                            ["learner"].iloc[0]),
    }
    out.update(_method_facts(tables["methods"], "lin"))
    out.update(_method_facts(tables["methods_nonlinear"], "nl"))
    out["forest_beats_linear_nl"] = bool(out["nl_forest_pehe"] < out["nl_linear_dml_pehe"])
    out["linear_beats_forest_lin"] = bool(out["lin_linear_dml_pehe"] < out["lin_forest_pehe"])
    out.update(_calibration_facts(tables))
    out.update(_tail_facts(tables["cate"]))
    out.update(_policy_facts(tables["policies"], tables["tree"]))
    out.update(selection_facts(tables["selection"]))
    imp = tables["importance"]
    out.update({"top_feature": NAMES[imp["feature"].iloc[0]],
                "top_feature_share": float(imp["importance"].iloc[0] / imp["importance"].sum())})
    if "tuning" in tables:
        tun = tables["tuning"].copy()
        tun["honest"] = tun["honest"].fillna(True) if "honest" in tun else True
        best = tun.loc[tun["sqrt_pehe"].idxmin()]
        dishonest = tun[~tun["honest"].astype(bool)]
        honest = tun[tun["honest"].astype(bool)]
        out.update({"tune_best_leaf": int(best["min_samples_leaf"]),
                    "tune_best_pehe": float(best["sqrt_pehe"]),
                    "tune_pehe_min": float(tun["sqrt_pehe"].min()),
                    "tune_pehe_max": float(tun["sqrt_pehe"].max()),
                    "has_dishonest": bool(len(dishonest)),
                    "dishonest_coverage": float(dishonest["coverage"].iloc[0])
                    if len(dishonest) else float("nan"),
                    "honest_coverage": float(tun.loc[tun["chosen"], "coverage"].iloc[0]),
                    "honest_median_coverage": float(honest["coverage"].median())})
    out["has_tuning"] = "tuning" in tables
    out["has_coverage"] = "coverage" in tables
    if "coverage" in tables:
        out.update(coverage_facts(tables["coverage"], tables["coverage_reps"]))
        out.update({"coverage_customers": config.coverage_customers,
                    "coverage_trees": config.coverage_trees})
    return out


def coverage_facts(cov: pd.DataFrame, reps: pd.DataFrame) -> dict:
    """The Monte Carlo check of the headline pipeline: coverage against its band of three
    Monte Carlo SEs, and the learners the replications chose."""
    ate = cov.iloc[0]
    p, lo, hi = float(ate["coverage"]), float(ate["band_lower"]), float(ate["band_upper"])
    lgbm = reps["propensity_learner"].str.startswith("lgbm") | reps[
        "outcome_learner"].str.startswith("lgbm")
    return {"coverage_reps": int(ate["reps"]), "coverage_ate": p,
            "coverage_ate_mc_se": float(ate["mc_se"]),
            "coverage_band_lo": lo, "coverage_band_hi": hi,
            "coverage_ate_ok": bool(lo <= p <= hi), "coverage_under": bool(p < lo),
            "coverage_mean_se": float(ate["mean_se"]),
            "coverage_sd_estimate": float(ate["sd_estimate"]),
            "coverage_bias": float(ate["bias"]),
            "coverage_lgbm_reps": int(lgbm.sum()),
            "coverage_cate": float(cov.iloc[1]["coverage"])}


def _method_facts(m: pd.DataFrame, prefix: str) -> dict:
    by = m.set_index("method")
    out = {}
    for key, short in (("causal_forest", "forest"), ("linear_dml", "linear_dml"),
                       ("dr_learner", "dr"), ("ols_interactions", "ols"),
                       ("t_learner", "t"), ("s_learner", "s"), ("bcf", "bcf")):
        if key in by.index:
            r = by.loc[key]
            out.update({f"{prefix}_{short}_pehe": float(r["sqrt_pehe"]),
                        f"{prefix}_{short}_rank": float(r["rank_corr"]),
                        f"{prefix}_{short}_coverage": float(r["coverage"])})
    best = by["sqrt_pehe"].idxmin()
    out.update({f"{prefix}_best": SHORT[best],
                f"{prefix}_best_pehe": float(by["sqrt_pehe"].min())})
    return out


def selection_facts(sel: pd.DataFrame) -> dict:
    """The method chosen by held-out R-loss, and whether the loss rankings agree with the
    true √PEHE ranking of the same held-out predictions."""
    win = sel.loc[sel["chosen"]].iloc[0]
    best_true = sel.loc[sel["sqrt_pehe"].idxmin()]
    dr_best = sel.loc[sel["dr_loss"].idxmin()]
    same_order = bool((sel["r_rank"] == sel["pehe_rank"]).all())
    runner = sel.iloc[1] if len(sel) > 1 else win
    return {"chosen": SHORT[win["method"]], "chosen_key": str(win["method"]),
            "chosen_pehe": float(win["sqrt_pehe"]),
            "chosen_pehe_rank": int(win["pehe_rank"]),
            "true_best": SHORT[best_true["method"]],
            "true_best_pehe": float(best_true["sqrt_pehe"]),
            "chosen_is_true_best": bool(win["method"] == best_true["method"]),
            "dr_best": SHORT[dr_best["method"]],
            "dr_agrees": bool(dr_best["method"] == win["method"]),
            "rankings_identical": same_order,
            "n_rank_disagreements": int((sel["r_rank"] != sel["pehe_rank"]).sum()),
            "runner_up": SHORT[runner["method"]],
            "runner_up_gap": float(runner["r_loss"] - win["r_loss"]),
            "runner_up_gap_se": float(runner["r_loss_se"]),
            "n_selection_methods": len(sel)}


def _tail_facts(c: pd.DataFrame) -> dict:
    """Coverage of the forest's customer intervals in the tails of the true effect and in the
    middle (where honest forests are known to differ)."""
    covered = (c["causal_forest_lower"] <= c["tau"]) & (c["tau"] <= c["causal_forest_upper"])
    lo, hi = c["tau"].quantile([0.1, 0.9])
    tails = (c["tau"] < lo) | (c["tau"] > hi)
    return {"forest_cov_tails": float(covered[tails].mean()),
            "forest_cov_middle": float(covered[~tails].mean()),
            "forest_worse_in_tails": bool(covered[tails].mean() < covered[~tails].mean())}


def _calibration_facts(tables: Mapping[str, pd.DataFrame]) -> dict:
    b = tables["blp"].set_index("term")
    g = tables["gates"]
    r = tables["rate"].set_index("term")
    return {"blp_beta2": float(b.loc["beta2", "estimate"]),
            "blp_beta2_lo": float(b.loc["beta2", "ci_lower"]),
            "blp_beta2_hi": float(b.loc["beta2", "ci_upper"]),
            "blp_detects": bool(b.loc["beta2", "p_one_sided"] < 0.05),
            "gates_bottom": float(g["estimate"].iloc[0]),
            "gates_top": float(g["estimate"].iloc[-2]),
            "gates_bottom_truth": float(g["truth"].iloc[0]),
            "gates_top_truth": float(g["truth"].iloc[-2]),
            "autoc": float(r.loc["AUTOC", "estimate"]),
            "autoc_lo": float(r.loc["AUTOC", "ci_lower"]),
            "autoc_hi": float(r.loc["AUTOC", "ci_upper"]),
            "qini": float(r.loc["Qini", "estimate"]), "qini_lo": float(r.loc["Qini", "ci_lower"]),
            "qini_hi": float(r.loc["Qini", "ci_upper"]),
            "rate_significant": bool(r.loc["AUTOC", "ci_lower"] > 0)}


def _policy_facts(p: pd.DataFrame, tree: pd.DataFrame) -> dict:
    by = p.set_index("policy")
    best_row = by.loc[BEST_RULE]
    picked = by["picked_in_folds"].drop(index=[BEST_RULE])
    best = str(picked.idxmax())
    return {"value_all": float(by.loc["Treat everybody", "estimate"]),
            "value_all_lo": float(by.loc["Treat everybody", "ci_lower"]),
            "value_all_hi": float(by.loc["Treat everybody", "ci_upper"]),
            "value_tree": float(by.loc["Depth-2 policy tree", "estimate"]),
            "value_tree_lo": float(by.loc["Depth-2 policy tree", "ci_lower"]),
            "value_tree_hi": float(by.loc["Depth-2 policy tree", "ci_upper"]),
            "value_cate_cost": float(p.loc[p["chosen_rule"], "estimate"].iloc[0]),
            "value_oracle_true": float(by.loc["Oracle (true effect > cost)", "true_value"]),
            "regret_tree": float(by.loc["Depth-2 policy tree", "regret"]),
            "regret_cate_cost": float(p.loc[p["chosen_rule"], "regret"].iloc[0]),
            "tree_share": float(by.loc["Depth-2 policy tree", "share_treated"]),
            "best_policy": best, "best_policy_folds": int(picked.max()),
            "n_policy_folds": int(picked.sum()),
            "best_policy_value": float(best_row["estimate"]),
            "best_policy_lo": float(best_row["ci_lower"]),
            "best_policy_hi": float(best_row["ci_upper"]),
            "best_policy_true": float(best_row["true_value"]),
            "tree_rule": tree_rule(tree)}


def tree_rule(tree: pd.DataFrame) -> str:
    """The policy tree's treated leaves as a rule in words."""
    rules = []

    def walk(node: int, path: list[str]) -> None:
        r = tree.set_index("node").loc[node]
        if r["left"] < 0:
            if r["treat"] == 1:
                rules.append(" and ".join(path) or "everybody")
            return
        name = NAMES.get(r["feature"], r["feature"])
        walk(int(r["left"]), [*path, f"{name} ≤ {r['threshold']:.2f}"])
        walk(int(r["right"]), [*path, f"{name} > {r['threshold']:.2f}"])

    walk(0, [])
    return "; or ".join(rules) if rules else "nobody"


def headline(f: Mapping) -> pd.DataFrame:
    """The answer at a glance: the value of the learned targeting policy."""
    answer = (f"Target: {f['tree_rule']}" if f["tree_rule"] not in ("nobody", "everybody")
              else f"Treat {f['tree_rule']}")
    verdict = "recovers the planted effect" if f["ate_covers_truth"] else \
        "misses the planted effect"
    return headline_frame(question=QUESTION, answer=answer, estimate=f["ate"],
                          ci_lower=f["ate_lo"], ci_upper=f["ate_hi"], unit="$ (ATE)",
                          reference=f["truth_ate"], reference_label="planted ATE",
                          verdict=verdict)


def limitations(f: Mapping) -> pd.DataFrame:
    """What this analysis cannot do."""
    rows = [
        ("Simulated customers",
         "Every number comes from a simulator whose effects were planted, so the chapter shows "
         "what the methods do, not what a real price change does.",
         "The simulator has the report's shape plus confounding and a non-linear scenario; "
         "point the estimators at real data to learn about real customers."),
        ("No unmeasured confounding",
         "The offer depended on usage and engagement only; real offers may follow signals the "
         "data lacks.",
         "On real data this is an assumption; a sensitivity analysis (as in the DoWhy chapter) "
         "would bound it."),
        ("Honest forests under-cover at the tails",
         f"The forest's CATE intervals covered {f['lin_forest_coverage']:.0%} of customers' "
         f"true effects here: {f['forest_cov_tails']:.0%} among the 20% with the most extreme "
         f"effects and {f['forest_cov_middle']:.0%} among the rest.",
         "Target with the ranking and the policy tree, whose values are checked on held-out "
         "folds, not with single customers' intervals."),
        ("Policies are judged on the same period",
         "The policy values are doubly robust estimates on held-out folds of the same period; "
         "customers and prices change.",
         "Roll a learned policy out against a randomized holdout before trusting its value."),
    ]
    return pd.DataFrame(rows, columns=["limitation", "why_it_matters", "what_we_did"])
