"""Book-level pages: the headline table, the validation appendix and the handout pieces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.config import load_config
from analysis.report.book import Book, section_id
from analysis.result import (
    CHECK_COLUMNS,
    HEADLINE_COLUMNS,
    check_row,
    checks_frame,
    coverage_check,
)
from analysis.studies import STUDIES
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def book(quick_runs):
    return Book(runs=[quick_runs[n] for n in STUDIES],
                config=load_config(ROOT / "analysis.toml", profile="quick"))


def test_check_row_and_coverage_check():
    assert check_row("x", "planted truth", 1.0, 0.5, 1.5, 1.2, "truth")["covered"]
    assert not check_row("x", "planted truth", 1.0, 0.5, 1.1, 1.2, "truth")["covered"]
    with pytest.raises(ValueError, match="role"):
        check_row("x", "planted truth", 1, 0, 2, 1, "t", role="other")
    row = coverage_check("c", np.r_[np.ones(95), np.zeros(5)])
    assert row["estimate"] == pytest.approx(0.95) and row["target"] == 0.95
    assert row["ci_lower"] == pytest.approx(0.95 - 1.959964 * np.sqrt(0.95 * 0.05 / 100))
    assert list(checks_frame([row]).columns) == CHECK_COLUMNS


def test_every_study_with_an_estimate_declares_checks_and_a_headline(quick_runs):
    for name, run in quick_runs.items():
        if name == "data_overview":  # descriptive: no estimate, no known answer
            assert "checks" not in run.result.tables
            continue
        checks, head = run.result.table("checks"), run.result.table("headline")
        assert list(checks.columns) == CHECK_COLUMNS and len(checks) >= 3
        assert set(checks["role"]) <= {"method", "counterexample"}
        assert (checks["ci_lower"] <= checks["ci_upper"]).all()
        lo, hi = checks["ci_lower"], checks["ci_upper"]
        covered = (lo <= checks["target"]) & (checks["target"] <= hi)
        assert (covered == checks["covered"]).all()
        assert list(head.columns) == HEADLINE_COLUMNS and len(head) == 1


def test_headline_table_has_a_row_per_study_with_an_answer(book):
    t = book.headline()
    assert list(t["Chapter"]) == [f"@{section_id(n)}" for n in STUDIES if n != "data_overview"]
    assert t["Estimate (95% CI)"].str.contains(r"\[").all()
    assert "|" in book.headline_table().data


def test_validation_collects_every_check_and_counts_them(book, quick_runs):
    v = book.validation()
    expected = sum(len(r.result.tables["checks"]) for r in quick_runs.values()
                   if "checks" in r.result.tables)
    assert len(v) == expected
    c = book.validation_counts()
    assert c["methods"] + c["counter"] == expected
    sentence = book.validation_sentence()
    assert f"{c['recovered']} of {c['methods']} known answers were recovered" in sentence
    assert "@sec-validation" in sentence
    assert book.summary().data.strip().endswith(sentence)


def test_validation_misses_name_every_failed_method_check(book):
    v = book.validation()
    missed = v[(v["role"] == "method") & ~v["covered"]]
    text = book.validation_misses().data
    for check in missed["check"]:
        assert check in text
    if missed.empty:
        assert "Every method check recovered" in text


def test_validation_figure_has_a_point_per_check(book):
    fig = book.fig_validation()
    assert len(fig.axes[0].get_yticks()) == len(book.validation())


def test_validation_figures_one_per_chapter_with_every_check(book, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    v = book.validation()
    studies = list(dict.fromkeys(v["study"]))
    text = book.validation_figures().data
    for name in studies:
        assert (tmp_path / "validation-figures" / f"{name}.png").is_file()
        assert f"{{#fig-validation-{name.replace('_', '-')}}}" in text
    assert text.startswith(f"@fig-validation-{studies[0].replace('_', '-')}")
    ticks = [len(book.fig_validation(n).axes[0].get_yticks()) for n in studies]
    assert sum(ticks) == len(v)


def test_short_summaries_give_answer_interval_and_decision(book):
    for name in book.handout_studies():
        h = book.run_of(name).result.table("headline").iloc[0]
        short = book.short_summary(name)
        assert short.startswith(f"**{h['answer']}.**") and "95% CI" in short
        assert "**Decision:**" in short
        assert short.count(". ") + short.count(".\n") <= 6  # a few sentences, not a page
    assert "@sec-dml-genre" in book.summary().data


def test_handout_sections(book, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = book.handout_sections().data
    for name in book.handout_studies():
        assert (tmp_path / "handout-figures" / f"{name}.png").is_file()
    assert text.count("**Decision:**") == len(book.handout_studies())
    assert isinstance(book.headline(), pd.DataFrame)
