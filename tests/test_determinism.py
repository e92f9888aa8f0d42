"""Same numbers every run: every study's facts and tables are byte-identical across
processes with different hash seeds (set iteration order) and fresh caches."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from analysis.studies import STUDIES
from tests.conftest import ROOT

SCRIPT = """
import sys
from pathlib import Path
from analysis.cache import _encode
from analysis.config import load_config
from analysis.runner import run_study
out = Path(sys.argv[1])
config = load_config(profile="quick")
for name in sys.argv[2:]:
    result = run_study(name, config=config, refresh=True).result
    for member, data in _encode(result).items():
        if member in ("provenance.json", "diagnostics.json"):
            continue  # runtime and timestamps differ by design
        path = out / name / member
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
"""


@pytest.mark.slow
def test_every_study_is_byte_identical_across_processes(tmp_path, quick_runs):
    """The session's quick runs against a fresh process with another hash seed and an
    empty cache."""
    from analysis.cache import _encode

    env = {**os.environ, "PYTHONHASHSEED": "4242", "PYTHONPATH": str(ROOT),
           "ANALYSIS_CACHE_DIR": str(tmp_path / "cache"), "ANALYSIS_PROFILE": "quick"}
    env.pop("ANALYSIS_MOVIELENS_DIR", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "out"), *STUDIES],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == set(STUDIES)
    differ = []
    for name, run in quick_runs.items():
        here = {m: d for m, d in _encode(run.result).items()
                if m not in ("provenance.json", "diagnostics.json")}
        there = {str(p.relative_to(out / name)): p.read_bytes()
                 for p in (out / name).rglob("*") if p.is_file()}
        assert sorted(here) == sorted(there), name
        differ += [f"{name}/{m}" for m in here if here[m] != there[m]]
    assert not differ, f"differ between processes: {differ}"
