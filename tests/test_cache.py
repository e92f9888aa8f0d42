"""The result cache: hits, invalidation by code, config and data, corrupt and foreign entries."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest

import analysis.codehash as codehash
import analysis.runner as runner
from analysis.cache import ResultCache
from analysis.codehash import code_fingerprint, dependencies
from analysis.config import load_config
from analysis.data.common import DataRef
from analysis.errors import CacheError
from analysis.runner import run_study
from tests.conftest import ROOT
from tests.fixtures import write_csv

STUDY = "data_overview"


def write_config(tmp_path, body: str = "", source: str = "synthetic"):
    path = tmp_path / "analysis.toml"
    path.write_text(f"[studies.{STUDY}]\nsource = \"{source}\"\nsynthetic_users = 60\n"
                    f"synthetic_items = 400\nsynthetic_ratings = 3000\n{body}")
    return path


@pytest.fixture
def cfg(tmp_path):
    return load_config(write_config(tmp_path), profile="default")


@pytest.fixture
def cache(tmp_path):
    return ResultCache(tmp_path / "cache")


def test_second_run_is_a_hit(cfg, cache):
    first = run_study(STUDY, config=cfg, cache=cache)
    second = run_study(STUDY, config=cfg, cache=cache)
    assert not first.cached and second.cached
    assert first.key == second.key
    assert second.result.facts == first.result.facts
    for name, table in first.result.tables.items():
        assert second.result.table(name).equals(table)
    assert second.result.provenance == first.result.provenance


def test_refresh_forces_recompute(cfg, cache):
    run_study(STUDY, config=cfg, cache=cache)
    assert not run_study(STUDY, config=cfg, cache=cache, refresh=True).cached


def test_config_change_invalidates(tmp_path, cfg, cache):
    first = run_study(STUDY, config=cfg, cache=cache)
    (tmp_path / "b").mkdir()
    other = load_config(write_config(tmp_path / "b", "seed = 99\n"), profile="default")
    rerun = run_study(STUDY, config=other, cache=cache)
    assert not rerun.cached and rerun.key != first.key
    assert run_study(STUDY, config=cfg, cache=cache).cached  # the old entry is still valid


def test_data_change_invalidates(tmp_path, cache):
    folder = write_csv(tmp_path / "ml")
    cfg = load_config(write_config(tmp_path, f'path = "{folder}"\n', source="real"),
                      profile="default")
    first = run_study(STUDY, config=cfg, cache=cache)
    assert run_study(STUDY, config=cfg, cache=cache).cached
    with (folder / "ratings.csv").open("a") as fh:
        fh.write("3,10,1.0,964990000\n")
    again = run_study(STUDY, config=cfg, cache=cache)
    assert not again.cached and again.key != first.key
    assert again.result.facts["n_ratings"] == first.result.facts["n_ratings"] + 1


def test_code_change_invalidates(cfg, cache, monkeypatch):
    assert not run_study(STUDY, config=cfg, cache=cache).cached
    monkeypatch.setattr(runner, "code_fingerprint", lambda module: "changed code")
    assert not run_study(STUDY, config=cfg, cache=cache).cached


def test_code_fingerprint_tracks_exactly_the_imported_modules(tmp_path, monkeypatch):
    deps = dependencies("analysis.studies.data_overview")
    assert "analysis.data.synthetic" in deps and "analysis.features.genres" in deps
    assert not any(d.startswith("analysis.report") for d in deps)
    copy = tmp_path / "analysis"
    shutil.copytree(ROOT / "analysis", copy)
    monkeypatch.setattr(codehash, "PACKAGE_DIR", copy)
    before = code_fingerprint("analysis.studies.data_overview")
    (copy / "report" / "style.py").write_text("# a change the study does not import\n")
    with (copy / "studies" / "__init__.py").open("a") as fh:
        fh.write("\n# listing another study changes no result\n")
    assert code_fingerprint("analysis.studies.data_overview") == before
    with (copy / "data" / "synthetic.py").open("a") as fh:
        fh.write("\n# a change the study depends on\n")
    assert code_fingerprint("analysis.studies.data_overview") != before


def _data(run):
    """The data reference a run's result was computed on (from its provenance)."""
    prov = run.result.provenance
    return DataRef(prov.dataset, prov.source, prov.fingerprint)


def _entry(cache):
    (path,) = cache.directory.glob(f"{STUDY}-*.zip")
    return path


def test_corrupt_entry_is_recomputed(cfg, cache):
    run_study(STUDY, config=cfg, cache=cache)
    path = _entry(cache)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.warns(UserWarning, match="not a readable zip.*Recomputing"):
        run = run_study(STUDY, config=cfg, cache=cache)
    assert not run.cached
    assert run_study(STUDY, config=cfg, cache=cache).cached  # rewritten and valid


def test_tampered_member_is_detected(cfg, cache):
    first = run_study(STUDY, config=cfg, cache=cache)
    path = _entry(cache)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["facts.json"] = members["facts.json"].replace(b"synthetic", b"synthetiK")
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    with pytest.raises(CacheError, match="checksum mismatch in facts.json"):
        cache.get(STUDY, first.key, data=_data(first))
    with pytest.warns(UserWarning, match="checksum mismatch"):
        assert not run_study(STUDY, config=cfg, cache=cache).cached


def test_foreign_entry_is_not_trusted(cfg, cache, tmp_path):
    first = run_study(STUDY, config=cfg, cache=cache)
    foreign = "f" * 64
    shutil.copy(_entry(cache), cache.path(STUDY, foreign))
    with pytest.raises(CacheError, match="belongs to another key"):
        cache.get(STUDY, foreign, data=_data(first))
    cache.path(STUDY, foreign).write_text("not a zip at all")
    with pytest.raises(CacheError, match="not a readable zip"):
        cache.get(STUDY, foreign, data=_data(first))
    assert cache.get(STUDY, first.key, data=_data(first)) is not None


def test_crash_mid_write_leaves_no_entry(cfg, cache, monkeypatch):
    run = run_study(STUDY, config=cfg, cache=cache)
    cache.discard(STUDY, run.key)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", boom)
    with pytest.raises(KeyboardInterrupt):
        cache.put(STUDY, run.key, run.result, data=_data(run))
    assert cache.get(STUDY, run.key, data=_data(run)) is None
    assert list(cache.directory.iterdir()) == []  # no temp file left behind


def test_profile_changes_the_key(cache):
    cfg_default = load_config(ROOT / "analysis.toml", profile="default")
    cfg_quick = load_config(ROOT / "analysis.toml", profile="quick")
    assert runner.study_key(STUDY, cfg_default) != runner.study_key(STUDY, cfg_quick)


def test_put_refuses_a_result_of_other_data(cfg, cache):
    """The cache stores a result only under the key of the data it was computed on: a
    worker that simulated while the run named real data cannot poison the cache."""
    run = run_study(STUDY, config=cfg, cache=cache)
    cache.discard(STUDY, run.key)
    named = DataRef("ml-latest-small", "real", "a" * 64)
    with pytest.raises(CacheError, match="was computed on synthetic-movielens.*"
                                         "but the run named ml-latest-small.*every worker"):
        cache.put(STUDY, run.key, run.result, data=named)
    assert list(cache.directory.glob("*.zip")) == []


def test_get_checks_the_data_of_the_entry(cfg, cache):
    """A read names the data it resolved; an entry of other data is refused, and the
    runner recomputes (an entry written before this check was added is refused too)."""
    run = run_study(STUDY, config=cfg, cache=cache)
    named = DataRef("ml-latest-small", "real", "a" * 64)
    with pytest.raises(CacheError, match="records other data"):
        cache.get(STUDY, run.key, data=named)
    path = _entry(cache)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(members["meta.json"])
    del meta["data"]
    members["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    with pytest.raises(CacheError, match="does not say which data"):
        cache.get(STUDY, run.key, data=_data(run))
    with pytest.warns(UserWarning, match="does not say which data.*Recomputing"):
        assert not run_study(STUDY, config=cfg, cache=cache).cached
