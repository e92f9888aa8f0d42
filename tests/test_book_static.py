"""Static checks of the Quarto book: structure, labels, cross-references, chapter contract."""

from __future__ import annotations

import ast
import re
from collections import Counter

import pytest
import yaml

from analysis.studies import STUDIES, get_study
from tests.qmd import ROOT, book_chapters, parse_chapter

CHAPTERS = book_chapters()
PARSED = {p: parse_chapter(p) for p in CHAPTERS if p.is_file()}
QUARTO = yaml.safe_load((ROOT / "_quarto.yml").read_text(encoding="utf-8"))


def test_every_listed_chapter_exists():
    assert CHAPTERS and CHAPTERS[0].name == "index.qmd"
    missing = [str(p.relative_to(ROOT)) for p in CHAPTERS if not p.is_file()]
    assert not missing, f"_quarto.yml lists missing chapters: {missing}"


def test_book_formats():
    assert QUARTO["project"]["type"] == "book"
    assert QUARTO["jupyter"] == "python3"
    fmts = QUARTO["format"]
    assert {"html", "typst"} <= set(fmts)
    for name in ("html", "typst"):
        assert fmts[name]["fig-format"] == "png", "SVG breaks the PDF; use PNG"
    assert fmts["html"]["code-fold"] is True


def test_labels_are_unique_and_well_formed():
    labels = [lab for ch in PARSED.values() for lab in ch.labels]
    dupes = [lab for lab, n in Counter(labels).items() if n > 1]
    assert not dupes, f"duplicate labels: {dupes}"
    bad = [lab for lab in labels if "_" in lab]
    assert not bad, f"labels may not contain underscores: {bad}"


def test_every_reference_resolves():
    labels = {lab for ch in PARSED.values() for lab in ch.labels}
    for ch in PARSED.values():
        unresolved = sorted(set(ch.refs) - labels)
        assert not unresolved, f"{ch.path.name}: unresolved references {unresolved}"


def test_every_figure_and_table_has_a_caption_and_is_referenced():
    refs = {r for ch in PARSED.values() for r in ch.refs}
    for ch in PARSED.values():
        for cell in ch.cells:
            label = cell.options.get("label", "")
            kind = label.split("-")[0]
            if kind in ("fig", "tbl"):
                assert cell.options.get(f"{kind}-cap"), f"{ch.path.name} {label}: no caption"
                assert label in refs, f"{ch.path.name} {label} is never referenced in prose"


def test_first_cell_is_hidden_setup():
    for ch in PARSED.values():
        if not ch.cells:
            continue
        first = ch.cells[0]
        assert first.options.get("include") == "false", f"{ch.path.name}: first cell not hidden"
        assert first.options.get("label", "").startswith("setup"), ch.path.name
        assert "setup_" in first.code


ALLOWED_CALLS = re.compile(r"^(ch|book|rep)\.")


@pytest.mark.parametrize("path", [p for p in CHAPTERS if p.is_file()], ids=lambda p: p.stem)
def test_chapters_only_call_analysis(path):
    """No estimation in a .qmd: imports only from `analysis`, no model fitting."""
    for cell in PARSED[path].cells:
        tree = ast.parse(cell.code)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            else:
                continue
            assert all(m.split(".")[0] == "analysis" for m in mods), \
                f"{path.name} line {cell.line}: imports {mods}; chapters only call analysis"
        assert ".fit(" not in cell.code, f"{path.name} line {cell.line} fits a model"


def test_every_study_has_its_chapter_in_the_book():
    listed = {p.relative_to(ROOT).as_posix() for p in CHAPTERS}
    for name in STUDIES:
        study = get_study(name)
        assert study.CHAPTER in listed, f"{name}: {study.CHAPTER} is not in _quarto.yml"
        assert (ROOT / "templates" / study.SUMMARY_TEMPLATE).is_file()
        section = f"sec-{name.replace('_', '-')}"
        assert section in PARSED[ROOT / study.CHAPTER].labels, \
            f"{study.CHAPTER} needs a heading with {{#{section}}} (the index links to it)"
        assert f'setup_chapter("{name}")' in PARSED[ROOT / study.CHAPTER].cells[0].code


def test_prose_has_one_sentence_per_line():
    for ch in PARSED.values():
        for line in ch.prose.splitlines():
            if line.startswith(("|", "#", ":::", "-", "*", ">")) or "`" in line:
                continue
            sentences = re.findall(r"[a-z0-9)][.!?] +[A-Z]", line)
            assert not sentences, f"{ch.path.name}: two sentences on one line: {line[:80]}"


def test_text_only_cells_hide_their_code():
    """A cell that emits text (summaries, callouts, paragraphs) shows no "Show the code" toggle;
    code folding is kept for figures and tables."""
    for ch in PARSED.values():
        for cell in ch.cells[1:]:
            kind = cell.options.get("label", "").split("-")[0]
            if kind not in ("fig", "tbl"):
                assert cell.options.get("echo") == "false", \
                    f"{ch.path.name} line {cell.line}: a text-only cell needs `#| echo: false`"
