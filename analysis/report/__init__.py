"""The report layer: figures, tables and summaries drawn from study results.

Nothing here fits a model; every function reads a :class:`~analysis.result.StudyResult`.
"""

from analysis.report.chapter import Chapter, setup_chapter
from analysis.report.summaries import render_summary, render_template
from analysis.report.tables import md_table

__all__ = ["Chapter", "md_table", "render_summary", "render_template", "setup_chapter"]
