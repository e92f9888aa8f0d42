"""The book-level pages: the index (headline table, executive summary, provenance), the
validation appendix and the handout.

Everything is assembled from the studies' results: each study's one-row
``headline`` table, its ``checks`` table of known answers and its templates.  A
new study that returns those tables appears on every book-level page without
editing this module.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import Markdown
from matplotlib.figure import Figure

import analysis
from analysis.config import BookConfig, load_config
from analysis.report.chapter import quiet_library_noise, setup_display
from analysis.report.style import PALETTE, new_figure
from analysis.report.summaries import (
    ci,
    effect,
    num,
    render_summary,
    render_template,
    templates_dir,
)
from analysis.report.tables import md_table
from analysis.runner import StudyRun, run_studies
from analysis.studies import get_study


def section_id(name: str) -> str:
    """The chapter heading id of a study (``dml_genre`` -> ``sec-dml-genre``)."""
    return f"sec-{name.replace('_', '-')}"


@dataclass
class Book:
    """Every registered study's run, for the book-level pages."""

    runs: list[StudyRun]
    config: BookConfig

    # ------------------------------------------------------------------ index
    def headline(self) -> pd.DataFrame:
        """One row per study with a ``headline`` table: the answers at a glance."""
        rows = []
        for r in self.runs:
            if "headline" not in r.result.tables:
                continue
            h = r.result.table("headline").iloc[0]
            ref = "—" if pd.isna(h["reference"]) else \
                f"{h['reference_label']} {effect(h['reference'])}"
            rows.append({"Chapter": f"@{section_id(r.name)}",
                         "Question and answer": f"{h['question']} *{h['answer']}.*",
                         "Estimate (95% CI)": f"{effect(h['estimate'])} {h['unit']} "
                                              f"{ci(h['ci_lower'], h['ci_upper'])}",
                         "Known answer": ref if ref == "—" else f"{ref}: {h['verdict']}"})
        return pd.DataFrame(rows)

    def headline_table(self) -> Markdown:
        """:meth:`headline` as a Markdown table."""
        return md_table(self.headline())

    def short_summary(self, name: str) -> str:
        """A chapter's two or three sentences for the index and the handout: the answer,
        the number with its interval, the decision.

        Rendered from ``templates/studies/<study>_short.md.j2`` with the study's headline
        row (``question``, ``answer``, ``estimate``, ``ci_lower``, ``ci_upper``, ``unit``,
        ``reference``, ``reference_label``, ``verdict``, ``has_reference``) and
        ``decision``, its rendered recommendation; a study without that template (or
        without a headline) shows its full summary.
        """
        run = self.run_of(name)
        template = f"studies/{name}_short.md.j2"
        if "headline" not in run.result.tables or \
                not (templates_dir() / template).is_file():
            return render_summary(run.result)
        h = run.result.table("headline").iloc[0].to_dict()
        h["has_reference"] = not pd.isna(h["reference"])
        study = get_study(name)
        rec = getattr(study, "RECOMMENDATION_TEMPLATE", None)
        h["decision"] = render_template(rec, run.result.facts).strip() if rec else ""
        return render_template(template, h)

    def summary(self) -> Markdown:
        """The book-level executive summary (each chapter's short form), ending with the
        validation count."""
        sections = [{"title": get_study(r.name).TITLE, "section": section_id(r.name),
                     "synthetic": r.result.is_synthetic,
                     "simulation": getattr(get_study(r.name), "DESIGN", "") == "simulation",
                     "body": self.short_summary(r.name)} for r in self.runs]
        return Markdown(render_template("book_summary.md.j2", {
            "studies": sections, "profile": self.config.profile,
            "validation_sentence": self.validation_sentence()}))

    def provenance(self) -> pd.DataFrame:
        """Study, dataset, real or synthetic, rows, runtime, cached or fresh, seed.

        The runtime is that of the computation, also when this render read it from the cache.
        """
        return pd.DataFrame({
            "Study": [get_study(r.name).TITLE for r in self.runs],
            "Dataset": [r.result.provenance.dataset for r in self.runs],
            "Source": [r.result.provenance.source for r in self.runs],
            "Rows": [r.result.provenance.rows for r in self.runs],
            "Runtime (s)": [r.result.provenance.runtime_s for r in self.runs],
            "Status": ["cached" if r.cached else "fresh" for r in self.runs],
            "Seed": [str(r.result.provenance.seed) for r in self.runs],
        })

    def provenance_table(self) -> Markdown:
        """:meth:`provenance` as a Markdown table."""
        return md_table(self.provenance(), digits={"Runtime (s)": 1})

    # ------------------------------------------------------------- validation
    def validation(self) -> pd.DataFrame:
        """Every study's known-answer checks, with the chapter each comes from."""
        frames = []
        for r in self.runs:
            if "checks" in r.result.tables:
                t = r.result.table("checks")
                t.insert(0, "chapter", f"@{section_id(r.name)}")
                t.insert(1, "study", r.name)
                frames.append(t)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def validation_counts(self) -> dict[str, int]:
        """How many method checks recovered their answer, and how many counterexamples failed."""
        v = self.validation()
        method = v[v["role"] == "method"]
        counter = v[v["role"] == "counterexample"]
        return {"recovered": int(method["covered"].sum()), "methods": len(method),
                "counter_failed": int((~counter["covered"]).sum()), "counter": len(counter)}

    def validation_sentence(self) -> str:
        """"N of M known answers recovered", and what the deliberately naive methods did."""
        c = self.validation_counts()
        if not c["methods"]:
            return ""
        text = (f"Across the book, {c['recovered']} of {c['methods']} known answers were "
                "recovered by the methods it relies on (@sec-validation)")
        if c["counter"] and c["counter_failed"] == c["counter"]:
            text += (f"; all {c['counter']} deliberately naive comparisons miss theirs, "
                     "as they should")
        elif c["counter"]:
            text += (f"; {c['counter_failed']} of the {c['counter']} deliberately naive "
                     "comparisons miss theirs, and the others hit by luck")
        return text + "."

    def validation_table(self, role: str) -> Markdown:
        """The checks of one role (``method`` or ``counterexample``) as a Markdown table."""
        v = self.validation()
        v = v[v["role"] == role]
        shown = pd.DataFrame({
            "Chapter": v["chapter"], "Check": v["check"], "Kind": v["kind"],
            "Estimate": [_value(e, k) for e, k in zip(v["estimate"], v["kind"], strict=True)],
            "95% interval": [_interval(lo, hi, k) for lo, hi, k in
                             zip(v["ci_lower"], v["ci_upper"], v["kind"], strict=True)],
            "Known answer": [f"{lab} {_value(t, k)}" for lab, t, k in
                             zip(v["target_label"], v["target"], v["kind"], strict=True)],
            "Covered": np.where(v["covered"], "yes", "**no**")})
        return md_table(shown)

    def validation_misses(self) -> Markdown:
        """A sentence per method check that missed its answer, with its distance in SEs."""
        v = self.validation()
        miss = v[(v["role"] == "method") & ~v["covered"]]
        if miss.empty:
            return Markdown("Every method check recovered its known answer.\n")
        lines = []
        for r in miss.itertuples():
            se = (r.ci_upper - r.ci_lower) / (2 * 1.959964)
            z = (r.estimate - r.target) / se if se > 0 else np.inf
            lines.append(f"- {r.chapter}: {r.check} gave {_value(r.estimate, r.kind)} against "
                         f"{r.target_label} {_value(r.target, r.kind)}, "
                         f"{num(abs(z), 1)} standard errors away ({r.detail or r.kind}).")
        return Markdown("\n".join(lines) + "\n")

    def fig_validation(self, study: str | None = None) -> Figure:
        """Each check's distance from its known answer, in standard errors (one study's
        checks, or all of them)."""
        v = self.validation()
        if study is not None:
            v = v[v["study"] == study]
        v = v.iloc[::-1].reset_index(drop=True)
        se = (v["ci_upper"] - v["ci_lower"]) / (2 * 1.959964)
        z = ((v["estimate"] - v["target"]) / se.where(se > 0)).clip(-8, 8)
        size = 6.5 if study is None else 8.0  # one chapter's checks: legible labels
        fig, ax = new_figure(height=(0.2 if study is None else 0.24) * len(v) + 1.4)
        y = np.arange(len(v))
        ax.axvspan(-1.959964, 1.959964, color=PALETTE["light"], alpha=0.5, lw=0,
                   label="within the 95% interval")
        ax.axvline(0, color=PALETTE["grey"], lw=0.8)
        colors = np.where(v["role"] == "method", PALETTE["blue"], PALETTE["red"])
        ax.scatter(z, y, c=colors, s=22, zorder=3)
        ax.hlines(y, np.minimum(z, 0), np.maximum(z, 0), colors=colors, lw=1)
        ax.set_yticks(y, [c if len(c) <= 62 else c[:60] + "…" for c in v["check"]],
                      fontsize=size)
        ax.set_xlim(-8.5, 8.5)
        ax.set_xlabel("(estimate − known answer) / standard error, clipped at ±8")
        ax.scatter([], [], color=PALETTE["blue"], s=22, label="method the book relies on")
        ax.scatter([], [], color=PALETTE["red"], s=22, label="deliberately naive comparison")
        fig.legend(loc="outside lower center", ncol=3, fontsize=7.5)
        if study is None:  # one chapter's figure is named by its caption
            ax.set_title("How far each estimate lies from its known answer")
        return fig

    def validation_figures(self, figure_dir: str = "validation-figures") -> Markdown:
        """One figure per chapter with checks (:meth:`fig_validation`), each labelled
        ``fig-validation-<study>`` and introduced by a sentence that cross-references them.

        Figures are written to ``figure_dir``, relative to the working directory (the
        chapter's folder when Quarto runs it), and linked from the Markdown, so that every
        label stays legible however many checks a chapter has.
        """
        folder = Path(figure_dir)
        folder.mkdir(parents=True, exist_ok=True)
        studies = list(dict.fromkeys(self.validation()["study"]))
        labels = [f"fig-validation-{name.replace('_', '-')}" for name in studies]
        refs = f"@{labels[0]}" if len(labels) == 1 else f"@{labels[0]} to @{labels[-1]}"
        parts = [f"{refs} put every check on one scale, one figure per chapter: how many "
                 "standard errors the estimate lies from its known answer."]
        for name, label in zip(studies, labels, strict=True):
            fig = self.fig_validation(name)
            path = folder / f"{name}.png"
            fig.savefig(path, dpi=150)
            parts.append(f"![Distance of each estimate from its known answer in standard "
                         f"errors, @{section_id(name)}; the shaded band is the 95% "
                         f"interval.]({path.as_posix()}){{#{label}}}")
        return Markdown("\n\n".join(parts) + "\n")

    # ---------------------------------------------------------------- handout
    def handout_studies(self) -> list[str]:
        """The studies the handout shows: those with a headline, except appendices
        (``APPENDIX = True`` in the study module)."""
        return [r.name for r in self.runs if "headline" in r.result.tables
                and not getattr(get_study(r.name), "APPENDIX", False)]

    def run_of(self, name: str) -> StudyRun:
        """One study's run."""
        return next(r for r in self.runs if r.name == name)

    def handout_figure(self, name: str, path: Path) -> str:
        """Save a chapter's headline figure (its report module's ``fig_headline``) as a
        compact PNG at ``path`` and return the Markdown that shows it."""
        report = importlib.import_module(f"analysis.report.{name}")
        fig = report.fig_headline(self.run_of(name).result)
        fig.set_size_inches(6.3, min(fig.get_size_inches()[1], 2.5))
        fig.savefig(path, dpi=150)
        return f"![]({path.as_posix()}){{width=100%}}"

    def handout_sections(self, figure_dir: str = "handout-figures") -> Markdown:
        """Every chapter's part of the handout: its executive summary, its headline figure
        and its top recommendation.

        Figures are written to ``figure_dir``, relative to the working directory (the
        handout's folder when Quarto runs it), and linked from the Markdown.
        """
        folder = Path(figure_dir)
        folder.mkdir(parents=True, exist_ok=True)
        parts = []
        for name in self.handout_studies():
            study = get_study(name)
            parts += [f"## {study.TITLE}", self.short_summary(name).strip(),
                      self.handout_figure(name, folder / f"{name}.png")]
        return Markdown("\n\n".join(parts) + "\n")

    def provenance_line(self) -> Markdown:
        """Data, profile, date and version, in one line."""
        data = sorted({f"{r.result.provenance.dataset} ({r.result.provenance.source})"
                       for r in self.runs})
        return Markdown(f"*Data: {', '.join(data)}. Profile `{self.config.profile}`. "
                        f"Built {date.today().isoformat()} with `analysis` "
                        f"{analysis.__version__}.*\n")


def _value(x: float, kind: str) -> str:
    if kind == "Monte Carlo coverage":
        return f"{100 * x:.1f}%"
    return num(x, 0 if abs(x) >= 100 else 3)


def _interval(lo: float, hi: float, kind: str) -> str:
    if kind == "Monte Carlo coverage":
        return f"[{100 * lo:.1f}%, {100 * hi:.1f}%]"
    return ci(lo, hi, 0 if max(abs(lo), abs(hi)) >= 100 else 3)


def setup_book(*, profile: str | None = None) -> Book:
    """The hidden setup of a book-level page: run (or read) every registered study."""
    quiet_library_noise()
    setup_display()
    config = load_config(profile=profile)
    return Book(runs=run_studies(config=config), config=config)
