"""Figures, tables and templated text of the AIPW chapter (``aipw_panel``).

Everything is drawn from the study's result; nothing here refits.  The source
report's numbers come from the result's ``report`` table, labelled as quotations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from IPython.display import Markdown
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from analysis.report.style import CYCLE, PALETTE, new_figure
from analysis.report.summaries import render_template
from analysis.report.tables import md_table
from analysis.result import StudyResult

TIDY = {"term": "Estimator", "estimate": "Estimate", "std_error": "SE",
        "ci_lower": "95% CI low", "ci_upper": "95% CI high", "p_value": "p-value"}


def paragraph(result: StudyResult, name: str) -> Markdown:
    """A templated block (``templates/studies/aipw_panel_<name>.md.j2``) from the facts."""
    return Markdown(render_template(f"studies/aipw_panel_{name}.md.j2", result.facts))


def recommendations(result: StudyResult) -> Markdown:
    """The recommendations, generated from the results."""
    return paragraph(result, "recommendations")


# --------------------------------------------------------------------------- data


def tbl_report(result: StudyResult) -> Markdown:
    """The source report's quoted numbers, with the precision the report printed."""
    t = result.table("report").copy()
    for col in ("estimate", "ci_lower", "ci_upper"):
        t[col] = [f"{v:g}".replace("-", "−") for v in t[col]]
    return md_table(t, rename={"estimator": "Estimator (report, quoted)",
                                         "estimate": "Estimate", "ci_lower": "CI low",
                                         "ci_upper": "CI high"})


def tbl_summary(result: StudyResult) -> Markdown:
    """The panel at a glance."""
    return md_table(result.table("summary"), rename={"measure": "Measure", "value": "Value"})


def tbl_covariates(result: StudyResult) -> Markdown:
    """The covariates and their definitions."""
    return md_table(result.table("covariates"), rename={"covariate": "Covariate",
                                                        "definition": "Definition"})


def fig_timeline(result: StudyResult) -> Figure:
    """Which days define the covariates, the treatment and the outcome of user-day t."""
    h = int(result.facts["horizon"])
    fig, ax = new_figure(height=2.1)
    spans = [(-3, 0, "Covariates\ndays t−3 … t−1", PALETTE["green"]),
             (0, 1, "Treatment\nday t", PALETTE["orange"]),
             (1, 1 + h, f"Outcome: plays on\ndays t+1 … t+{h}", PALETTE["blue"])]
    for lo, hi, label, color in spans:
        ax.barh(0, hi - lo, left=lo, height=0.5, color=color, alpha=0.85, edgecolor="white")
        ax.text((lo + hi) / 2, 0.33, label, ha="center", va="bottom", color=color,
                fontsize=8.5, fontweight="bold")
    ax.set_xticks(np.arange(-3, h + 1) + 0.5,
                  [f"t{k:+d}" if k else "t" for k in range(-3, h + 1)], fontsize=8)
    ax.set_xlim(-3.2, h + 1.2)
    ax.set_ylim(-0.35, 0.85)
    ax.set_yticks([])
    ax.grid(False)
    ax.spines["left"].set_visible(False)
    ax.set_title("One row of the panel: what comes from which day")
    return fig


# --------------------------------------------------------------------------- overlap


def fig_overlap(result: StudyResult) -> Figure:
    """Distribution of the selected propensity model's estimates, by arm."""
    t = result.table("overlap")
    f = result.facts
    fig, ax = new_figure(height=3.0)
    width = t["upper"] - t["lower"]
    ax.bar(t["lower"], t["untreated"], width=width, align="edge", color=PALETTE["blue"],
           alpha=0.55, label="Other days")
    ax.bar(t["lower"], t["treated"], width=width, align="edge", color=PALETTE["orange"],
           alpha=0.55, label="High-watch days")
    ax.set_xlabel(f"Estimated propensity of a high-watch day ({f['selected_m']} model)")
    ax.set_ylabel("Share of the arm's user-days")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.legend()
    ax.set_title("Overlap: propensities of both arms")
    return fig


def fig_balance(result: StudyResult) -> Figure:
    """Standardised differences of the covariates before and after weighting."""
    t = result.table("balance").iloc[::-1]
    fig, ax = new_figure(height=0.26 * len(t) + 1.3)
    y = np.arange(len(t))
    ax.axvspan(-0.1, 0.1, color=PALETTE["light"], alpha=0.5, lw=0)
    ax.axvline(0, color=PALETTE["grey"], lw=0.8)
    ax.hlines(y, t["smd_before"], t["smd_after"], color=PALETTE["light"], lw=1.5)
    ax.scatter(t["smd_before"], y, facecolors="white", edgecolors=PALETTE["red"], s=28,
               label="Before weighting", zorder=3)
    ax.scatter(t["smd_after"], y, color=PALETTE["green"], s=28, label="After weighting",
               zorder=3)
    ax.set_yticks(y, t["covariate"], fontsize=8)
    ax.set_xlabel("Standardised mean difference (high-watch minus other days)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Balance before and after weighting (shaded: |SMD| < 0.1)")
    return fig


# --------------------------------------------------------------------------- learners


def tbl_learners(result: StudyResult) -> Markdown:
    """Cross-validated losses of the candidate learners."""
    p = result.table("learners_propensity")
    g = result.table("learners_outcome")
    t = pd.DataFrame({
        "Learner": p["learner"], "Propensity log loss": p["log_loss"],
        "Calibration error": p["ece"], "Largest weight": p["max_weight"],
        "Chosen (propensity)": p["selected"], "Outcome RMSE": g["rmse"].to_numpy(),
        "Chosen (outcome)": g["selected"].to_numpy()})
    return md_table(t, digits={"Propensity log loss": 4, "Calibration error": 4,
                               "Largest weight": 1, "Outcome RMSE": 2})


def fig_calibration(result: StudyResult) -> Figure:
    """Calibration curve of each candidate propensity model."""
    t = result.table("calibration")
    losses = result.table("learners_propensity").set_index("learner")
    fig, ax = new_figure(height=3.4)
    ax.plot([0, 1], [0, 1], color=PALETTE["grey"], ls="--", lw=1, label="Perfect calibration")
    for color, (key, part) in zip(CYCLE, t.groupby("learner", sort=False), strict=False):
        ax.plot(part["predicted"], part["observed"], "o-", color=color, ms=4,
                label=f"{key} (log loss {losses.loc[key, 'log_loss']:.4f})")
    ax.set_xlabel("Predicted propensity (bin mean)")
    ax.set_ylabel("Observed share of high-watch days")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("Are the propensity models calibrated? (out-of-fold)")
    return fig


def tbl_combinations(result: StudyResult) -> Markdown:
    """AIPW under every propensity x outcome pair."""
    t = result.table("combinations")[["propensity", "outcome", "estimate", "std_error",
                                      "ci_lower", "ci_upper", "selected"]]
    return md_table(t, digits=2, rename={"propensity": "Propensity", "outcome": "Outcome",
                                         "estimate": "AIPW estimate", "std_error": "SE",
                                         "ci_lower": "95% CI low", "ci_upper": "95% CI high",
                                         "selected": "Chosen by CV"})


# --------------------------------------------------------------------------- estimates


def tbl_estimates(result: StudyResult) -> Markdown:
    """Every estimator with its analytic and bootstrap intervals (and the truth)."""
    t = result.table("estimates")
    cols = ["term", "estimate", "std_error", "ci_lower", "ci_upper", "boot_se", "boot_lower",
            "boot_upper"] + (["truth", "covers_truth"] if "truth" in t else [])
    return md_table(t[cols], digits=2, rename={
        **TIDY, "std_error": "SE (analytic)", "ci_lower": "95% CI low",
        "ci_upper": "95% CI high", "boot_se": "SE (bootstrap)", "boot_lower": "Bootstrap low",
        "boot_upper": "Bootstrap high", "truth": "Truth", "covers_truth": "Covers truth"})


def fig_estimates(result: StudyResult) -> Figure:
    """Each estimator's interval beside the truth and the report's quoted numbers."""
    t = result.table("estimates")
    rep = result.table("report").set_index("estimator")
    fig, ax = new_figure(height=3.2)
    y = np.arange(len(t))[::-1]
    colors = [PALETTE["red"] if m == "naive" else PALETTE["blue"] for m in t["method"]]
    ok = t["ci_lower"].notna()
    ax.hlines(y[ok], t["ci_lower"][ok], t["ci_upper"][ok], color=np.array(colors)[ok], lw=2)
    ax.scatter(t["estimate"], y, color=colors, s=30, zorder=3)
    quoted = {"msm": "MSM", "gcomp_ridge": "g-computation, ridge",
              "gcomp_lgbm": "g-computation, LightGBM", "aipw": "AIPW"}
    for yy, m in zip(y, t["method"], strict=True):
        if m in quoted:
            ax.plot(rep.loc[quoted[m], "estimate"], yy, "x", color=PALETTE["grey"], ms=7)
    truth = result.facts.get("truth_ate")
    if truth is not None:
        ax.axvline(truth, color=PALETTE["green"], lw=2, label=f"Planted truth ({truth:+.2f})")
    ax.axvline(0, color=PALETTE["grey"], lw=0.8)
    ax.plot([], [], "x", color=PALETTE["grey"], label="Source report (quoted, real data)")
    ax.set_yticks(y, [s if len(s) < 40 else s[:38] + "…" for s in t["term"]], fontsize=8)
    ax.set_xlabel("Effect of a high-watch day on plays over the next week")
    ax.legend(loc="lower right", fontsize=7.5)
    ax.set_title("Estimates with 95% intervals")
    return fig


def fig_headline(result: StudyResult) -> Figure:
    """The handout's figure: the estimates against the truth."""
    return fig_estimates(result)


def tbl_clip(result: StudyResult) -> Markdown:
    """The AIPW estimate under each clipping and trimming rule."""
    t = result.table("clip_sensitivity")[["propensity", "rule", "estimate", "std_error",
                                          "ci_lower", "ci_upper", "n_used", "share_clipped"]]
    return md_table(t, digits=2, percent=["share_clipped"], rename={
        "propensity": "Propensity model", "rule": "Rule", "estimate": "AIPW", "std_error": "SE",
        "ci_lower": "95% CI low",
        "ci_upper": "95% CI high", "n_used": "User-days used",
        "share_clipped": "Propensities clipped"})


# --------------------------------------------------------------------------- heterogeneity


def fig_segments(result: StudyResult) -> Figure:
    """Segment effects with Bonferroni-corrected bootstrap intervals (and the truth)."""
    t = result.table("segments")
    fig, ax = new_figure(height=0.3 * len(t) + 1.6)
    fam = pd.factorize(t["family"])[0]
    y = -(np.arange(len(t)) + 0.7 * fam)
    colors = [CYCLE[k % len(CYCLE)] for k in fam]
    ax.hlines(y, t["boot_lower_adj"], t["boot_upper_adj"], color=colors, lw=1.8)
    ax.scatter(t["estimate"], y, color=colors, s=28, zorder=3)
    if "truth" in t:
        ax.scatter(t["truth"], y, marker="x", color=PALETTE["grey"], s=36, zorder=4,
                   label="Planted truth")
    ax.axvline(result.facts["aipw"], color=PALETTE["grey"], ls=":", lw=1.2,
               label="Overall AIPW estimate")
    fig.legend(loc="outside lower center", ncol=2, fontsize=8)
    ax.axvline(0, color=PALETTE["grey"], lw=0.8)
    ax.set_yticks(y, [f"{f.split(' (')[0]}: {s}" for f, s in zip(t["family"], t["term"],
                                                                   strict=True)], fontsize=8)
    ax.set_xlabel("Effect of a high-watch day on next-week plays")
    ax.set_title(f"Effects by segment, bootstrap intervals corrected for {t['n_tests'].iloc[0]}"
                 " tests")
    return fig


def tbl_segments(result: StudyResult) -> Markdown:
    """Segment effects, analytic and corrected intervals, raw and Holm p-values."""
    t = result.table("segments")
    cols = ["family", "term", "n_obs", "estimate", "std_error", "boot_lower_adj",
            "boot_upper_adj", "p_value", "p_holm"] + (["truth"] if "truth" in t else [])
    t = t[cols].assign(family=t["family"].str.split(" \\(").str[0])
    return md_table(t, digits=2, pvalues=["p_value", "p_holm"], rename={
        "family": "Segment", "term": "Group", "n_obs": "User-days", "estimate": "Effect",
        "std_error": "SE", "boot_lower_adj": "Corrected low", "boot_upper_adj": "Corrected high",
        "p_value": "p", "p_holm": "p (Holm)", "truth": "Truth"})


def tbl_blp(result: StudyResult) -> Markdown:
    """The best-linear-predictor calibration test."""
    t = result.table("blp")[["label", "estimate", "std_error", "ci_lower", "ci_upper",
                             "p_value", "p_one_sided"]]
    return md_table(t, digits=3, pvalues=["p_value", "p_one_sided"], rename={
        "label": "Coefficient", "estimate": "Estimate", "std_error": "SE",
        "ci_lower": "95% CI low", "ci_upper": "95% CI high", "p_value": "p (= 0)",
        "p_one_sided": "p (≤ 0, one-sided)"})


def fig_gates(result: StudyResult) -> Figure:
    """Group effects by quintile of the learned effect (GATES), with the truth."""
    t = result.table("gates")
    g = t[t["term"] != "top − bottom"]
    fig, ax = new_figure(height=3.0)
    x = np.arange(len(g))
    ax.bar(x, g["estimate"], color=PALETTE["blue"], alpha=0.75, label="GATES (AIPW score mean)")
    ax.errorbar(x, g["estimate"], yerr=[g["estimate"] - g["ci_lower"],
                                        g["ci_upper"] - g["estimate"]],
                fmt="none", color="black", lw=1, capsize=3)
    ax.plot(x, g["mean_prediction"], "D", color=PALETTE["orange"], ms=5,
            label="Mean learned effect")
    if "truth" in g:
        ax.plot(x, g["truth"], "x", color=PALETTE["green"], ms=8, mew=2, label="Planted truth")
    ax.axhline(0, color=PALETTE["grey"], lw=0.8)
    ax.set_xticks(x, [f"{t}\n(lowest)" if i == 0 else f"{t}\n(highest)" if i == len(g) - 1
                      else t for i, t in enumerate(g["term"])])
    ax.set_ylabel("Effect on next-week plays")
    ax.set_xlabel("Quintile of the learned (out-of-fold) effect")
    ax.legend(fontsize=8)
    ax.set_title("Do users with larger learned effects have larger effects? (GATES)")
    return fig


def fig_importance(result: StudyResult) -> Figure:
    """Gain importance of the smoother's covariates."""
    t = result.table("importance").iloc[::-1]
    fig, ax = new_figure(height=0.25 * len(t) + 1.2)
    ax.barh(t["covariate"], t["share"], color=PALETTE["purple"], alpha=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(steps=[1, 2, 5, 10]))
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_xlabel("Share of the smoother's total gain")
    ax.tick_params(axis="y", labelsize=8)
    ax.set_title("What the effect smoother splits on (not what causes the effect)")
    return fig


# --------------------------------------------------------------------------- validity


def tbl_coverage(result: StudyResult) -> Markdown:
    """Monte Carlo coverage of each interval."""
    t = result.table("coverage")[["interval", "coverage", "mc_se", "bias", "sd_estimate",
                                  "reps"]]
    return md_table(t, digits={"bias": 3, "sd_estimate": 3}, percent=["coverage", "mc_se"],
                    rename={"interval": "Interval", "coverage": "Coverage",
                            "mc_se": "Monte Carlo SE", "bias": "Bias",
                            "sd_estimate": "SD of estimate", "reps": "Replications"})


def tbl_negative_control(result: StudyResult) -> Markdown:
    """AIPW and the naive comparison on the negative-control outcome (true effect 0)."""
    t = result.table("negative_control")[["term", "estimate", "std_error", "ci_lower",
                                          "ci_upper", "p_value"]]
    return md_table(t, digits=2, rename={**TIDY, "ci_lower": "95% CI low",
                                         "ci_upper": "95% CI high"})


def tbl_segment_contrasts(result: StudyResult) -> Markdown:
    """Differences between segments of each family, Holm-adjusted."""
    t = result.table("segment_contrasts")
    cols = ["family", "term", "estimate", "std_error", "boot_lower_adj", "boot_upper_adj",
            "p_value", "p_holm"] + (["truth"] if "truth" in t else [])
    t = t[cols].assign(family=t["family"].str.split(" \\(").str[0])
    return md_table(t, digits=2, pvalues=["p_value", "p_holm"], rename={
        "family": "Segment", "term": "Difference", "estimate": "Estimate", "std_error": "SE",
        "boot_lower_adj": "Corrected low", "boot_upper_adj": "Corrected high", "p_value": "p",
        "p_holm": "p (Holm)", "truth": "Truth"})


def tbl_sensitivity(result: StudyResult) -> Markdown:
    """Bounds on the ATE under omitted confounders of benchmarked strength."""
    t = result.table("sensitivity")[["term", "cf_y", "cf_d", "theta_lower", "theta_upper",
                                     "ci_bound_lower", "ci_bound_upper"]]
    return md_table(t, digits={"cf_y": 3, "cf_d": 3, "theta_lower": 2, "theta_upper": 2,
                               "ci_bound_lower": 2, "ci_bound_upper": 2}, rename={
        "term": "Unobserved confounder", "cf_y": "cf_y", "cf_d": "cf_d",
        "theta_lower": "Bound low", "theta_upper": "Bound high",
        "ci_bound_lower": "95% bound low", "ci_bound_upper": "95% bound high"})


def fig_sensitivity(result: StudyResult) -> Figure:
    """Contours of the lower bound on the ATE over confounder strengths."""
    g = result.table("sensitivity_grid")
    cd, cy = np.sort(g["cf_d"].unique()), np.sort(g["cf_y"].unique())
    z = g.pivot(index="cf_y", columns="cf_d", values="theta_lower").loc[cy, cd].to_numpy()
    fig, ax = new_figure(height=3.6)
    cs = ax.contour(cd, cy, z, levels=8, colors=PALETTE["grey"], linewidths=0.8)
    ax.clabel(cs, fontsize=7, fmt="%.2f")
    if np.nanmin(z) < 0 < np.nanmax(z):
        ax.contour(cd, cy, z, levels=[0.0], colors=PALETTE["red"], linewidths=1.8)
        ax.plot([], [], color=PALETTE["red"], label="Lower bound = 0")
    sens = result.table("sensitivity").iloc[1:]
    for r, color in zip(sens.itertuples(), (PALETTE["blue"], PALETTE["green"]), strict=False):
        ax.scatter(min(r.cf_d, cd[-1]), min(r.cf_y, cy[-1]), color=color, s=40, zorder=3,
                   label=r.term.capitalize())
    ax.set_xlabel("cf_d: gain in the treatment's (Riesz) variation")
    ax.set_ylabel("cf_y: share of the outcome's residual variation")
    ax.set_title("Lower bound on the effect under an omitted confounder (ρ = 1)")
    ax.legend(loc="upper right", fontsize=7.5)
    return fig


def tbl_limitations(result: StudyResult) -> Markdown:
    """Limitations of this analysis."""
    return md_table(result.table("limitations"), rename={
        "limitation": "Limitation", "why_it_matters": "Why it matters",
        "what_we_did": "What we did"})


def legend_patch(label: str, color: str) -> Patch:
    """A legend entry for a coloured area."""
    return Patch(color=color, label=label)
