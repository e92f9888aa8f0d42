"""The CI render stage's checks (.ci/check_pdf.py) and its skip when Quarto's tools are absent."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import yaml

from tests.conftest import ROOT


def _check_pdf():
    spec = importlib.util.spec_from_file_location("check_pdf", ROOT / ".ci" / "check_pdf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_listed_chapter_is_checked():
    config = yaml.safe_load((ROOT / "_quarto.yml").read_text())
    files = _check_pdf().chapter_files(config)
    assert files[0] == "index.qmd" and "chapters/validation.qmd" in files
    assert all((ROOT / f).is_file() for f in files)


def test_missing_pages_and_pdfs_are_named(tmp_path: Path):
    (tmp_path / "_quarto.yml").write_text(yaml.safe_dump({
        "project": {"output-dir": "_book"},
        "book": {"output-file": "b", "chapters": ["index.qmd", {"part": "P", "chapters":
                                                               ["chapters/a.qmd"]}],
                 "appendices": ["chapters/z.qmd"]}}))
    (tmp_path / "_book" / "chapters").mkdir(parents=True)
    (tmp_path / "_book" / "index.html").write_text("<html></html>")
    (tmp_path / "_book" / "chapters" / "a.html").write_text("<html></html>")
    wrong = _check_pdf().problems(tmp_path)
    assert wrong == ["missing page _book/chapters/z.html", "missing book PDF _book/b.pdf",
                     "missing handout handout/_output/handout.pdf"]


def test_render_stage_skips_without_the_quarto_tool(tmp_path: Path):
    # a copy of the repository's .ci with nothing beside it: the stage notes and skips
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    (repo / ".ci" / "render").write_text((ROOT / ".ci" / "render").read_text())
    out = subprocess.run(["bash", str(repo / ".ci" / "render")], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0
    assert "skipping the real-Quarto render stage" in out.stderr
