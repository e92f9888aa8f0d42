"""Figures, tables and templated paragraphs of the double ML chapter (``dml_genre``).

Everything is drawn from the study's result; nothing here refits a model.  The
only numbers not computed by the study are :data:`SOURCE_REPORT`, quotations of
the source report, shown next to ours and labelled as quotations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from IPython.display import Markdown
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.report.graphs import draw_dag
from analysis.report.style import PALETTE, new_figure
from analysis.report.summaries import ci, effect, render_template
from analysis.report.tables import fmt_number, fmt_pvalue, md_table
from analysis.result import StudyResult

SOURCE_REPORT = {
    "sample": "50,000-rating sample of MovieLens 20M",
    "ate": -0.0003, "se": 0.0117, "ci": (-0.0233, 0.0226), "p": 0.979, "prevalence": 0.104,
    "features": 36, "folds": 3,
    "models": {"Linear": (0.8595, 0.314), "Ridge": (0.8595, 0.314), "Lasso": (0.8654, 0.305),
               "Random forest": (0.872, None), "Gradient boosting (LightGBM)": (0.860, None)},
}
"""The source report's published numbers (quotations, not results of this book)."""

ROLE_COLOR = {"treatment": PALETTE["orange"], "outcome": PALETTE["blue"],
              "adjusted": PALETTE["green"], "bad": PALETTE["red"], "unobserved": PALETTE["grey"]}
EDGE_STYLE = {"effect": (PALETTE["orange"], "solid", 2.4),
              "confounding": (PALETTE["green"], "solid", 1.2),
              "downstream": (PALETTE["red"], "dashed", 1.2),
              "leak": (PALETTE["red"], "dotted", 1.6), "other": (PALETTE["grey"], "solid", 0.9)}
TERM_LABEL = {"naive": "Naive difference", "ols": "OLS, justified controls",
              "plr": "DML-PLR", "aipw": "DML-AIPW (ATE)"}


def paragraph(result: StudyResult, name: str) -> Markdown:
    """A templated paragraph (``templates/studies/dml_genre_<name>.md.j2``) from the facts."""
    return Markdown(render_template(f"studies/dml_genre_{name}.md.j2", result.facts))


# --------------------------------------------------------------------------- figures


def fig_graph(result: StudyResult) -> Figure:
    """The assumed causal graph, coloured by each node's role in the adjustment."""
    fig, ax = draw_dag(result.table("graph_nodes"), result.table("graph_edges"),
                       role_colors=ROLE_COLOR, filled_roles=("treatment", "outcome"),
                       edge_styles=EDGE_STYLE, height=4.6, fontsize=7.5,
                       limits=(-1.6, 7.2, -1.5, 3.2),
                       title="What causes what: the assumptions behind the adjustment set")
    handles = [Line2D([], [], color=ROLE_COLOR[k], lw=2, label=lab) for k, lab in
               [("adjusted", "adjusted for (justified set)"),
                ("bad", "bad control: caused by the genre or the rating"),
                ("unobserved", "other causal path (dashed box: unobserved)")]]
    handles += [Line2D([], [], color=EDGE_STYLE["leak"][0], ls=":", lw=1.6,
                       label="contains the rating itself (leak)")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2,
              fontsize=8)
    return fig


def fig_overlap(result: StudyResult) -> Figure:
    """Distribution of the estimated propensity score in each arm."""
    t = result.table("overlap")
    fig, ax = new_figure(height=3.2)
    width = t["upper"] - t["lower"]
    ax.bar(t["lower"], t["untreated"], width=width, align="edge", color=PALETTE["blue"],
           alpha=0.55, label="Other movies")
    ax.bar(t["lower"], t["treated"], width=width, align="edge", color=PALETTE["orange"],
           alpha=0.55, label="Drama-romance")
    ax.set_xlabel("Estimated propensity P(drama-romance | controls)")
    ax.set_ylabel("Share of the arm's ratings")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.legend()
    ax.set_title("Overlap: both arms span the same propensities")
    return fig


def fig_balance(result: StudyResult, top: int = 18) -> Figure:
    """Standardized mean differences before and after inverse-propensity weighting."""
    t = result.table("balance").head(top).iloc[::-1]
    fig, ax = new_figure(height=0.22 * len(t) + 1.2)
    y = np.arange(len(t))
    ax.axvspan(-0.1, 0.1, color=PALETTE["light"], alpha=0.5, lw=0)
    ax.axvline(0, color=PALETTE["grey"], lw=0.8)
    ax.hlines(y, t["smd_before"], t["smd_after"], color=PALETTE["light"], lw=1.5)
    ax.scatter(t["smd_before"], y, facecolors="white", edgecolors=PALETTE["red"], s=28,
               label="Before weighting", zorder=3)
    ax.scatter(t["smd_after"], y, color=PALETTE["green"], s=28, label="After weighting",
               zorder=3)
    ax.set_yticks(y, t["feature"], fontsize=7.5)
    ax.set_xlabel("Standardized mean difference (drama-romance minus other)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"Balance of the {top} most imbalanced controls (shaded: |SMD| < 0.1)")
    return fig


def _intervals(ax, labels, est, lo, hi, color, *, inner=None, y0=0.0) -> np.ndarray:
    y = np.arange(len(labels))[::-1] + y0
    ax.hlines(y, lo, hi, color=color, lw=1.4)
    if inner is not None:
        ax.hlines(y, inner[0], inner[1], color=color, lw=4, alpha=0.6)
    ax.plot(est, y, "o", color=color, ms=6, zorder=3)
    return y


def fig_estimates(result: StudyResult) -> Figure:
    """Naive, OLS, DML-PLR and AIPW with 95% CIs (thick: by user; thin: user and movie)."""
    t = result.table("estimates")
    fig, ax = new_figure(height=3.0)
    z = 1.959964
    y = _intervals(ax, t["term"], t["estimate"], t["ci_lower"], t["ci_upper"], PALETTE["blue"],
                   inner=(t["estimate"] - z * t["se_user"], t["estimate"] + z * t["se_user"]))
    ax.set_yticks(y, [TERM_LABEL[k] for k in t["term"]])
    ax.axvline(0, color=PALETTE["grey"], lw=0.8)
    truth = result.facts.get("truth_ate")
    if truth is not None:
        ax.axvline(truth, color=PALETTE["orange"], ls="--", lw=1.5,
                   label=f"Planted true ATE ({truth:+.3f})")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("Effect of drama-romance on the rating (stars)")
    ax.set_title("Estimates with 95% intervals: thick clustered by user, thin by user and movie")
    return fig


def fig_adjustment(result: StudyResult) -> Figure:
    """PLR and AIPW under each control set, beside the source report's quoted estimate."""
    t = result.table("adjustment")
    fig, ax = new_figure(height=3.4)
    order = ["report", "all", "justified"]
    names = {"report": "Report-style (leaky)", "all": "+ movie statistics",
             "justified": "Justified set"}
    for term, color, dy in (("plr", PALETTE["blue"], 0.15), ("aipw", PALETTE["green"], -0.15)):
        sub = t[t["term"] == term].set_index("set").loc[order]
        y = np.arange(len(order))[::-1] + 1 + dy
        ok = sub["estimate"].notna().to_numpy()
        ax.hlines(y[ok], sub["ci_lower"][ok], sub["ci_upper"][ok], color=color, lw=1.6)
        ax.plot(sub["estimate"][ok], y[ok], "o", color=color, ms=6,
                label=TERM_LABEL[term], zorder=3)
        for yy in y[~ok]:
            ax.text(0.0, yy, f"  {TERM_LABEL[term]}: not estimable (no overlap)", color=color,
                    va="center", fontsize=7.5)
    q = SOURCE_REPORT
    ax.hlines(0, *q["ci"], color=PALETTE["grey"], lw=1.6)
    ax.plot(q["ate"], 0, "D", color=PALETTE["grey"], ms=6, label="Source report (quoted)")
    ax.set_yticks([3, 2, 1, 0], [names[o] for o in order] + ["Source report (quoted)"])
    ax.axvline(0, color=PALETTE["grey"], lw=0.8)
    truth = result.facts.get("truth_ate")
    if truth is not None:
        ax.axvline(truth, color=PALETTE["orange"], ls="--", lw=1.5, label="Planted true ATE")
    ax.set_xlabel("Effect of drama-romance on the rating (stars)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_title("The control set decides the answer")
    return fig


def fig_segments(result: StudyResult) -> Figure:
    """Group ATEs for the report's four segments, with 95% CIs (and the truth on synthetic data)."""
    t = result.table("segments")
    g = t[t["kind"] == "group"].reset_index(drop=True)
    fig, ax = new_figure(height=0.36 * len(g) + 1.4)
    pair = np.arange(len(g)) // 2
    y = -(np.arange(len(g)) + 0.8 * pair)
    colors = [PALETTE["blue"] if i % 2 == 0 else PALETTE["purple"] for i in range(len(g))]
    ax.hlines(y, g["ci_lower"], g["ci_upper"], color=colors, lw=1.6)
    ax.scatter(g["estimate"], y, color=colors, s=30, zorder=3, label="AIPW group ATE")
    if "truth" in g:
        ax.scatter(g["truth"], y, marker="x", color=PALETTE["orange"], s=40, zorder=4,
                   label="Planted truth")
    ax.axvline(result.facts["aipw"], color=PALETTE["grey"], ls=":", lw=1.2,
               label="Overall AIPW estimate")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_yticks(y, g["term"], fontsize=8.5)
    ax.axvline(0, color=PALETTE["grey"], lw=0.8)
    ax.set_xlabel("Effect of drama-romance within the group (stars)")
    ax.set_title("Effects by segment, 95% intervals clustered by user and movie")
    return fig


def fig_coverage(result: StudyResult, show: int = 100) -> Figure:
    """The first ``show`` Monte Carlo intervals, cluster-robust vs iid, misses in red."""
    reps = result.table("coverage_reps").head(show)
    theta = 0.5
    fig, axes = new_figure(1, 2, height=3.4, sharey=True)
    z = 1.959964
    for ax, (col, se, title) in zip(axes, (("covered", "se", "Cluster-robust"),
                                           ("covered_iid", "se_iid", "iid")), strict=True):
        order = reps.sort_values("estimate").reset_index(drop=True)
        c = np.where(order[col], PALETTE["blue"], PALETTE["red"])
        ax.hlines(np.arange(len(order)), order["estimate"] - z * order[se],
                  order["estimate"] + z * order[se], color=c, lw=1.0)
        ax.axvline(theta, color=PALETTE["orange"], ls="--", lw=1.2)
        ax.set_title(f"{title}: {order[col].mean():.0%} of these cover")
        ax.set_xlabel("95% interval for the effect (truth 0.5)")
    axes[0].set_ylabel("Replication (sorted by estimate)")
    return fig


# --------------------------------------------------------------------------- tables


def tbl_report_vs_ours(result: StudyResult) -> Markdown:
    """The source report's quoted numbers beside this chapter's."""
    f, q = result.facts, SOURCE_REPORT
    rows = [
        ("Data", q["sample"], f"{f['n_ratings']:,} ratings of {f['dataset']} (all of them)"),
        ("Treatment prevalence", f"{q['prevalence']:.1%}", f"{f['prevalence']:.1%}"),
        ("Features", f"{q['features']}",
         f"{f['n_features']} from prior history; {f['n_justified']} in the adjustment set"),
        ("Cross-fitting", f"{q['folds']} folds",
         f"{f['n_folds']} folds by user × {f['n_folds']} by movie (multiway), "
         f"repeated {f['n_rep']} time(s)"),
        ("Effect estimate", effect(q["ate"], 4),
         f"{effect(f['aipw'], 4)} (AIPW), {effect(f['plr'], 4)} (PLR)"),
        ("Standard error", f"{q['se']:.4f}",
         f"{f['aipw_se']:.4f} (AIPW, clustered by user and movie)"),
        ("95% interval", ci(*q["ci"], 4), ci(f["aipw_lo"], f["aipw_hi"], 4)),
        ("p-value", f"{q['p']:.3f}", fmt_pvalue(f["aipw_p"])),
    ]
    return md_table(pd.DataFrame(rows, columns=["Quantity", "Source report (quoted)",
                                                "This chapter"]))


def tbl_models(result: StudyResult) -> Markdown:
    """Outcome-model comparison with the report's quoted RMSE and R²."""
    t = result.table("model_comparison")
    t["report_rmse"] = [SOURCE_REPORT["models"].get(m, (None, None))[0] for m in t["model"]]
    t["report_r2"] = [SOURCE_REPORT["models"].get(m, (None, None))[1] for m in t["model"]]
    t = t[["model", "rmse", "r2", "cv_rmse", "cv_rmse_sd", "report_rmse", "report_r2"]]
    return md_table(t, digits=4, rename={
        "model": "Model", "rmse": "RMSE (held-out users)", "r2": "R² (held-out users)",
        "cv_rmse": "CV RMSE", "cv_rmse_sd": "CV RMSE SD", "report_rmse": "Report RMSE (quoted)",
        "report_r2": "Report R² (quoted)"})


def tbl_estimates(result: StudyResult) -> Markdown:
    """The four estimates with two-way clustered intervals."""
    t = result.table("estimates")
    t["term"] = t["term"].map(TERM_LABEL)
    t["ci"] = [_ci(lo, hi) for lo, hi in zip(t["ci_lower"], t["ci_upper"], strict=True)]
    return md_table(t[["term", "label", "estimate", "std_error", "ci", "p_value"]], digits=4,
                    rename={"term": "Estimator", "label": "What it is", "estimate": "Estimate",
                            "std_error": "SE (user and movie)", "ci": "95% CI",
                            "p_value": "p-value"})


def tbl_standard_errors(result: StudyResult) -> Markdown:
    """Standard errors under four dependence assumptions."""
    t = result.table("standard_errors")
    t["term"] = t["term"].map(TERM_LABEL)
    return md_table(t.drop(columns="label"), digits={"se_iid": 4, "se_user": 4, "se_movie": 4,
                                                     "se_twoway": 4, "ratio_user": 2,
                                                     "ratio_twoway": 2},
                    rename={"term": "Estimator", "se_iid": "Independent", "se_user": "By user",
                            "se_movie": "By movie", "se_twoway": "User and movie",
                            "ratio_user": "By user ÷ independent",
                            "ratio_twoway": "Two-way ÷ independent"})


def tbl_adjustment(result: StudyResult) -> Markdown:
    """Estimates under each control set."""
    t = result.table("adjustment")
    t["term"] = t["term"].map(TERM_LABEL)
    t["ci"] = [_ci(lo, hi) for lo, hi in zip(t["ci_lower"], t["ci_upper"], strict=True)]
    return md_table(t[["set_label", "n_features", "term", "estimate", "ci", "note"]], digits=4,
                    rename={"set_label": "Control set", "n_features": "Features",
                            "term": "Estimator", "estimate": "Estimate",
                            "ci": "95% CI (user and movie)", "note": "Note"})


def tbl_segments(result: StudyResult) -> Markdown:
    """Group ATEs and differences for the four segments."""
    t = result.table("segments")
    t["ci"] = [_ci(lo, hi) for lo, hi in zip(t["ci_lower"], t["ci_upper"], strict=True)]
    cols = ["segment", "term", "n_obs", "estimate", "ci", "p_value"]
    names = {"segment": "Segment", "term": "Group", "n_obs": "Ratings", "estimate": "Estimate",
             "ci": "95% CI", "p_value": "p-value"}
    if "truth" in t:
        cols.append("truth")
        names["truth"] = "Planted truth"
    return md_table(t[cols], digits=3, rename=names)


def tbl_coverage(result: StudyResult) -> Markdown:
    """Monte Carlo coverage of the cluster-robust and iid intervals."""
    t = result.table("coverage")
    return md_table(t, digits={"mean_se": 4, "sd_estimate": 4, "mc_se": 3},
                    percent=["coverage", "nominal"],
                    rename={"interval": "Interval", "coverage": "Coverage",
                            "nominal": "Nominal", "reps": "Replications",
                            "mc_se": "Monte Carlo SE", "mean_se": "Mean SE",
                            "sd_estimate": "SD of estimates"})


def tbl_limitations(result: StudyResult) -> Markdown:
    """What the analysis cannot do."""
    return md_table(result.table("limitations"),
                    rename={"limitation": "Limitation", "why_it_matters": "Why it matters",
                            "what_we_did": "What we did / what would help"})


def tbl_features(result: StudyResult) -> Markdown:
    """Every feature with its group, definition and whether it is adjusted for."""
    t = result.table("features")
    t["justified"] = t["justified"].map({True: "yes", False: "no (bad control)"})
    return md_table(t, rename={"name": "Feature", "group": "Group",
                               "description": "Definition (from earlier ratings only)",
                               "justified": "Adjusted for"})


def tbl_sets(result: StudyResult) -> Markdown:
    """The back-door check of each control set against the graph."""
    t = result.table("adjustment_sets")
    return md_table(t[["label", "nodes", "valid", "reason"]],
                    rename={"label": "Control set", "nodes": "Nodes adjusted for",
                            "valid": "Back-door valid", "reason": "Why"})


def tbl_headline_coverage(result: StudyResult) -> Markdown:
    """Monte Carlo coverage of the headline pipeline (AIPW, LightGBM, multiway, two-way)."""
    f = result.facts
    rows = [("AIPW, clustered by user and movie (headline)", f["hl_coverage"], f["hl_mc_se"]),
            ("AIPW, clustered by user only", f["hl_coverage_user"], f["hl_mc_se"])]
    t = pd.DataFrame(rows, columns=["interval", "coverage", "mc_se"])
    t["reps"] = f["hl_reps"]
    t["mean_se"], t["sd"] = f["hl_mean_se"], f["hl_sd"]
    t.loc[1, ["mean_se"]] = float(result.table("headline_coverage_reps")["se_user"].mean())
    return md_table(t, digits={"mean_se": 4, "sd": 4}, percent=["coverage", "mc_se"],
                    rename={"interval": "Interval", "coverage": "Coverage (nominal 95%)",
                            "mc_se": "Monte Carlo SE", "reps": "Replications",
                            "mean_se": "Mean SE", "sd": "SD of estimates"})


def tbl_sensitivity(result: StudyResult) -> Markdown:
    """Bounds under an omitted confounder of given strength, with robustness values."""
    t = result.table("sensitivity").copy()
    t["term"] = t["term"].map(TERM_LABEL)
    t["bounds"] = [_ci(lo, hi) for lo, hi in zip(t["theta_lower"], t["theta_upper"],
                                                  strict=True)]
    t["ci"] = [_ci(lo, hi) for lo, hi in zip(t["ci_bound_lower"], t["ci_bound_upper"],
                                              strict=True)]
    t["rv"], t["rva"] = 100 * t["rv"], 100 * t["rva"]
    return md_table(t[["term", "scenario", "cf_y", "cf_d", "estimate", "bounds", "ci", "rv",
                       "rva"]],
                    digits={"cf_y": 3, "cf_d": 3, "estimate": 4, "rv": 1, "rva": 1},
                    rename={"term": "Estimator", "scenario": "Confounder",
                            "cf_y": "cf_y", "cf_d": "cf_d", "estimate": "Estimate",
                            "bounds": "Bounds on the effect",
                            "ci": "One-sided 95% confidence bounds", "rv": "RV (%)",
                            "rva": "RVa (%)"})


def tbl_sensitivity_benchmarks(result: StudyResult) -> Markdown:
    """How strong the left-out observed covariate groups are, as cf_y, cf_d and rho."""
    t = result.table("sensitivity_benchmarks")
    return md_table(t, digits={"cf_y": 4, "cf_d": 4, "rho": 2, "delta_theta": 4},
                    rename={"benchmark": "Left out", "cf_y": "cf_y", "cf_d": "cf_d",
                            "rho": "rho", "delta_theta": "Change in estimate"})


def fig_sensitivity(result: StudyResult) -> Figure:
    """Contours of the AIPW bound nearest zero over the confounder strengths cf_d, cf_y."""
    g = result.table("sensitivity_grid")
    f = result.facts
    side = "theta_lower" if f["aipw"] > 0 else "theta_upper"
    cd, cy = np.sort(g["cf_d"].unique()), np.sort(g["cf_y"].unique())
    z = g.pivot(index="cf_y", columns="cf_d", values=side).loc[cy, cd].to_numpy()
    fig, ax = new_figure(height=4.2)
    filled = ax.contourf(cd, cy, z, levels=14, cmap="RdBu_r",
                         norm=_centred(z))
    lines = ax.contour(cd, cy, z, levels=8, colors=PALETTE["grey"], linewidths=0.6)
    ax.clabel(lines, fontsize=7, fmt=lambda v: f"{v:.2f}")
    if np.nanmin(z) < 0 < np.nanmax(z):
        ax.contour(cd, cy, z, levels=[0.0], colors="black", linewidths=2.0)
    fig.colorbar(filled, ax=ax, label=f"{'Lower' if side == 'theta_lower' else 'Upper'} "
                 "bound on the effect (stars)")
    rv = f["sens_rv"]
    if 0 < rv <= cd.max():
        ax.plot([rv], [rv], "o", color=PALETTE["orange"], ms=7,
                label=f"RV = {100 * rv:.1f}%: bound reaches 0")
    for b in result.table("sensitivity_benchmarks").itertuples():
        if b.cf_d > cd.max() or b.cf_y > cy.max():
            continue  # off the grid: the bounds table gives it
        ax.plot([b.cf_d], [b.cf_y], "D", color=PALETTE["green"], ms=6)
        ax.annotate(f"as strong as {b.benchmark}", (b.cf_d, b.cf_y),
                    textcoords="offset points", xytext=(6, 6), ha="left", fontsize=8)
    ax.set_xlabel("cf_d: gain in explaining the treatment (Riesz representer)")
    ax.set_ylabel("cf_y: share of residual rating variation explained")
    ax.set_title("How strong an omitted confounder would have to be (AIPW, rho = 1)")
    if 0 < rv <= cd.max():
        ax.legend(loc="upper right", fontsize=8)
    return fig


def _centred(z: np.ndarray) -> object:
    from matplotlib.colors import TwoSlopeNorm

    lo, hi = float(np.nanmin(z)), float(np.nanmax(z))
    if lo < 0 < hi:
        return TwoSlopeNorm(vcenter=0.0, vmin=lo, vmax=hi)
    return None


def _ci(lo: float, hi: float) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "—"
    return f"[{fmt_number(lo, 3)}, {fmt_number(hi, 3)}]"


def fig_headline(result: StudyResult) -> Figure:
    """The handout's one figure: the estimates against the truth (or benchmark)."""
    return fig_estimates(result)
