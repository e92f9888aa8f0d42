"""Figures, tables and templated text of the interference chapter (``interference_slates``).

Drawn from the study's result only; nothing here refits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from IPython.display import Markdown
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch

from analysis.report.style import CYCLE, PALETTE, new_figure
from analysis.report.summaries import ci, effect, render_template
from analysis.report.tables import fmt_number, md_table
from analysis.result import StudyResult

ORDER = ["direct", "all", "same_cluster", "displaced", "same_cluster_displaced",
         "near_displaced", "total"]
SHORT = {"direct": "Direct (focal item)", "all": "All other items",
         "same_cluster": "Same-genre competitors", "displaced": "Displaced items",
         "same_cluster_displaced": "Displaced same-genre items",
         "near_displaced": "Displaced to 2nd or 3rd", "total": "Total (whole slate)"}
SHORT_ESTIMATOR = {"Difference in means": "Difference in means",
                   "Lin regression adjustment": "Lin adjustment",
                   "AIPW (cross-fitted LightGBM)": "AIPW (LightGBM)"}


def paragraph(result: StudyResult, name: str) -> Markdown:
    """A templated block (``templates/studies/interference_slates_<name>.md.j2``)."""
    return Markdown(render_template(f"studies/interference_slates_{name}.md.j2", result.facts))


def recommendations(result: StudyResult) -> Markdown:
    """The recommendations, generated from the results."""
    return paragraph(result, "recommendations")


def bullets(result: StudyResult) -> Markdown:
    """Résumé-style bullets generated from the facts."""
    return paragraph(result, "bullets")


def fig_slate(result: StudyResult) -> Figure:
    """A slate before and after promotion: the focal item jumps, the others move down."""
    K, focal = 8, 6
    genres = ["Comedy", "Drama", "Comedy", "Action", "Drama", "Comedy", "Comedy", "Crime"]
    colors = {"Comedy": PALETTE["blue"], "Drama": PALETTE["green"], "Action": PALETTE["purple"],
              "Crime": PALETTE["grey"]}
    fig, axes = new_figure(1, 2, height=3.3)
    for ax, promoted in zip(axes, (False, True), strict=True):
        order = list(range(K))
        if promoted:
            order = [focal] + [i for i in range(K) if i != focal]
        for pos, item in enumerate(order):
            is_focal = item == focal
            ax.add_patch(FancyBboxPatch((0.05, K - pos - 0.9), 0.9, 0.8,
                                        boxstyle="round,pad=0.02",
                                        fc=PALETTE["orange"] if is_focal else colors[genres[item]],
                                        ec="black" if is_focal else "none", alpha=0.9))
            moved = promoted and not is_focal and item < focal
            ax.text(0.5, K - pos - 0.5, f"#{pos + 1}  {genres[item]}"
                    + ("  (focal)" if is_focal else "") + ("  ↓" if moved else ""),
                    ha="center", va="center", color="white", fontsize=8, fontweight="bold")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, K + 0.2)
        ax.set_axis_off()
        ax.set_title("Promoted: the focal item jumps to the top" if promoted else
                     "Original slate: focal item at #7")
    return fig


def tbl_summary(result: StudyResult) -> Markdown:
    """The slates at a glance."""
    return md_table(result.table("summary"), rename={"measure": "Measure", "value": "Value"})


def tbl_estimates(result: StudyResult) -> Markdown:
    """Every estimand (a row) by every estimator (a column), per 1,000 promoted slates with
    the 95% interval, beside the oracle; an interval that misses the oracle is marked."""
    t = result.table("estimates")
    # non-breaking spaces keep "estimate [low, high]" on one line in narrow columns
    cell = [f"{effect(1000 * e, 0)} {ci(1000 * lo, 1000 * hi, 0)}".replace(" ", "\u00a0")
            + ("" if ok else " (misses)")
            for e, lo, hi, ok in zip(t["estimate"], t["ci_lower"], t["ci_upper"],
                                     t["covers_oracle"], strict=True)]
    wide = (t.assign(cell=cell)
            .pivot(index="estimand", columns="estimator", values="cell")
            .reindex(index=[k for k in ORDER if k in set(t["estimand"])],
                     columns=pd.unique(t["estimator"])))
    oracle = t.drop_duplicates("estimand").set_index("estimand")["oracle_per_1000"]
    shown = pd.DataFrame({"Estimand": [SHORT[k] for k in wide.index],
                          "Oracle": [effect(v, 0) for v in oracle.loc[wide.index]]})
    for name in wide.columns:
        shown[SHORT_ESTIMATOR.get(name, name)] = wide[name].to_numpy()
    return md_table(shown)


def fig_effects(result: StudyResult) -> Figure:
    """Direct, five spillovers and total per 1,000 promoted slates, estimates and oracle."""
    t = result.table("estimates")
    dim = t[t["estimator"] == "Difference in means"].set_index("estimand").loc[ORDER]
    fig, ax = new_figure(height=3.4)
    y = np.arange(len(dim))[::-1]
    colors = [PALETTE["green"] if k == "direct" else PALETTE["blue"] if k == "total"
              else PALETTE["red"] for k in dim.index]
    ax.hlines(y, 1000 * dim["ci_lower"], 1000 * dim["ci_upper"], color=colors, lw=2)
    ax.scatter(dim["per_1000"], y, color=colors, s=30, zorder=3)
    ax.scatter(dim["oracle_per_1000"], y, marker="x", color="black", s=40, zorder=4)
    ax.axvline(0, color=PALETTE["grey"], lw=0.8)
    ax.set_yticks(y, [SHORT[k] for k in dim.index], fontsize=8.5)
    ax.set_xlabel("Change in clicks per 1,000 promoted slates")
    ax.legend(handles=[Line2D([], [], marker="o", ls="-", color=PALETTE["grey"],
                              label="Difference in means, 95% CI"),
                       Line2D([], [], marker="x", ls="none", color="black", label="Oracle")],
              fontsize=8, loc="lower right")
    ax.set_title("What a promotion does: the focal item gains, the others lose")
    return fig


def fig_waterfall(result: StudyResult) -> Figure:
    """Direct + indirect = total, per 1,000 promoted slates."""
    d = result.table("decomposition")
    direct, indirect, total = d["estimate_per_1000"]
    fig, ax = new_figure(height=3.2)
    bars = [(0, direct, PALETTE["green"], "Direct\n(focal item)"),
            (direct, indirect, PALETTE["red"], "Indirect\n(other items)"),
            (0, total, PALETTE["blue"], "Total\n(whole slate)")]
    ends = [0.0, direct, direct + indirect, total]
    span = max(ends) - min(ends)
    for i, (start, height, color, _) in enumerate(bars):
        ax.bar(i, height, bottom=start, color=color, alpha=0.85, width=0.6)
        end = start + height
        ax.text(i + 0.33, end, effect(height, 0), ha="left", va="center", fontsize=9)
    ax.plot([0, 1], [direct, direct], color=PALETTE["grey"], lw=0.8, ls=":")
    o = d["oracle_per_1000"].to_numpy()
    ax.plot([0, 1, 2], [o[0], o[0] + o[1], o[2]], "x", color="black", ms=8, mew=2,
            label="Oracle (where each bar should end)")
    ax.axhline(0, color=PALETTE["grey"], lw=0.8)
    ax.set_ylim(min(ends) - 0.12 * span, max(ends) + 0.12 * span)
    ax.set_xlim(-0.5, 2.9)
    ax.set_xticks(range(3), [label for *_, label in bars])
    ax.set_ylabel("Clicks per 1,000 promoted slates")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("Direct + indirect = total")
    return fig


def fig_naive(result: StudyResult) -> Figure:
    """What an item-level A/B test reports against the total slate effect."""
    t = result.table("naive")
    fig, ax = new_figure(height=2.8)
    labels = ["Item-level A/B\n(focal item)", "True total\nslate effect", "Bias"]
    colors = [PALETTE["orange"], PALETTE["blue"], PALETTE["red"]]
    ax.barh(labels[::-1], t["per_1000"].iloc[::-1], color=colors[::-1], alpha=0.85)
    for i, v in enumerate(t["per_1000"].iloc[::-1]):
        ax.text(v, i, f" {effect(v, 0)} " if v >= 0 else f"{effect(v, 0)} ", va="center",
                ha="left" if v >= 0 else "right", fontsize=9)
    lo, hi = min(0, t["per_1000"].min()), max(0, t["per_1000"].max())
    ax.set_xlim(lo - 0.2 * (hi - lo), hi + 0.15 * (hi - lo))
    ax.axvline(0, color=PALETTE["grey"], lw=0.8)
    ax.set_xlabel("Clicks per 1,000 promoted slates")
    ax.set_title("An item-level A/B test counts the gain and misses the loss")
    return fig


def tbl_hh(result: StudyResult) -> Markdown:
    """Hudgens-Halloran estimates of the two-stage design."""
    t = result.table("hh")
    shown = pd.DataFrame({"Effect": t["term"], "Per 1,000 slates": t["per_1000"],
                          "SE (HH)": 1000 * t["std_error"], "95% CI low": 1000 * t["ci_lower"],
                          "95% CI high": 1000 * t["ci_upper"], "Oracle": 1000 * t["oracle"],
                          "Covers": t["covers_oracle"], "Groups": t["groups"]})
    return md_table(shown, digits=0)


def _risk(ax, t: pd.DataFrame, title: str, color: str) -> None:
    y = np.arange(len(t))[::-1]
    ax.hlines(y, 1000 * t["ci_lower"], 1000 * t["ci_upper"], color=color, lw=1.8)
    ax.scatter(t["per_1000"], y, color=color, s=26, zorder=3)
    ax.scatter(1000 * t["oracle"], y, marker="x", color="black", s=30, zorder=4)
    ax.set_yticks(y, t["term"], fontsize=8)
    ax.axvline(0, color=PALETTE["grey"], lw=0.8)
    ax.set_title(title, fontsize=10)


def fig_risk(result: StudyResult) -> Figure:
    """Total effect by the focal item's genre and its original position."""
    fig, axes = new_figure(1, 2, height=3.6)
    _risk(axes[0], result.table("by_cluster"), "By the focal item's genre", CYCLE[0])
    _risk(axes[1], result.table("by_position"), "By the focal item's original position",
          CYCLE[1])
    fig.supxlabel("Total clicks per 1,000 promoted slates (× oracle)", fontsize=9)
    return fig


def tbl_policies(result: StudyResult) -> Markdown:
    """Targeting policies per 1,000 eligible slates."""
    t = result.table("policies")
    return md_table(t, digits=0, percent=["share_promoted"], rename={
        "policy": "Policy", "share_promoted": "Share promoted",
        "ipw_per_1000": "Off-policy estimate (50% saturation)",
        "ci_lower_per_1000": "95% CI low", "ci_upper_per_1000": "95% CI high",
        "oracle_at_experiment_per_1000": "Oracle at 50% saturation",
        "oracle_per_1000": "Oracle at the policy's own saturation"})


def fig_sensitivity(result: StudyResult) -> Figure:
    """The oracle total effect as each click-model parameter varies."""
    t = result.table("sensitivity")
    params = list(dict.fromkeys(t["parameter"]))
    titles = {"Promotion intensity": "Intensity", "Attention budget": "Attention",
              "Within-cluster substitution": "Substitution",
              "Position bias": "Position bias", "Slate size": "Slate size"}
    fig, axes = new_figure(1, len(params), height=3.0, sharey=True)
    for ax, p, color in zip(np.atleast_1d(axes), params, CYCLE, strict=False):
        part = t[t["parameter"] == p]
        x = np.arange(len(part))
        ax.plot(x, part["per_1000"], "o-", color=color)
        ax.axhline(0, color=PALETTE["grey"], lw=0.8)
        ax.set_xticks(x, [f"{v:g}" for v in part["value"]], fontsize=7.5,
                      rotation=45 if len(part) > 4 else 0)
        ax.set_title(titles.get(p, p), fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
    np.atleast_1d(axes)[0].set_ylabel("Total clicks per 1,000\npromoted slates (oracle)")
    return fig


def tbl_coverage(result: StudyResult) -> Markdown:
    """Monte Carlo coverage of every interval."""
    t = result.table("coverage")
    shown = pd.DataFrame({"Interval": t["interval"], "Coverage": t["coverage"],
                          "Monte Carlo SE": t["mc_se"],
                          "Mean SE / SD of error": t["mean_se"] / t["sd_error"],
                          "Replications": t["reps"]})
    return md_table(shown, digits={"Mean SE / SD of error": 2},
                    percent=["Coverage", "Monte Carlo SE"])


def tbl_report(result: StudyResult) -> Markdown:
    """The source report's numbers (quoted), each with the report's own unit."""
    names = {"direct": "Direct focal effect",
             "same_cluster_item": "Same-cluster competitors (per item)",
             "all_item": "All non-focal items (per item)",
             "same_cluster": "Same-cluster spillover (per slate)",
             "same_cluster_per_1000": "Same-cluster spillover (per 1,000 slates)",
             "total": "Total slate effect", "aipw_total": "AIPW total",
             "dim_total": "Difference in means, total", "oracle_total": "Oracle total"}
    t = result.table("report")
    value = [fmt_number(v, 1 if abs(v) >= 10 else 3) for v in t["value"]]
    return md_table(pd.DataFrame({"Quantity (report, quoted)": t["quantity"].map(names),
                                  "Value": value, "Unit": t["unit"]}))


def tbl_limitations(result: StudyResult) -> Markdown:
    """Limitations."""
    return md_table(result.table("limitations"), rename={
        "limitation": "Limitation", "why_it_matters": "Why it matters",
        "what_we_did": "What we did"})


def fig_headline(result: StudyResult) -> Figure:
    """The handout's figure: the item-level A/B estimate against the whole slate's effect."""
    return fig_naive(result)
