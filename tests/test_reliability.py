"""Reliability: named data is used or the run stops, and a finished computation is never lost.

Every case here was reproduced on the code before the fix (issue 8) and fails there.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

import analysis.studies as studies
from analysis.cache import ResultCache, cache_key
from analysis.cli import main
from analysis.codehash import dependencies
from analysis.config import load_config
from analysis.data.fetch import fetch
from analysis.errors import CacheError, CacheWarning, DataError, FetchError
from analysis.runner import run_study
from tests.conftest import ROOT
from tests.fixtures import write_csv

ENV = "ANALYSIS_MOVIELENS_DIR"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with a small data_overview configuration."""
    cfg = tmp_path / "analysis.toml"
    cfg.write_text("[studies.data_overview]\nsynthetic_users = 20\nsynthetic_items = 100\n"
                   "synthetic_ratings = 800\n")
    monkeypatch.setenv("ANALYSIS_CONFIG", str(cfg))
    monkeypatch.setenv("ANALYSIS_PROFILE", "default")
    return tmp_path


# ---------------------------------------------------------------- no silent substitution


@pytest.mark.parametrize("case,match", [
    ("missing", r"\$ANALYSIS_MOVIELENS_DIR names .*nowhere.*does not exist.*unset it"),
    ("empty", r"\$ANALYSIS_MOVIELENS_DIR names .*empty.*holds no MovieLens files"),
    ("parent", r"holds no MovieLens files itself, but its subfolder\(s\) ml-latest-small do: "
               r"point at .*parent/ml-latest-small"),
    ("no-movies", r"Incomplete MovieLens folder .*movies.csv is missing"),
])
def test_a_named_folder_is_used_or_the_run_stops(project, monkeypatch, capsys, case, match):
    folder = {"missing": project / "nowhere", "empty": project / "empty",
              "parent": project / "parent", "no-movies": project / "ml"}[case]
    if case == "empty":
        folder.mkdir()
    if case == "parent":
        write_csv(folder / "ml-latest-small")
    if case == "no-movies":
        write_csv(folder)
        (folder / "movies.csv").unlink()
    monkeypatch.setenv(ENV, str(folder))
    with pytest.raises(DataError, match=match):
        run_study("data_overview", config=load_config())
    assert main(["run", "--study", "data_overview"]) == 1
    err = capsys.readouterr().err
    assert "never swaps named data for synthetic data" in err


def test_an_incomplete_data_raw_folder_stops_the_run(project):
    folder = write_csv(project / "data" / "raw" / "ml-latest-small")
    (folder / "ratings.csv").unlink()
    with pytest.raises(DataError, match=r"data/raw .*ratings.csv is missing.*data fetch "
                                        r"ml-latest-small --force"):
        run_study("data_overview", config=load_config())


def test_synthetic_only_when_nothing_is_named(project, capsys):
    assert main(["run", "--study", "data_overview"]) == 0
    assert "| synthetic-movielens | synthetic |" in capsys.readouterr().out


def test_data_status_shows_the_folder_in_use(project, monkeypatch, capsys):
    folder = write_csv(project / "my-ratings")
    monkeypatch.setenv(ENV, str(folder))
    assert main(["data", "status"]) == 0
    out = capsys.readouterr().out
    assert "| my-ratings" in out and "present" in out
    assert f"use: {folder} (from $ANALYSIS_MOVIELENS_DIR)" in out


def test_data_status_names_a_broken_named_folder(project, monkeypatch, capsys):
    monkeypatch.setenv(ENV, str(project / "typo"))
    assert main(["data", "status"]) == 1
    assert "does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------- the cache


@pytest.mark.parametrize("case", ["file", "under-a-file", "not-writable"])
def test_an_unusable_cache_stops_before_computing(project, monkeypatch, case):
    target = {"file": project / "cachefile", "under-a-file": project / "cachefile" / "sub",
              "not-writable": project / "ro"}[case]
    (project / "cachefile").write_text("not a folder")
    if case == "not-writable":
        target.mkdir()

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")
        monkeypatch.setattr("analysis.cache.tempfile.mkstemp", refuse)
    computed = []
    monkeypatch.setattr(studies, "get_study", _spy(computed))
    with pytest.raises(CacheError, match=r"result cache .* (is a file|cannot be written).*"
                                         r"ANALYSIS_CACHE_DIR"):
        run_study("data_overview", config=load_config(), cache=ResultCache(target))
    assert not computed, "the study ran although its result could not be stored"


def _spy(calls):
    real = studies.get_study

    def get_study(name):
        module = real(name)

        class Spy:
            def __getattr__(self, attr):
                if attr == "run":
                    calls.append(name)
                return getattr(module, attr)
        return Spy()
    return get_study


def test_a_failed_write_warns_and_keeps_the_result(project, monkeypatch):
    def broken(self, study, key, result, *, data):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(ResultCache, "put", broken)
    with pytest.warns(CacheWarning, match="No space left.*using it without caching"):
        run = run_study("data_overview", config=load_config(),
                        cache=ResultCache(project / "c"))
    assert not run.cached and run.result.facts["n_ratings"] > 0


def test_stale_temporaries_are_cleaned_and_fresh_ones_kept(project):
    cache = ResultCache(project / "c")
    cache.directory.mkdir()
    old, new = cache.directory / ".tmp-old.zip", cache.directory / ".tmp-new.zip"
    old.write_bytes(b"x")
    new.write_bytes(b"x")
    past = time.time() - 2 * 3600
    os.utime(old, (past, past))
    cache.check_writable()
    assert not old.exists() and new.exists()


def test_cache_list_and_prune(project, capsys):
    assert main(["run", "--study", "data_overview"]) == 0
    capsys.readouterr()
    assert main(["cache", "list"]) == 0
    out = capsys.readouterr().out
    assert "(1 entries)" in out and "| data_overview | synthetic-movielens" in out
    assert main(["cache", "prune", "--older-than", "1"]) == 0
    assert "removed 0 entries" in capsys.readouterr().out
    assert main(["cache", "prune"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert main(["cache", "list"]) == 0 and "(0 entries)" in capsys.readouterr().out


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_entries_get_the_umask_permissions(project, umask, mode):
    """A group-shared cache (umask 002) gets group-writable entries and a private one (077)
    private entries: a hard-coded 0o644 fails two of the three."""
    old = os.umask(umask)
    try:
        run = run_study("data_overview", config=load_config(), cache=ResultCache(project / "c"))
    finally:
        os.umask(old)
    (entry,) = (project / "c").glob("*.zip")
    assert stat.S_IMODE(entry.stat().st_mode) == mode and not run.cached


def test_the_key_depends_on_package_versions_and_dataset_name():
    base = cache_key("s", {}, "data", "code", dataset="a", packages={"lightgbm": "4.3"})
    assert base != cache_key("s", {}, "data", "code", dataset="a", packages={"lightgbm": "4.4"})
    assert base != cache_key("s", {}, "data", "code", dataset="b", packages={"lightgbm": "4.3"})


def test_upgrading_a_package_recomputes(project, monkeypatch):
    cache = ResultCache(project / "c")
    run_study("data_overview", config=load_config(), cache=cache)
    monkeypatch.setattr("analysis.cache.package_versions", lambda: {"lightgbm": "99.0"})
    assert not run_study("data_overview", config=load_config(), cache=cache).cached


def test_a_study_depends_only_on_modules_it_uses():
    deps = dependencies("analysis.studies.dowhy_recs")
    assert "analysis.data.movielens" not in deps and "analysis.data.synthetic" not in deps
    assert "analysis.data.movielens" in dependencies("analysis.studies.dml_genre")


def test_the_dataset_shown_is_the_one_used_now(project, monkeypatch):
    first = write_csv(project / "clean")
    second = project / "other"
    shutil.copytree(first, second)
    cache = ResultCache(project / "c")
    monkeypatch.setenv(ENV, str(first))
    assert run_study("data_overview", config=load_config(), cache=cache) \
        .result.provenance.dataset == "clean"
    monkeypatch.setenv(ENV, str(second))
    run = run_study("data_overview", config=load_config(), cache=cache)
    assert run.result.provenance.dataset == "other" and run.result.facts["dataset"] == "other"


def test_ctrl_c_prints_one_line(project, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr("analysis.runner._compute", interrupted)
    assert main(["run", "--study", "data_overview"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("interrupted: the run stopped; the result cache is intact")
    assert not any("Traceback" in line for line in err)


# ---------------------------------------------------------------- the command line


def test_running_before_installing_says_how_to_install():
    code = ("import sys; sys.modules['tqdm'] = None; sys.modules['tqdm.auto'] = None; "
            "import runpy; runpy.run_module('analysis', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code, "run"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 1
    assert "'tqdm' is not installed" in proc.stderr and "pip install -e ." in proc.stderr


def test_profile_and_its_source_come_first_and_misspelled_variables_are_named(project,
                                                                              monkeypatch,
                                                                              capsys):
    monkeypatch.delenv("ANALYSIS_PROFILE")
    monkeypatch.setenv("ANALYSIS_PROFIL", "quick")
    assert main(["run", "--study", "data_overview"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("profile: default (from the default (no --profile, "
                                   "$ANALYSIS_PROFILE unset))")
    assert "$ANALYSIS_PROFIL is set but analysis reads no such variable; did you mean " \
           "ANALYSIS_PROFILE?" in captured.err


def test_fetch_over_an_incomplete_folder_mentions_force(tmp_path, capsys):
    folder = write_csv(tmp_path / "raw" / "ml-latest-small")
    (folder / "movies.csv").unlink()
    with pytest.raises(FetchError, match=r"incomplete.*data fetch ml-latest-small --force"):
        fetch("ml-latest-small", tmp_path / "raw")


def test_a_server_that_never_answers_times_out(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)
    accepted = []
    threading.Thread(target=lambda: accepted.append(sock.accept()), daemon=True).start()
    # how long giving up takes is measured in benchmarks/bench_timeouts.py
    with pytest.raises(FetchError, match=r"timed out: the server sent nothing for 1 s"):
        fetch("ml-latest-small", tmp_path / "raw",
              base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=1.0)
    sock.close()
