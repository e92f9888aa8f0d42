"""Figures and tables of the DoWhy chapter, drawn from the ``dowhy_recs`` result.

Nothing here refits: every function reads the study's tables and facts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from IPython.display import Markdown
from matplotlib.figure import Figure

from analysis.report.graphs import draw_dag
from analysis.report.style import PALETTE, new_figure
from analysis.report.summaries import render_template
from analysis.report.tables import md_table
from analysis.result import StudyResult

ROLE_COLORS = {"treatment": PALETTE["blue"], "outcome": PALETTE["green"],
               "confounder": PALETTE["orange"], "instrument": PALETTE["purple"],
               "mediator": PALETTE["red"], "outcome cause": PALETTE["grey"],
               "other": PALETTE["grey"]}
SHORT = {"PersonalizedRecommendation": "Personalized\nRecommendation",
         "HoursOfContentConsumed": "Hours of Content\nConsumed",
         "UserEngagementLevel": "User Engagement\nLevel",
         "PreferredContentType": "Preferred\nContent Type",
         "NewFeatureExposure": "New Feature\nExposure"}


# --- the graph and identification -----------------------------------------------------
def _layout(nodes: pd.DataFrame) -> dict[str, tuple[float, float]]:
    pos: dict[str, tuple[float, float]] = {}
    conf = nodes.loc[nodes["role"] == "confounder", "node"].tolist()
    inst = nodes.loc[nodes["role"] == "instrument", "node"].tolist()
    rest = nodes.loc[~nodes["role"].isin(["confounder", "instrument", "treatment",
                                          "outcome"]), "node"].tolist()
    for node, role in zip(nodes["node"], nodes["role"], strict=True):
        if role == "treatment":
            pos[node] = (0.35, 0.25)
        elif role == "outcome":
            pos[node] = (0.9, 0.25)
    for i, n in enumerate(conf):
        pos[n] = (0.45 + 0.4 * (i - (len(conf) - 1) / 2), 0.85)
    for i, n in enumerate(inst):
        pos[n] = (0.0, 0.25 + 0.3 * i)
    for i, n in enumerate(rest):
        pos[n] = (0.6, -0.2 - 0.2 * i)
    return pos


def fig_graph(result: StudyResult) -> Figure:
    """The causal graph, nodes coloured by role."""
    nodes = result.table("graph_nodes")
    pos = _layout(nodes)
    nodes["x"] = [pos[n][0] for n in nodes["node"]]
    nodes["y"] = [pos[n][1] for n in nodes["node"]]
    nodes["label"] = [SHORT.get(n, n) for n in nodes["node"]]
    fig, ax = draw_dag(nodes, result.table("graph_edges"), role_colors=ROLE_COLORS,
                       limits=(-0.15, 1.05, 0.0, 1.05), title="The assumed causal graph")
    handles = [ax.scatter([], [], marker="s", s=80, color=ROLE_COLORS[r], label=r)
               for r in dict.fromkeys(nodes["role"])]
    ax.legend(handles=handles, loc="lower right", ncol=len(handles), fontsize=8)
    return fig


def estimands(result: StudyResult) -> Markdown:
    """The identified backdoor and IV estimands as display maths."""
    f = result.facts
    text = (f"**Backdoor estimand** (adjusting for {f['adjustment_set']}):\n\n"
            f"$$\n{f['backdoor_latex']}\n$$\n\n"
            f"**Instrumental-variable estimand** (instrument {f['instrument']}):\n\n"
            f"$$\n{f['iv_latex']}\n$$\n")
    return Markdown(text)


def variables_table(result: StudyResult) -> Markdown:
    """The five simulated variables with their types and roles."""
    return md_table(result.table("variables"),
                    rename={"variable": "Variable", "type": "Type", "role": "Role",
                            "meaning": "Meaning"})


# --- estimates --------------------------------------------------------------------------
def _forest(ax, t: pd.DataFrame, truth: float, truth_label: str) -> None:
    y = np.arange(len(t))[::-1]
    colors = [PALETTE["red"] if m == "naive" else PALETTE["blue"] for m in t["method"]]
    ax.axvline(truth, color=PALETTE["green"], lw=2, label=truth_label)
    ax.hlines(y, t["ci_lower"], t["ci_upper"], color=colors, lw=2)
    ax.scatter(t["estimate"], y, color=colors, zorder=3, s=30)
    ax.set_yticks(y, t["term"])
    ax.grid(axis="y", visible=False)


def fig_estimates(result: StudyResult) -> Figure:
    """Each estimator's 95% interval beside the planted truth and the report's numbers."""
    t = result.table("estimates")
    f = result.facts
    fig, ax = new_figure(height=3.4)
    _forest(ax, t, f["truth_ate"], f"Planted truth ({f['truth_ate']:g} h)")
    reported = {"naive": f["report_naive"], "backdoor.linear_regression": f["report_backdoor"],
                "iv.2sls": f["report_iv"]}
    y = np.arange(len(t))[::-1]
    rep = [(reported[m], yy) for m, yy in zip(t["method"], y, strict=True) if m in reported]
    ax.scatter([r[0] for r in rep], [r[1] for r in rep], marker="x", color=PALETTE["grey"],
               s=40, zorder=4, label="Source report's number")
    ax.set_xlabel("Effect of recommendations (hours per week), 95% CI")
    ax.set_title("Estimates against the truth")
    fig.legend(loc="outside lower center", ncol=2, fontsize=8)
    return fig


def estimates_table(result: StudyResult) -> Markdown:
    """Estimates with CI, distance from the truth and bias reduction."""
    t = result.table("estimates")[["term", "estimate", "ci_lower", "ci_upper", "error",
                                   "bias_reduction", "covers_truth"]]
    return md_table(t, percent=["bias_reduction"],
                    rename={"term": "Estimator", "estimate": "Estimate", "ci_lower": "95% CI low",
                            "ci_upper": "95% CI high", "error": "Estimate − truth",
                            "bias_reduction": "Bias reduction",
                            "covers_truth": "CI covers truth"})


def heterogeneous_table(result: StudyResult) -> Markdown:
    """Every estimator on the heterogeneous-effect app: what it targets and whether its
    interval contains the planted ATE."""
    t = result.table("heterogeneous")[["term", "targets", "estimate", "ci_lower", "ci_upper",
                                       "covers_truth"]]
    return md_table(t, rename={"term": "Estimator", "targets": "Targets", "estimate": "Estimate",
                               "ci_lower": "95% CI low", "ci_upper": "95% CI high",
                               "covers_truth": "CI covers the ATE"})


def iv_table(result: StudyResult) -> Markdown:
    """2SLS with and without controls, with the first stage."""
    t = result.table("iv")[["term", "first_stage_coef", "first_stage_f", "estimate",
                            "std_error", "ci_lower", "ci_upper", "ar_set", "truth"]]
    return md_table(t, digits={"first_stage_f": 0},
                    rename={"term": "Specification", "first_stage_coef": "First stage: Δ P(T)",
                            "first_stage_f": "First-stage F", "estimate": "IV estimate",
                            "std_error": "SE", "ci_lower": "95% CI low",
                            "ci_upper": "95% CI high", "ar_set": "Anderson-Rubin 95% set",
                            "truth": "Truth"})


def weak_iv_table(result: StudyResult) -> Markdown:
    """What 2SLS does as the instrument weakens."""
    t = result.table("weak_iv_demo")[["instrument_strength", "first_stage_f", "estimate",
                                      "ci_lower", "ci_upper", "ar_set", "weak"]]
    return md_table(t, digits={"first_stage_f": 1, "instrument_strength": 1},
                    rename={"instrument_strength": "Instrument strength (log-odds)",
                            "first_stage_f": "First-stage F", "estimate": "IV estimate",
                            "ci_lower": "95% CI low", "ci_upper": "95% CI high",
                            "ar_set": "Anderson-Rubin 95% set", "weak": "Weak (F < 10)"})


def weak_iv_diagnostics(result: StudyResult) -> Markdown:
    """The weak-instrument warnings the demonstration raised, as the chapter shows diagnostics."""
    t = result.table("weak_iv_demo")
    msgs = t.loc[t["weak"], ["instrument_strength", "warning"]]
    parts = [f"::: {{.callout-warning}}\n## Diagnostic: weak instrument (strength "
             f"{s:g})\n\n{w}\n:::\n" for s, w in zip(msgs["instrument_strength"],
                                                     msgs["warning"], strict=True)]
    return Markdown("\n".join(parts))


def refutation_table(result: StudyResult) -> Markdown:
    """What each refuter tests, what passing looks like, the result and the verdict."""
    t = result.table("refutation")[["refuter", "tests", "passing", "result", "p_value",
                                    "verdict"]]
    return md_table(t, rename={"refuter": "Refuter", "tests": "What it tests",
                               "passing": "What passing looks like", "result": "Result",
                               "p_value": "DoWhy p-value", "verdict": "Verdict"})


# --- sensitivity -------------------------------------------------------------------------
def fig_sweep(result: StudyResult) -> Figure:
    """Adjusted estimate over a grid of hidden confounders, with the zero line and engagement."""
    s = result.table("sweep")
    f = result.facts
    d = np.sort(s["imbalance"].unique())
    g = np.sort(s["outcome_effect"].unique())
    z = s.pivot(index="outcome_effect", columns="imbalance", values="adjusted").to_numpy()
    fig, ax = new_figure(height=3.8)
    lim = float(np.ceil(np.abs(z).max() * 2) / 2)
    cf = ax.contourf(d, g, z, levels=np.arange(-lim, lim + 0.01, 0.25), cmap="RdBu")
    cs = ax.contour(d, g, z, levels=[0.0], colors="black", linewidths=2)
    ax.clabel(cs, fmt={0.0: "estimate = 0"}, fontsize=8)
    cs2 = ax.contour(d, g, z, levels=[f["lr"] / 2], colors="black", linewidths=1,
                     linestyles="--")
    ax.clabel(cs2, fmt={f["lr"] / 2: "halved"}, fontsize=8)
    ax.scatter([f["bench_imbalance"]], [f["bench_outcome_effect"]], color="black", marker="D",
               s=36, zorder=4)
    ax.annotate(f"as strong as engagement\n→ {f['bench_moved_estimate']:.2f} h",
                (f["bench_imbalance"], f["bench_outcome_effect"]), xytext=(8, 6),
                textcoords="offset points", fontsize=8)
    fig.colorbar(cf, ax=ax, label="Estimate after adjusting (hours)")
    ax.set_xlabel("Hidden confounder: treated − untreated difference (SD)")
    ax.set_ylabel("Its effect on hours per SD")
    ax.set_title("Where a hidden confounder would erase the effect")
    ax.grid(False)
    return fig


def fig_contour(result: StudyResult) -> Figure:
    """Cinelli-Hazlett contours of the bias-adjusted estimate, benchmarked on engagement."""
    c = result.table("sensitivity_contour")
    b = result.table("benchmarks")
    f = result.facts
    x = np.sort(c["r2_treatment"].unique())
    y = np.sort(c["r2_outcome"].unique())
    z = c.pivot(index="r2_outcome", columns="r2_treatment", values="adjusted").to_numpy()
    fig, ax = new_figure(height=3.8)
    levels = np.round(np.linspace(np.floor(z.min() * 4) / 4, f["lr"], 8)[:-1], 2)
    cs = ax.contour(x, y, z, levels=np.unique(np.append(levels[levels != 0], 0.0)),
                    colors=PALETTE["grey"], linewidths=0.8)
    ax.clabel(cs, fontsize=7, fmt="%.2f")
    zero = ax.contour(x, y, z, levels=[0.0], colors=PALETTE["red"], linewidths=2)
    ax.clabel(zero, fmt={0.0: "0"}, fontsize=8)
    inside = b[(b["r2_treatment"] <= x.max()) & (b["r2_outcome"] <= y.max())]
    ax.scatter(inside["r2_treatment"], inside["r2_outcome"], color=PALETTE["red"], marker="^",
               zorder=4)
    for i, (_, row) in enumerate(inside.iterrows()):
        ax.annotate(f"{row['benchmark'].split()[0]} engagement → {row['adjusted']:.2f} h",
                    (row["r2_treatment"], row["r2_outcome"]), xytext=(8, -4 - 12 * i),
                    textcoords="offset points", fontsize=8,
                    arrowprops={"arrowstyle": "-", "color": PALETTE["grey"], "lw": 0.6})
    ax.set_xlabel("Partial R² of the confounder with the treatment")
    ax.set_ylabel("Partial R² with the outcome")
    ax.set_title("Bias-adjusted estimate (Cinelli-Hazlett)")
    ax.grid(False)
    return fig


def sensitivity_table(result: StudyResult) -> Markdown:
    """The sensitivity statistics in one place."""
    f = result.facts
    rows = pd.DataFrame({
        "statistic": ["Robustness value (estimate to zero)",
                      "Robustness value (to losing 5% significance)",
                      "Partial R² of treatment with outcome",
                      f"Partial R² of {f['bench_name']} with treatment / with outcome",
                      f"Estimate if a confounder as strong as {f['bench_name']} were added",
                      "E-value (point estimate)", "E-value (confidence limit)"],
        "value": [f"{f['rv']:.1%}", f"{f['rv_alpha']:.1%}", f"{f['r2_treatment_outcome']:.1%}",
                  f"{f['bench_r2_treatment']:.2%} / {f['bench_r2_outcome']:.1%}",
                  f"{f['ch_adjusted_1x']:.3f} h (bound); {f['bench_moved_estimate']:.3f} h "
                  "(same imbalance and effect)",
                  f"{f['e_value']:.2f}", f"{f['e_value_ci']:.2f}"]})
    return md_table(rows, rename={"statistic": "Statistic", "value": "Value"})


def benchmark_table(result: StudyResult) -> Markdown:
    """Cinelli-Hazlett bounds for confounders 1-3 times as strong as engagement."""
    return md_table(result.table("benchmarks"), percent=["r2_treatment", "r2_outcome"],
                    rename={"benchmark": "Hidden confounder", "r2_treatment": "Partial R² (T)",
                            "r2_outcome": "Partial R² (Y)", "adjusted": "Adjusted estimate"})


# --- real data ------------------------------------------------------------------------------
def fig_lalonde(result: StudyResult) -> Figure:
    """LaLonde: estimators against the experimental benchmark, and propensity overlap."""
    t = result.table("lalonde")
    o = result.table("lalonde_overlap")
    bench = t.loc[0]
    fig, (ax, ax2) = new_figure(1, 2, height=3.6, width=8.0,
                                gridspec_kw={"width_ratios": [1.5, 1]})
    ax.axvspan(bench["ci_lower"], bench["ci_upper"], color=PALETTE["green"], alpha=0.15)
    _forest(ax, t.iloc[1:], bench["estimate"],
            f"Experiment: ${bench['estimate']:,.0f}")
    ax.set_yticks(ax.get_yticks(), [s.replace(" (", "\n(") for s in t["term"].iloc[1:]],
                  fontsize=8)
    ax.xaxis.set_major_formatter(
        lambda v, _: "0" if v == 0 else f"{v / 1000:+,.0f}k".replace("-", "−"))
    ax.set_xlabel("Effect on 1978 earnings ($), 95% CI")
    ax.set_title("NSW trainees vs CPS controls")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=8)
    mid = (o["lower"] + o["upper"]) / 2
    w = o["upper"] - o["lower"]
    ax2.bar(mid, o["controls"] / o["controls"].sum(), width=w, color=PALETTE["grey"],
            alpha=0.6, label="CPS controls")
    ax2.bar(mid, o["treated"] / o["treated"].sum(), width=w, color=PALETTE["blue"], alpha=0.6,
            label="NSW trainees")
    ax2.set_yscale("log")
    ax2.set_xlabel("Estimated propensity score")
    ax2.set_ylabel("Share of group (log)")
    ax2.set_title("Overlap")
    ax2.legend(fontsize=8)
    return fig


def lalonde_table(result: StudyResult) -> Markdown:
    """LaLonde estimates in dollars with distance from the experimental benchmark."""
    t = result.table("lalonde")[["term", "estimate", "ci_lower", "ci_upper", "error",
                                 "bias_reduction"]]
    return md_table(t, digits=0, percent=["bias_reduction"],
                    rename={"term": "Estimator", "estimate": "Estimate ($)",
                            "ci_lower": "95% CI low", "ci_upper": "95% CI high",
                            "error": "Minus experiment", "bias_reduction": "Bias reduction"})


def balance_table(result: StudyResult) -> Markdown:
    """Covariate means: NSW trainees, NSW randomised controls, CPS respondents."""
    return md_table(result.table("lalonde_balance"),
                    digits={"nsw_treated": 2, "nsw_controls": 2, "cps": 2, "std_diff_cps": 2},
                    rename={"variable": "Covariate", "nsw_treated": "NSW trainees",
                            "nsw_controls": "NSW controls (experiment)", "cps": "CPS",
                            "std_diff_cps": "Std. difference vs CPS"})


def card_table(result: StudyResult) -> Markdown:
    """Card: OLS and 2SLS returns to schooling with the first-stage F."""
    t = result.table("card")[["term", "estimate", "std_error", "ci_lower", "ci_upper",
                              "first_stage_f"]]
    return md_table(t, digits={"first_stage_f": 1},
                    rename={"term": "Estimator (controls)", "estimate": "Return to a year",
                            "std_error": "SE", "ci_lower": "95% CI low",
                            "ci_upper": "95% CI high", "first_stage_f": "First-stage F"})


def recommendations(result: StudyResult) -> Markdown:
    """Recommendations that follow from the results (templated from facts)."""
    return Markdown(render_template("studies/dowhy_recs_recommendations.md.j2", result.facts))


def limitations(result: StudyResult) -> Markdown:
    """Limitations (templated from facts)."""
    return Markdown(render_template("studies/dowhy_recs_limitations.md.j2", result.facts))


def section_text(result: StudyResult, block: str) -> Markdown:
    """One block of ``studies/dowhy_recs_sections.md.j2``, filled from the facts."""
    from analysis.report.summaries import environment

    template = environment().get_template("studies/dowhy_recs_sections.md.j2")
    ctx = template.new_context(dict(result.facts))
    return Markdown("".join(template.blocks[block](ctx)).strip() + "\n")


def fig_headline(result: StudyResult) -> Figure:
    """The handout's one figure: the estimates against the truth (or benchmark)."""
    return fig_estimates(result)
