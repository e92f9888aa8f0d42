"""The hidden setup cell of every chapter, and what chapters display.

A chapter's first cell is::

    from analysis.report import setup_chapter
    ch = setup_chapter("dml_genre")

It seeds, sets display options and the figure style, silences library noise,
and fetches the study's result through the cache.  Later cells only display
what ``ch`` and the study's report module return.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from IPython.display import Markdown

from analysis.config import BookConfig, load_config
from analysis.report.style import apply_house_style
from analysis.report.summaries import effect, render_summary, render_template
from analysis.report.tables import md_table
from analysis.result import StudyResult
from analysis.runner import StudyRun, run_study


def quiet_library_noise() -> None:
    """Keep deprecation chatter from libraries off the rendered page."""
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=".*(n_jobs|threadpoolctl|X does not have valid "
                                              "feature names).*")


def setup_display() -> None:
    """Figure style, PNG output and pandas display options."""
    apply_house_style()
    pd.set_option("display.precision", 3)
    pd.set_option("display.max_columns", 20)
    try:  # inside a Jupyter kernel: figures as PNG only (SVG and plotly break PDFs)
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
    except Exception:  # noqa: BLE001 - not in IPython; nothing to configure
        pass


@dataclass
class Chapter:
    """What a chapter displays: one study run and helpers to show it.

    Attributes
    ----------
    run : StudyRun
    config : BookConfig
    """

    run: StudyRun
    config: BookConfig

    @property
    def result(self) -> StudyResult:
        """The study's result."""
        return self.run.result

    @property
    def facts(self) -> dict:
        """The study's facts."""
        return dict(self.result.facts)

    def summary(self) -> Markdown:
        """The templated executive summary."""
        return Markdown(render_summary(self.result))

    def table(self, name: str, **fmt) -> Markdown:
        """One of the result's tables as Markdown (see :func:`md_table`)."""
        return md_table(self.result.table(name), **fmt)

    def data_callout(self) -> Markdown:
        """A visible callout saying which data the chapter ran on.

        A study that is a simulation by design (``DESIGN = "simulation"`` in its
        module) says so, with its ``CALLOUT_TEMPLATE`` as the body.  Otherwise the
        callout says whether real data was used, or, when none was found, that a
        synthetic stand-in ran and what its planted true effect (fact ``truth_ate``) is.
        """
        from analysis.studies import get_study

        p = self.result.provenance
        study = get_study(p.study)
        if getattr(study, "DESIGN", "") == "simulation":
            body = render_template(study.CALLOUT_TEMPLATE, self.result.facts).strip()
            return _callout("note", SIMULATION_TITLE, body)
        if p.source == "synthetic":
            truth = self.result.facts.get("truth_ate")
            planted = (f" The planted true effect is **{effect(truth)}**, so every estimate "
                       "below can be checked against it." if truth is not None else "")
            body = (f"No real data was found, so this chapter runs on **{p.dataset}**, a "
                    f"simulated dataset of {p.rows:,} rows (seed {p.seed}).{planted} "
                    "See the README for how to point the book at real data.")
            return _callout("warning", "Synthetic data", body)
        body = (f"This chapter runs on the real **{p.dataset}** data: {p.rows:,} rows, "
                f"fingerprint `{p.fingerprint[:12]}`, profile `{p.profile}`.")
        return _callout("note", "Real data", body)

    def diagnostics(self) -> Markdown:
        """Diagnostics that matter (overlap, weak instruments...), as callouts."""
        if not self.result.diagnostics:
            return Markdown("")
        parts = [_callout("warning" if d.level == "warning" else "note",
                          f"Diagnostic: {d.topic}", d.message).data
                 for d in self.result.diagnostics]
        return Markdown("\n\n".join(parts))


SIMULATION_TITLE = "Simulated data with a planted truth"


def _callout(kind: str, title: str, body: str) -> Markdown:
    return Markdown(f"::: {{.callout-{kind}}}\n## {title}\n\n{body}\n:::\n")


def setup_chapter(study: str, *, profile: str | None = None, refresh: bool = False) -> Chapter:
    """The chapter setup: seed, display, figure style, config and the study's result.

    Parameters
    ----------
    study : str
        The registered study the chapter shows.
    profile : str, optional
        Defaults to ``$ANALYSIS_PROFILE`` or ``default``.
    refresh : bool
        Recompute even if cached.
    """
    quiet_library_noise()
    setup_display()
    config = load_config(profile=profile)
    np.random.seed(config.study(study).seed % 2**32)  # noqa: NPY002 - any display-time draws
    return Chapter(run=run_study(study, config=config, refresh=refresh), config=config)
