"""README claims about interruption, shipping and backends, each checked (issue 19).

* "Ctrl-C … leaves the cache intact": an existing entry survives an interrupted
  recomputation and an interrupted write, byte for byte; an interrupted Dask loop cancels
  the rest of its tasks on the cluster.
* "Dask therefore ships [the slates] to the cluster once": the scatter calls are counted.
* "identical on every backend": a whole quick study on a Dask ``LocalCluster`` of
  processes gives the same bytes as serially; multi-task batches of a real estimator.
"""

from __future__ import annotations

import time
import zipfile

import numpy as np
import pandas as pd
import pytest

import analysis.runner as runner
from analysis import parallel
from analysis.cache import ResultCache, _encode
from analysis.config import load_config
from analysis.estimators.coverage import coverage_simulation
from analysis.parallel import ParallelSettings, map_tasks
from tests.conftest import ROOT

DASK = ParallelSettings(backend="dask", address="local", workers=2)
LOCAL = ParallelSettings(backend="local", workers=2)
STUDY = "data_overview"


@pytest.fixture
def cached_entry(tmp_path, monkeypatch):
    """An existing, valid cache entry of a quick study, and its bytes."""
    monkeypatch.delenv("ANALYSIS_MOVIELENS_DIR", raising=False)
    config = load_config(ROOT / "analysis.toml", profile="quick")
    cache = ResultCache(tmp_path / "cache")
    run = runner.run_study(STUDY, config=config, cache=cache)
    path = cache.path(STUDY, run.key)
    return config, cache, path, path.read_bytes()


def test_ctrl_c_during_a_recomputation_leaves_the_existing_entry(cached_entry, monkeypatch):
    config, cache, path, before = cached_entry

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_compute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.run_study(STUDY, config=config, cache=cache, refresh=True)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert runner.run_study(STUDY, config=config, cache=cache).cached


def test_ctrl_c_while_writing_over_an_entry_leaves_it(cached_entry, monkeypatch):
    config, cache, path, before = cached_entry
    writes = []
    writestr = zipfile.ZipFile.writestr

    def interrupted_after_one_member(self, *args, **kwargs):
        if writes:
            raise KeyboardInterrupt
        writes.append(args[0])
        return writestr(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", interrupted_after_one_member)
    with pytest.raises(KeyboardInterrupt):
        runner.run_study(STUDY, config=config, cache=cache, refresh=True)
    monkeypatch.undo()
    assert writes  # the write had begun
    assert path.read_bytes() == before
    assert sorted(p.name for p in cache.directory.iterdir()) == [path.name]  # no temp file
    assert runner.run_study(STUDY, config=config, cache=cache).cached


def _slow_task(item: tuple[str, int], seed: int) -> int:
    folder, i = item
    with open(f"{folder}/started-{i}", "w"):
        pass
    time.sleep(1.0)
    return i


def _scheduler_tasks(dask_scheduler) -> int:
    return len(dask_scheduler.tasks)


@pytest.mark.slow
def test_ctrl_c_cancels_the_dask_tasks(tmp_path):
    """An interrupt in the running process (here raised from the progress callback after
    the first task) cancels every task still queued on the cluster."""
    n = 12

    def interrupt(i):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        map_tasks(_slow_task, [(str(tmp_path), i) for i in range(n)], seed=0, settings=DASK,
                  on_done=interrupt)
    client = parallel.dask_client(DASK)
    deadline = time.monotonic() + 30
    while client.run_on_scheduler(_scheduler_tasks) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.run_on_scheduler(_scheduler_tasks) == 0  # nothing left queued or running
    time.sleep(2.0)
    started = len(list(tmp_path.glob("started-*")))
    assert started < n  # the queued tasks never ran


def _weighted_total(item, seed: int) -> float:
    data = item[0] if isinstance(item, tuple) else item
    return float(data @ np.random.default_rng(seed).random(len(data)))


@pytest.mark.slow
def test_dask_ships_a_shared_object_to_the_cluster_once(monkeypatch):
    """The interference Monte Carlo passes one ``(slates, model, levels)`` tuple as every
    task's item; a large object passed as many items is scattered once, small ones never."""
    client = parallel.dask_client(DASK)
    calls: list[int] = []
    scatter = client.scatter

    def counted(data, *args, **kwargs):
        calls.append(len(data))
        return scatter(data, *args, **kwargs)

    monkeypatch.setattr(client, "scatter", counted)
    rng = np.random.default_rng(2)
    slates = (rng.standard_normal(50_000), "model", (0.2, 0.8))  # 400 kB, one object
    other = rng.standard_normal(40_000)
    items = [slates] * 30 + [other] * 7
    expected = map_tasks(_weighted_total, items, seed=9)  # serially, here
    assert map_tasks(_weighted_total, items, seed=9, settings=DASK) == expected
    assert calls == [1, 1]  # one scatter of one object for each shared object
    calls.clear()
    small = [np.arange(10.0)] * 20
    map_tasks(_weighted_total, small, seed=1, settings=DASK)
    assert calls == []  # small shared items travel with their tasks


@pytest.mark.slow
@pytest.mark.parametrize("settings", [LOCAL, DASK], ids=["local", "dask"])
def test_multi_task_batches_of_a_real_estimator_are_identical(settings):
    """40 cross-fitted DML replications on 2 workers run in batches of 5 tasks."""
    assert any(hi - lo > 1 for lo, hi in parallel.batches(40, 2))
    args = {"n_clusters": 20, "cluster_size": 5, "seed": 11}
    serial = coverage_simulation(40, **args)
    with parallel.use(settings):
        other = coverage_simulation(40, **args)
    pd.testing.assert_frame_equal(serial, other, check_exact=True)


@pytest.mark.slow
def test_a_whole_study_on_a_dask_cluster_gives_the_serial_bytes(tmp_path, monkeypatch):
    """The DML study (its coverage loop, repetitions and bootstrap go to the cluster) on
    a LocalCluster of processes: every table and fact byte-identical to the serial run."""
    monkeypatch.delenv("ANALYSIS_MOVIELENS_DIR", raising=False)
    name = "dml_genre"
    config = load_config(ROOT / "analysis.toml", profile="quick")
    serial = runner.run_study(name, config=config, cache=ResultCache(tmp_path / "a"))
    monkeypatch.setenv("ANALYSIS_PARALLEL", "dask")
    monkeypatch.setenv("ANALYSIS_DASK_ADDRESS", "local")
    monkeypatch.setenv("ANALYSIS_WORKERS", "2")
    on_dask = load_config(ROOT / "analysis.toml", profile="quick")
    assert on_dask.parallel.backend == "dask"
    dask = runner.run_study(name, config=on_dask, cache=ResultCache(tmp_path / "b"))
    assert dask.key == serial.key  # the backend is not part of the key
    a, b = _encode(serial.result), _encode(dask.result)
    assert a.keys() == b.keys()
    for member in a:
        if member != "provenance.json":  # holds the run time and the creation time
            assert a[member] == b[member], member
