"""Figures, tables and templated text of the IHDP appendix (``ihdp_benchmark``), also
shown in the causal forest chapter.

Drawn from the study's result only; nothing here refits.
"""

from __future__ import annotations

import numpy as np
from IPython.display import Markdown
from matplotlib.figure import Figure

from analysis.estimators.cate import METHODS, SHORT
from analysis.report.style import PALETTE, new_figure
from analysis.report.summaries import render_template
from analysis.report.tables import md_table
from analysis.result import StudyResult


def paragraph(result: StudyResult, name: str) -> Markdown:
    """A templated block (``templates/studies/ihdp_benchmark_<name>.md.j2``)."""
    return Markdown(render_template(f"studies/ihdp_benchmark_{name}.md.j2", result.facts))


def tbl_summary(result: StudyResult) -> Markdown:
    """Per method: mean and spread over realizations of each score."""
    t = result.table("summary").copy()
    t["method"] = [SHORT[m] for m in t["method"]]
    t = t[["method", "pehe_mean", "pehe_sd", "ate_error_mean", "ate_error_sd",
           "ate_coverage", "cate_coverage_mean", "cate_coverage_sd"]]
    return md_table(t, digits=2, percent=["ate_coverage", "cate_coverage_mean",
                                          "cate_coverage_sd"], rename={
        "method": "Method", "pehe_mean": "√PEHE, mean", "pehe_sd": "√PEHE, SD",
        "ate_error_mean": "|ATE error|, mean", "ate_error_sd": "|ATE error|, SD",
        "ate_coverage": "ATE interval covers", "cate_coverage_mean": "Per-unit coverage, mean",
        "cate_coverage_sd": "Per-unit coverage, SD"})


def tbl_published(result: StudyResult) -> Markdown:
    """Shalit et al. (2017)'s figures, quoted."""
    return md_table(result.table("published"), digits=2, rename={
        "method": "Method (Shalit et al. 2017)",
        "sqrt_pehe": "√PEHE, within-sample (their Table 1)"})


def fig_pehe(result: StudyResult) -> Figure:
    """√PEHE and per-unit coverage of every method over the realizations."""
    reps = result.table("realizations")
    methods = [m for m in METHODS if m in set(reps["method"])]
    fig, (ax1, ax2) = new_figure(ncols=2, height=3.2)
    data = [reps.loc[reps["method"] == m, "sqrt_pehe"].to_numpy() for m in methods]
    ax1.boxplot(data, orientation="horizontal", tick_labels=[SHORT[m] for m in methods])
    ax1.set_xscale("log")
    ax1.set_xlabel("√PEHE per realization (log scale)")
    ax1.invert_yaxis()
    with_ci = [m for m in methods if reps.loc[reps["method"] == m, "cate_coverage"].notna().all()]
    cov = [reps.loc[reps["method"] == m, "cate_coverage"].to_numpy() for m in with_ci]
    ax2.boxplot(cov, orientation="horizontal", tick_labels=[SHORT[m] for m in with_ci])
    ax2.axvline(0.95, color=PALETTE["green"], lw=1, label="nominal 95%")
    ax2.axvline(result.facts["targeting_coverage"], color=PALETTE["red"], lw=1, ls="--",
                label="80%: the book's bar for targeting")
    ax2.set_xlabel("Share of true effects in the 95% intervals")
    ax2.set_xlim(0, 1.02)
    ax2.invert_yaxis()
    ax2.legend(fontsize=7, loc="lower left")
    return fig


def fig_headline(result: StudyResult) -> Figure:
    """Per-unit coverage of the methods with intervals (the appendix's answer)."""
    s = result.table("summary").dropna(subset=["cate_coverage_mean"])
    fig, ax = new_figure(height=2.6)
    y = np.arange(len(s))
    ax.barh(y, s["cate_coverage_mean"], color=PALETTE["blue"], alpha=0.8)
    ax.axvline(0.95, color=PALETTE["green"], lw=1)
    ax.axvline(result.facts["targeting_coverage"], color=PALETTE["red"], lw=1, ls="--")
    ax.set_yticks(y, [SHORT[m] for m in s["method"]])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("Mean share of true effects in the 95% per-unit intervals (IHDP)")
    return fig
