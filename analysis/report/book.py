"""The book-level pages: the executive summary and the provenance table of the index."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from IPython.display import Markdown

from analysis.config import BookConfig, load_config
from analysis.report.chapter import quiet_library_noise, setup_display
from analysis.report.summaries import render_summary, render_template
from analysis.report.tables import md_table
from analysis.runner import StudyRun, run_studies
from analysis.studies import get_study


@dataclass
class Book:
    """Every registered study's run, for the index page."""

    runs: list[StudyRun]
    config: BookConfig

    def summary(self) -> Markdown:
        """The book-level executive summary, assembled from the studies that exist."""
        sections = [{"title": get_study(r.name).TITLE,
                     "chapter": get_study(r.name).CHAPTER.removeprefix("chapters/"),
                     "section": f"sec-{r.name.replace('_', '-')}",
                     "synthetic": r.result.is_synthetic,
                     "body": render_summary(r.result)} for r in self.runs]
        return Markdown(render_template("book_summary.md.j2",
                                        {"studies": sections, "profile": self.config.profile}))

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


def setup_book(*, profile: str | None = None) -> Book:
    """The index page's hidden setup: run (or read) every registered study."""
    quiet_library_noise()
    setup_display()
    config = load_config(profile=profile)
    return Book(runs=run_studies(config=config), config=config)
