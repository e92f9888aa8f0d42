"""The command line: run, summary, data status, and usage errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from analysis.cli import main
from tests.conftest import ROOT


def test_run_then_cached(capsys):
    assert main(["run", "--study", "data_overview"]) == 0
    first = capsys.readouterr()
    assert "| data_overview | computed" in first.out and "profile: quick" in first.out
    assert "studies" in first.err  # the progress bar
    assert main(["run", "--study", "data_overview"]) == 0
    assert "| data_overview | cached" in capsys.readouterr().out
    assert main(["run", "--study", "data_overview", "--refresh"]) == 0
    assert "| data_overview | computed" in capsys.readouterr().out


def test_summary(capsys):
    assert main(["summary", "--study", "data_overview"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## The MovieLens ratings") and "ratings by" in out


def test_data_status(capsys):
    assert main(["data", "status"]) == 0
    assert "| ml-latest-small" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    ([], "required"),
    (["bogus"], "invalid choice: 'bogus'"),
    (["run", "--study", "nope"], "invalid choice: 'nope'"),
    (["run", "--profile", "nope"], "Unknown profile 'nope'"),
    (["run", "--frobnicate"], "unrecognized arguments"),
    (["data", "fetch", "ml-2m"], "invalid choice: 'ml-2m'"),
    (["data"], "required"),
])
def test_usage_errors_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_config_error_exits_1(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "analysis.toml"
    bad.write_text("[studies.data_overview]\nsynthetic_users = -1\n")
    monkeypatch.setenv("ANALYSIS_CONFIG", str(bad))
    monkeypatch.setenv("ANALYSIS_PROFILE", "default")
    assert main(["run"]) == 1
    assert "error: 'synthetic_users'" in capsys.readouterr().err


def test_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "analysis", "nonsense"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "usage:" in proc.stderr
