"""Templates: each renders from real facts, a missing fact raises, and none computes."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from jinja2 import nodes

from analysis.report.summaries import (
    ci,
    effect,
    environment,
    num,
    pvalue,
    render_summary,
    render_template,
)
from analysis.studies import STUDIES, get_study
from tests.conftest import ROOT

TEMPLATES = sorted(p.relative_to(ROOT / "templates").as_posix()
                   for p in (ROOT / "templates").rglob("*.j2"))


@pytest.fixture(scope="module")
def results(quick_runs):
    """Each study's quick result (computed once per session)."""
    return {name: run.result for name, run in quick_runs.items()}


@pytest.mark.parametrize("name", list(STUDIES))
def test_each_study_summary_renders(results, name):
    text = render_summary(results[name])
    assert len(text.split()) > 20
    assert "{{" not in text and "{%" not in text


@pytest.mark.parametrize("name", list(STUDIES))
def test_missing_fact_raises(results, name):
    result = results[name]
    template = get_study(name).SUMMARY_TEMPLATE
    facts = dict(result.facts)
    used = environment().parse(
        environment().loader.get_source(environment(), template)[0])
    needed = {n.name for n in used.find_all(nodes.Name) if n.ctx == "load"}
    assert needed, "a summary that uses no facts says nothing"
    for missing in sorted(needed & set(facts)):
        reduced = {k: v for k, v in facts.items() if k != missing}
        with pytest.raises(jinja2.UndefinedError, match=missing):
            render_template(template, reduced)


FORBIDDEN = (nodes.BinExpr, nodes.Compare, nodes.UnaryExpr, nodes.CondExpr)


@pytest.mark.parametrize("template", TEMPLATES)
def test_templates_do_no_arithmetic_or_comparisons(template):
    """Templates only format facts; judgements like 'significant' are facts too."""
    source = (ROOT / "templates" / template).read_text(encoding="utf-8")
    tree = environment().parse(source)
    bad = [type(n).__name__ for n in tree.find_all(FORBIDDEN) if not isinstance(n, nodes.Not)]
    assert not bad, f"{template} computes ({bad}); compute it in the study as a fact"


def test_filters_format_numbers():
    assert effect(0.1234) == "+0.123"
    assert effect(-0.0003, 4) == "−0.0003"
    assert ci(-0.0233, 0.0226) == "[−0.023, 0.023]"
    assert pvalue(0.979) == "p = 0.979" and pvalue(1e-6) == "p < 0.001"
    assert num(100836) == "100,836" and num(3.5, 1) == "3.5"
    env = environment()
    assert env.from_string("{{ x|pct }}").render(x=0.104) == "10.4%"


def test_book_summary_template_renders_sections():
    text = render_template("book_summary.md.j2", {
        "profile": "quick", "validation_sentence": "3 of 4 known answers were recovered.",
        "studies": [{"title": "T", "section": "sec-x", "synthetic": True, "simulation": False,
                     "body": "B"}]})
    assert "### T" in text and "@sec-x" in text and "synthetic" in text
    assert text.strip().endswith("3 of 4 known answers were recovered.")


def test_templates_dir_is_the_projects():
    loader = environment().loader
    assert isinstance(loader, jinja2.FileSystemLoader)
    assert Path(loader.searchpath[0]) == ROOT / "templates"
