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
def test_every_study_is_byte_identical_across_processes(tmp_path):
    procs = []
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT),
               "ANALYSIS_CACHE_DIR": str(tmp_path / f"cache-{seed}"),
               "ANALYSIS_PROFILE": "quick"}
        env.pop("ANALYSIS_MOVIELENS_DIR", None)
        procs.append(subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(tmp_path / seed), *STUDIES], env=env, cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=1800)
        assert p.returncode == 0, err[-2000:]
    first, second = tmp_path / "1", tmp_path / "4242"
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert {f.parts[0] for f in files} == set(STUDIES)
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    differ = [str(f) for f in files if (first / f).read_bytes() != (second / f).read_bytes()]
    assert not differ, f"differ between processes: {differ}"
