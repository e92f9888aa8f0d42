"""Figures, tables and templated text of the causal forest chapter (``forest_pricing``).

Drawn from the study's result only; nothing here refits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from IPython.display import Markdown
from matplotlib.figure import Figure

from analysis.estimators.cate import SHORT
from analysis.report.style import CYCLE, PALETTE, new_figure
from analysis.report.summaries import effect, render_template
from analysis.report.tables import md_table
from analysis.result import StudyResult
from analysis.studies.forest_pricing_facts import NAMES
from analysis.studies.forest_pricing_parts import REPORT_PRINTOUT


def paragraph(result: StudyResult, name: str) -> Markdown:
    """A templated block (``templates/studies/forest_pricing_<name>.md.j2``)."""
    return Markdown(render_template(f"studies/forest_pricing_{name}.md.j2", result.facts))


def recommendations(result: StudyResult) -> Markdown:
    """The recommendations, generated from the results."""
    return paragraph(result, "recommendations")


def report_printout() -> Markdown:
    """The source report's printout, verbatim."""
    return Markdown(f"```\n{REPORT_PRINTOUT}\n```\n")


def tbl_calls(result: StudyResult) -> Markdown:
    """What each EconML call returns on this data."""
    return md_table(result.table("report_calls"), digits=3, rename={
        "call": "EconML call", "estimate": "Estimate", "ci_lower": "95% CI low",
        "ci_upper": "95% CI high", "what_it_is": "What it is"})


def tbl_summary(result: StudyResult) -> Markdown:
    """The simulated customers at a glance."""
    return md_table(result.table("summary"), rename={"measure": "Measure", "value": "Value"})


def tbl_nuisance(result: StudyResult) -> Markdown:
    """Out-of-fold losses of the candidate nuisance learners."""
    t = result.table("nuisance")
    p, o = t[t["model"] == "propensity"], t[t["model"] == "outcome"]
    shown = pd.DataFrame({"Learner": p["learner"].to_numpy(),
                          "Propensity log loss": p["log_loss"].to_numpy(),
                          "Calibration error": p["ece"].to_numpy(),
                          "Chosen (propensity)": p["selected"].to_numpy(),
                          "Outcome RMSE": o["rmse"].to_numpy(),
                          "Chosen (outcome)": o["selected"].to_numpy()})
    return md_table(shown, digits={"Propensity log loss": 4, "Calibration error": 4,
                                   "Outcome RMSE": 3})


def tbl_methods(result: StudyResult, name: str = "methods") -> Markdown:
    """Each method's ATE and CATE scores against the truth."""
    t = result.table(name)
    shown = pd.DataFrame({
        "Method": [SHORT[m] for m in t["method"]], "ATE": t["estimate"], "SE": t["std_error"],
        "95% CI low": t["ci_lower"], "95% CI high": t["ci_upper"],
        "√PEHE": t["sqrt_pehe"], "Customers covered": t["coverage"],
        "Rank correlation": t["rank_corr"]})
    return md_table(shown, digits=2, percent=["Customers covered"])


def tbl_tuning(result: StudyResult) -> Markdown:
    """The forest under a small grid of settings."""
    t = result.table("tuning")
    honest = t["honest"].fillna(True) if "honest" in t else pd.Series(True, index=t.index)
    shown = pd.DataFrame({"Trees": t["n_estimators"], "Min leaf": t["min_samples_leaf"],
                          "Honest": honest.astype(bool), "Chapter's forest": t["chosen"],
                          "√PEHE": t["sqrt_pehe"], "Customers covered": t["coverage"],
                          "Mean width": t["mean_width"]})
    return md_table(shown, digits=2, percent=["Customers covered"])


def fig_scatter(result: StudyResult) -> Figure:
    """Estimated against true effects, per method (linear scenario)."""
    c = result.table("cate")
    methods = [m for m in SHORT if m in c.columns]
    fig, axes = new_figure(2, 3, height=5.2, sharex=True, sharey=True)
    lim = (np.percentile(c["tau"], 0.5), np.percentile(c["tau"], 99.5))
    sample = c.sample(min(len(c), 1500), random_state=0)
    for ax, m in zip(np.ravel(axes), methods, strict=False):
        ax.scatter(sample["tau"], sample[m], s=4, alpha=0.35, color=PALETTE["blue"])
        ax.plot(lim, lim, color=PALETTE["orange"], lw=1.2)
        ax.set_title(SHORT[m], fontsize=9.5)
    for ax in np.ravel(axes)[len(methods):]:
        ax.set_axis_off()
    fig.supxlabel("True effect of the price change ($, 90 days)", fontsize=9)
    fig.supylabel("Estimated effect ($)", fontsize=9)
    return fig


def fig_x2(result: StudyResult, name: str = "cate") -> Figure:
    """The forest's CATE against engagement (X2), with its band, beside the truth."""
    c = result.table(name).sort_values("engagement")
    fig, ax = new_figure(height=3.4)
    ax.scatter(c["engagement"], c["tau"], s=3, color=PALETTE["grey"], alpha=0.25,
               label="True effect (each customer)")
    roll = c[["engagement", "causal_forest", "causal_forest_lower", "causal_forest_upper"]] \
        .rolling(101, center=True, min_periods=20).mean()
    ax.fill_between(roll["engagement"], roll["causal_forest_lower"],
                    roll["causal_forest_upper"], color=PALETTE["blue"], alpha=0.2,
                    label="Forest 95% interval (running mean)")
    ax.plot(roll["engagement"], roll["causal_forest"], color=PALETTE["blue"], lw=2,
            label="Forest CATE (running mean)")
    if "linear_dml" in c:
        ax.plot(c["engagement"], c["linear_dml"], color=PALETTE["orange"], lw=1.2, ls="--",
                label="LinearDML")
    ax.axhline(0, color=PALETTE["grey"], lw=0.8)
    ax.set_xlabel("Engagement score (X2)")
    ax.set_ylabel("Effect on 90-day revenue ($)")
    ax.legend(fontsize=7.5, loc="upper left")
    ax.set_title("The effect grows with engagement")
    return fig


def fig_nonlinear(result: StudyResult) -> Figure:
    """The non-linear scenario: estimated effects against the truth for four methods."""
    c = result.table("cate_nonlinear")
    methods = [m for m in ("causal_forest", "linear_dml", "dr_learner", "ols_interactions")
               if m in c]
    fig, axes = new_figure(1, len(methods), height=2.8, sharey=True)
    sample = c.sample(min(len(c), 1500), random_state=0)
    jitter = np.random.default_rng(0).normal(0, 0.15, len(sample))
    for ax, m in zip(np.atleast_1d(axes), methods, strict=True):
        ax.scatter(sample["tau"] + jitter, sample[m], s=4, alpha=0.3, color=PALETTE["purple"])
        for v in np.unique(c["tau"]):
            ax.hlines(v, v - 0.8, v + 0.8, color=PALETTE["orange"], lw=2)
        ax.set_title(SHORT[m], fontsize=9)
        ax.set_xlabel("True effect ($)", fontsize=8.5)
    np.atleast_1d(axes)[0].set_ylabel("Estimated effect ($)")
    return fig


def tbl_blp(result: StudyResult) -> Markdown:
    """BLP calibration test of the forest (held-out)."""
    t = result.table("blp")[["label", "estimate", "std_error", "ci_lower", "ci_upper",
                             "p_one_sided"]]
    return md_table(t, digits=3, pvalues=["p_one_sided"], rename={
        "label": "Coefficient", "estimate": "Estimate", "std_error": "SE",
        "ci_lower": "95% CI low", "ci_upper": "95% CI high",
        "p_one_sided": "p (≤ 0, one-sided)"})


def fig_gates(result: StudyResult) -> Figure:
    """GATES by quintile of the chosen method's held-out CATE, with the truth."""
    t = result.table("gates")
    g = t[t["term"] != "top − bottom"]
    fig, ax = new_figure(height=3.0)
    x = np.arange(len(g))
    ax.bar(x, g["estimate"], color=PALETTE["blue"], alpha=0.75, label="GATES (DR score mean)")
    ax.errorbar(x, g["estimate"], yerr=[g["estimate"] - g["ci_lower"],
                                        g["ci_upper"] - g["estimate"]],
                fmt="none", color="black", lw=1, capsize=3)
    ax.plot(x, g["truth"], "x", color=PALETTE["green"], ms=8, mew=2, label="True mean effect")
    ax.axhline(0, color=PALETTE["grey"], lw=0.8)
    ax.set_xticks(x, [f"G{i + 1}" for i in x])
    ax.set_xlabel(f"Fifth of the held-out {result.facts['chosen']} CATE (G1 lowest)")
    ax.set_ylabel("Effect on 90-day revenue ($)")
    ax.legend(fontsize=8)
    ax.set_title("Group effects by predicted effect (GATES)")
    return fig


def fig_toc(result: StudyResult) -> Figure:
    """The TOC curve of the forest's ranking, with its bootstrap band."""
    t = result.table("toc")
    r = result.table("rate").set_index("term")
    fig, ax = new_figure(height=3.0)
    ax.fill_between(t["q"], t["lower"], t["upper"], color=PALETTE["blue"], alpha=0.2,
                    label="95% bootstrap band")
    ax.plot(t["q"], t["toc"], color=PALETTE["blue"], lw=2, label="TOC")
    ax.axhline(0, color=PALETTE["grey"], lw=0.8)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_xlabel("Share of customers treated, highest predicted effect first")
    ax.set_ylabel("Extra effect over the average ($)")
    ax.legend(fontsize=8)
    ax.set_title(f"Targeting curve: AUTOC {r.loc['AUTOC', 'estimate']:.2f}, "
                 f"Qini {r.loc['Qini', 'estimate']:.2f}")
    return fig


def tbl_rate(result: StudyResult) -> Markdown:
    """AUTOC and Qini with bootstrap intervals."""
    return md_table(result.table("rate"), digits=3, rename={
        "term": "RATE", "estimate": "Estimate", "std_error": "SE (bootstrap)",
        "ci_lower": "95% CI low", "ci_upper": "95% CI high", "p_value": "p-value"})


def fig_tree(result: StudyResult) -> Figure:
    """The depth-2 policy tree, drawn as boxes a reader can act on."""
    t = result.table("tree").set_index("node")
    fig, ax = new_figure(height=3.2)
    ax.set_axis_off()
    pos: dict[int, tuple[float, float]] = {}

    def place(node: int, x: float, width: float) -> None:
        pos[node] = (x, -float(t.loc[node, "depth"]))
        r = t.loc[node]
        if r["left"] >= 0:
            place(int(r["left"]), x - width / 2, width / 2)
            place(int(r["right"]), x + width / 2, width / 2)

    place(0, 0.5, 0.5)
    half = {node: 0.3 if t.loc[node, "left"] < 0 else 0.2 for node in pos}
    for node, (x, y) in pos.items():
        r = t.loc[node]
        if r["left"] >= 0:
            text = f"{NAMES.get(r['feature'], r['feature'])}\n≤ {r['threshold']:.2f} ?"
            style = {"fc": "white", "ec": PALETTE["grey"]}
            for child, label in ((int(r["left"]), "yes"), (int(r["right"]), "no")):
                cx, cy = pos[child]
                ax.annotate("", xy=(cx, cy + half[child]), xytext=(x, y - half[node]),
                            arrowprops={"arrowstyle": "-|>", "color": PALETTE["grey"],
                                        "shrinkA": 0, "shrinkB": 0})
                ax.text((x + cx) / 2, (y + cy) / 2, label, fontsize=8, color=PALETTE["grey"],
                        ha="center", va="center",
                        bbox={"fc": "white", "ec": "none", "pad": 0.5})
        else:
            treat = r["treat"] == 1
            text = (f"{'OFFER' if treat else 'KEEP OLD PRICE'}\n{r['share']:.0%} of customers"
                    f"\ngain {effect(r['gain'], 2)} $")
            style = {"fc": PALETTE["green"] if treat else PALETTE["red"], "ec": "none"}
        ax.text(x, y, text, ha="center", va="center", fontsize=8,
                color="black" if r["left"] >= 0 else "white",
                bbox={"boxstyle": "round,pad=0.4", **style})
    depth = int(t["depth"].max())
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-depth - 0.5, 0.5)
    ax.set_title("The policy tree: whom to offer the new price (gain per customer, net of cost)")
    return fig


def tbl_policies(result: StudyResult) -> Markdown:
    """Each policy's value per customer over treating nobody."""
    t = result.table("policies")[["policy", "share_treated", "estimate", "ci_lower",
                                  "ci_upper", "true_value", "regret"]]
    return md_table(t, digits=2, percent=["share_treated"], rename={
        "policy": "Policy", "share_treated": "Share offered", "estimate": "Value (DR estimate)",
        "ci_lower": "95% CI low", "ci_upper": "95% CI high", "true_value": "True value",
        "regret": "Regret vs oracle"})


def tbl_selection(result: StudyResult) -> Markdown:
    """Held-out R-loss and DR-loss of every method beside the true √PEHE ranking."""
    t = result.table("selection").copy()
    t["method"] = [SHORT[m] for m in t["method"]]
    t["chosen"] = np.where(t["chosen"], "chosen", "")
    t = t[["method", "r_loss", "r_loss_se", "r_rank", "dr_loss", "dr_rank", "sqrt_pehe",
           "pehe_rank", "chosen"]]
    return md_table(t, digits=3, rename={
        "method": "Method", "r_loss": "R-loss (held out)",
        "r_loss_se": "SE of gap to chosen", "r_rank": "R-loss rank",
        "dr_loss": "DR-loss", "dr_rank": "DR-loss rank", "sqrt_pehe": "True √PEHE",
        "pehe_rank": "True rank", "chosen": ""})


def fig_importance(result: StudyResult) -> Figure:
    """The forest's split-based feature importance."""
    t = result.table("importance").iloc[::-1]
    fig, ax = new_figure(height=0.28 * len(t) + 1.2)
    ax.barh([NAMES.get(f, f) for f in t["feature"]], t["importance"] / t["importance"].sum(),
            color=CYCLE[4], alpha=0.85)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_xlabel("Share of the forest's heterogeneity importance")
    ax.tick_params(axis="y", labelsize=8.5)
    ax.set_title("Where the forest splits")
    return fig


def tbl_coverage(result: StudyResult) -> Markdown:
    """Monte Carlo coverage of the ATE and the CATE intervals."""
    cols = ["interval", "coverage", "mc_se", "band_lower", "band_upper", "mean_se",
            "sd_estimate", "reps"]
    cov = result.table("coverage")
    return md_table(cov[[c for c in cols if c in cov]],
                    percent=["coverage", "mc_se", "band_lower", "band_upper"], rename={
        "interval": "Interval", "coverage": "Coverage", "mc_se": "Monte Carlo SE",
        "band_lower": "Band, lower", "band_upper": "Band, upper", "mean_se": "Mean SE",
        "sd_estimate": "SD of estimates", "reps": "Replications"})


def tbl_limitations(result: StudyResult) -> Markdown:
    """Limitations."""
    return md_table(result.table("limitations"), rename={
        "limitation": "Limitation", "why_it_matters": "Why it matters",
        "what_we_did": "What we did"})


def fig_headline(result: StudyResult) -> Figure:
    """The handout's figure: the forest's effects along engagement, beside the truth."""
    return fig_x2(result)
