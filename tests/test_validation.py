"""The validation appendix must pass (issue 19).

The appendix (``chapters/validation.qmd``, :meth:`analysis.report.book.Book.validation`)
lists every study's ``checks`` table: known answers (planted truths, Monte Carlo coverage,
real benchmarks) that a method the book relies on must recover (``role = "method"``), and
deliberately naive comparisons that must miss theirs (``role = "counterexample"``).  On the
quick profile, for every study, each method check must recover its answer and each
counterexample must fail as designed; before this test, a miss failed nothing.

The test reads the studies' own ``checks`` tables generically: a study adding a check is
tested without a change here.
"""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.result import CHECK_COLUMNS, check_row, checks_frame
from analysis.studies import STUDIES

DESCRIPTIVE = {"data_overview"}
"""Studies that estimate nothing (they describe the data), so have no known answer."""


def appendix_failures(study: str, checks: pd.DataFrame) -> list[str]:
    """Every way ``checks`` fails the appendix: a method check that misses its answer, a
    counterexample that recovers it, a row that is not a method or counterexample."""
    out = []
    for row in checks.itertuples(index=False):
        where = (f"{study}: {row.role} check {row.check!r} (estimate {row.estimate:.4g}, "
                 f"interval {row.ci_lower:.4g} to {row.ci_upper:.4g}, {row.target_label} "
                 f"{row.target:.4g})")
        if row.role == "method" and not row.covered:
            out.append(f"{where} missed its known answer")
        elif row.role == "counterexample" and row.covered:
            out.append(f"{where} recovered the answer it was designed to miss")
        elif row.role not in ("method", "counterexample"):
            out.append(f"{where} has an unknown role")
    return out


def test_the_appendix_check_can_fail():
    """The check above flags a missed method and a counterexample that succeeds."""
    k = "planted truth"
    rows = [check_row("good", k, 1.0, 0.5, 1.5, 1.0, "truth"),
            check_row("missed", k, 3.0, 2.5, 3.5, 1.0, "truth"),
            check_row("naive hit", k, 1.0, 0.5, 1.5, 1.0, "truth", role="counterexample"),
            check_row("naive miss", k, 3.0, 2.5, 3.5, 1.0, "truth", role="counterexample")]
    failures = appendix_failures("toy", checks_frame(rows))
    assert len(failures) == 2
    assert "'missed'" in failures[0] and failures[0].endswith("missed its known answer")
    assert "'naive hit'" in failures[1]
    assert failures[1].endswith("recovered the answer it was designed to miss")


@pytest.mark.parametrize("name", list(STUDIES))
def test_every_check_of_the_study_passes_on_the_quick_profile(quick_runs, name):
    tables = quick_runs[name].result.tables
    if name in DESCRIPTIVE:
        assert "checks" not in tables or tables["checks"].empty
        return
    assert "checks" in tables, f"{name} states estimates but has no checks table"
    checks = tables["checks"]
    assert list(checks.columns) == CHECK_COLUMNS
    assert (checks["role"] == "method").any(), f"{name} has no method check"
    failures = appendix_failures(name, checks)
    assert not failures, "\n".join(failures)


def test_the_book_wide_counts_say_everything_passed(quick_runs):
    """What the appendix's sentence reports: every answer recovered, every naive miss."""
    from analysis.config import load_config
    from analysis.report.book import Book
    from tests.conftest import ROOT

    book = Book(runs=list(quick_runs.values()),
                config=load_config(ROOT / "analysis.toml", profile="quick"))
    counts = book.validation_counts()
    assert counts["methods"] > 0 and counts["counter"] > 0
    assert counts["recovered"] == counts["methods"]
    assert counts["counter_failed"] == counts["counter"]
