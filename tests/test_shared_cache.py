"""A cache shared by several processes writing the same entries at once (issue 19).

Entries are written to a temporary file and moved into place with ``os.replace``; readers
must only ever see a missing entry or a complete, valid one, and no temporary file may be
left behind.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from analysis.cache import TMP_PREFIX, ResultCache
from analysis.config import load_config
from analysis.data.common import DataRef
from analysis.runner import run_study

STUDY = "data_overview"
ROUNDS = 15


def _writer_and_reader(args: tuple) -> list[str]:
    """Write the entry ``ROUNDS`` times, reading it back after each write."""
    directory, key, result, data = args
    cache = ResultCache(directory)
    problems = []
    for _ in range(ROUNDS):
        cache.put(STUDY, key, result, data=data)
        try:
            got = cache.get(STUDY, key, data=data)
        except Exception as exc:  # a torn or foreign read
            problems.append(f"{type(exc).__name__}: {exc}")
            continue
        if got is None or got.facts != result.facts:
            problems.append("entry missing or different while being rewritten")
    return problems


def test_concurrent_writers_never_tear_an_entry(tmp_path, monkeypatch):
    monkeypatch.delenv("ANALYSIS_MOVIELENS_DIR", raising=False)
    cfg = tmp_path / "analysis.toml"
    cfg.write_text(f"[studies.{STUDY}]\nsource = \"synthetic\"\nsynthetic_users = 20\n"
                   "synthetic_items = 100\nsynthetic_ratings = 800\n")
    directory = tmp_path / "shared"
    run = run_study(STUDY, config=load_config(cfg, profile="default"),
                    cache=ResultCache(directory))
    prov = run.result.provenance
    data = DataRef(prov.dataset, prov.source, prov.fingerprint)
    with mp.get_context("spawn").Pool(4) as pool:
        problems = pool.map(_writer_and_reader,
                            [(str(directory), run.key, run.result, data)] * 4)
    assert problems == [[]] * 4
    names = sorted(p.name for p in Path(directory).iterdir())
    assert names == [ResultCache(directory).path(STUDY, run.key).name]
    assert not any(n.startswith(TMP_PREFIX) for n in names)
    again = run_study(STUDY, config=load_config(cfg, profile="default"),
                      cache=ResultCache(directory))
    assert again.cached and again.result.facts == run.result.facts
