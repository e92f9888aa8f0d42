"""The runner: warnings that matter become diagnostics, noise is dropped."""

from __future__ import annotations

import warnings

import pytest

import analysis.studies as studies
from analysis.config import load_config
from analysis.report.chapter import Chapter
from analysis.runner import run_study


@pytest.fixture
def fake(tmp_path, monkeypatch):
    monkeypatch.setitem(studies.STUDIES, "fake", "tests.fake_study")
    path = tmp_path / "analysis.toml"
    path.write_text("[studies.fake]\nn = 5\n")
    return load_config(path, profile="default")


def test_analysis_warnings_become_diagnostics(fake):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may leak out of the run
        run = run_study("fake", config=fake)
    (diag,) = run.result.diagnostics
    assert diag.topic == "OverlapWarning" and "propensities" in diag.message
    assert run.result.provenance.profile == "default"
    assert run.result.tidy()["estimate"].tolist() == [1.0]
    cached = run_study("fake", config=fake)
    assert cached.cached and cached.result.diagnostics == run.result.diagnostics


def test_chapter_shows_diagnostics_and_synthetic_callout(fake):
    ch = Chapter(run=run_study("fake", config=fake), config=fake)
    assert "callout-warning" in ch.diagnostics().data
    callout = ch.data_callout().data
    assert "Synthetic data" in callout and "+1.000" in callout


def test_unknown_study():
    with pytest.raises(KeyError, match="Unknown study 'nope'. Registered studies"):
        run_study("nope")
