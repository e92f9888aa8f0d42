"""Facts, the published figures and the headline of the ``ihdp_benchmark`` study."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from analysis.estimators.cate import SHORT
from analysis.result import headline_frame

TARGETING_COVERAGE = 0.80
"""Per-unit coverage below which the book warns against targeting with a method's
intervals (nominal 95%)."""
PEHE_GOAL = 1.6
"""The issue's goal for the recommended method's mean √PEHE on IHDP."""

PUBLISHED = pd.DataFrame([
    {"method": "Causal forest", "sqrt_pehe": 3.8},
    {"method": "BART", "sqrt_pehe": 2.1},
    {"method": "CFR (counterfactual regression, Wasserstein)", "sqrt_pehe": 0.71},
])
"""Shalit, Johansson & Sontag (2017), Table 1: within-sample √PEHE on IHDP (surface B of
the NPCI package, 1,000 realizations); their numbers, quoted, not recomputed here."""
PUBLISHED_REALIZATIONS = 1000


def facts(config, summary: pd.DataFrame) -> dict:
    """All facts of the study."""
    by = summary.set_index("method")
    out: dict = {"n_realizations": config.n_realizations, "n_units": 747,
                 "last_realization": config.n_realizations - 1,
                 "n_methods": len(by), "targeting_coverage": TARGETING_COVERAGE,
                 "pehe_goal": PEHE_GOAL, "published_realizations": PUBLISHED_REALIZATIONS}
    for m, r in by.iterrows():
        out.update({f"{m}_pehe": float(r["pehe_mean"]), f"{m}_pehe_sd": float(r["pehe_sd"]),
                    f"{m}_ate_error": float(r["ate_error_mean"]),
                    f"{m}_ate_coverage": float(r["ate_coverage"]),
                    f"{m}_cate_coverage": float(r["cate_coverage_mean"])})
    published = PUBLISHED.set_index("method")["sqrt_pehe"]
    out.update({"pub_forest": float(published["Causal forest"]),
                "pub_bart": float(published["BART"]),
                "pub_cfr": float(published.iloc[2])})
    with_ci = by[by["cate_coverage_mean"].notna()]
    usable = with_ci[with_ci["cate_coverage_mean"] >= TARGETING_COVERAGE]
    pool = usable if len(usable) else with_ci
    rec = str(pool["pehe_mean"].idxmin())
    r = by.loc[rec]
    best = str(by["pehe_mean"].idxmin())
    warned = with_ci[with_ci["cate_coverage_mean"] < TARGETING_COVERAGE] \
        .sort_values("cate_coverage_mean")
    n = int(r["realizations"])
    half = 1.959964 * float(r["cate_coverage_sd"]) / np.sqrt(n) if n > 1 else float("nan")
    out.update({
        "recommended_key": rec, "recommended": SHORT[rec],
        "recommended_pehe": float(r["pehe_mean"]),
        "recommended_pehe_sd": float(r["pehe_sd"]),
        "recommended_coverage": float(r["cate_coverage_mean"]),
        "recommended_coverage_lo": float(r["cate_coverage_mean"]) - half,
        "recommended_coverage_hi": float(r["cate_coverage_mean"]) + half,
        "recommended_ate_error": float(r["ate_error_mean"]),
        "recommended_ate_coverage": float(r["ate_coverage"]),
        "recommended_meets_coverage": bool(r["cate_coverage_mean"] >= TARGETING_COVERAGE),
        "recommended_coverage_hi_below_nominal": bool(float(r["cate_coverage_mean"]) + half
                                                      < 0.95),
        "recommended_meets_pehe_goal": bool(r["pehe_mean"] <= PEHE_GOAL),
        "recommended_is_most_accurate": rec == best,
        "most_accurate": SHORT[best], "most_accurate_pehe": float(by.loc[best, "pehe_mean"]),
        "n_usable": len(usable), "n_with_intervals": len(with_ci),
        "usable_list": _listing(usable.sort_values("cate_coverage_mean", ascending=False)),
        "warned_list": _listing(warned), "has_warned": bool(len(warned)),
        "no_intervals_list": ", ".join(SHORT[m] for m in by.index
                                       if m not in with_ci.index),
        "forest_pehe": float(by.loc["causal_forest", "pehe_mean"]),
        "forest_coverage": float(by.loc["causal_forest", "cate_coverage_mean"]),
        "forest_warned": bool(by.loc["causal_forest", "cate_coverage_mean"]
                              < TARGETING_COVERAGE),
    })
    return out


def _listing(rows: pd.DataFrame) -> str:
    """"BCF (82%), OLS × X (61%)": methods with their mean per-unit coverage."""
    return ", ".join(f"{SHORT[m]} ({r['cate_coverage_mean']:.0%})" for m, r in rows.iterrows())


def headline(f: Mapping) -> pd.DataFrame:
    """The recommended method's per-unit coverage against the nominal 95%."""
    verdict = ("its intervals are usable for targeting" if f["recommended_meets_coverage"]
               else "no method's intervals reach 80%: do not target on them")
    return headline_frame(
        question="Which per-unit effect intervals can a reader target with (IHDP)?",
        answer=f"{f['recommended']}'s, covering {f['recommended_coverage']:.0%} of true "
               f"effects (√PEHE {f['recommended_pehe']:.2f})",
        estimate=f["recommended_coverage"], ci_lower=f["recommended_coverage_lo"],
        ci_upper=f["recommended_coverage_hi"], unit="share covered",
        reference=0.95, reference_label="nominal", verdict=verdict)
