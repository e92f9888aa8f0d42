"""The parallel backends: identical numbers on serial, local processes and Dask; settings and
their errors; a dead worker retried; an unreachable scheduler named quickly."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from analysis import parallel
from analysis.config import load_config
from analysis.errors import ConfigError, ParallelError
from analysis.estimators.bootstrap import cluster_bootstrap
from analysis.estimators.coverage import coverage_simulation
from analysis.estimators.dml import PartiallyLinearDML
from analysis.estimators.gmethods import RidgeGComputation
from analysis.parallel import ParallelSettings, map_tasks, settings_from, task_seeds
from analysis.runner import run_studies

LOCAL = ParallelSettings(backend="local", workers=2)
DASK = ParallelSettings(backend="dask", address="local", workers=2)


def _draw(item: int, seed: int) -> tuple[int, float]:
    return item, float(np.random.default_rng(seed).standard_normal())


def _bootstrap_results():
    rng = np.random.default_rng(0)
    n, users = 3000, 300
    clusters = rng.integers(0, users, n)
    X = rng.standard_normal((n, 3))
    d = (rng.random(n) < 0.5).astype(float)
    y = X @ [1.0, -0.5, 0.2] + d + rng.standard_normal(n)
    boot = cluster_bootstrap(clusters, 600, seed=3)  # three blocks of replicates
    ridge = RidgeGComputation(alpha=1.0).fit(X, y, d)
    return {"sums": boot.sums(np.column_stack([y, d])), "mean": boot.mean(y),
            "ridge": ridge.bootstrap(X, y, d, boot)}


def _heavy_results():
    """A Monte Carlo coverage study, a bootstrap and repeated cross-fitting."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 4))
    d = X[:, 0] + rng.standard_normal(400)
    y = 0.5 * d + X[:, 1] + rng.standard_normal(400)
    plr = PartiallyLinearDML(n_folds=3, n_rep=4, seed=5).fit(X, y, d)
    return {"coverage": coverage_simulation(12, n_clusters=40, cluster_size=5, seed=11),
            **_bootstrap_results(), "thetas": plr.thetas_, "psi_b": plr.psi_b_}


def _assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], pd.DataFrame):
            pd.testing.assert_frame_equal(a[k], b[k], check_exact=True)
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)  # to the last bit


@pytest.fixture(scope="module")
def serial():
    return _heavy_results()


def test_task_seeds_depend_only_on_the_seed_and_the_index():
    assert task_seeds(7, 5) == task_seeds(7, 5)
    assert task_seeds(7, 5)[:3] == task_seeds(7, 3)  # adding tasks leaves earlier ones
    assert len(set(task_seeds(7, 1000))) == 1000
    assert map_tasks(_draw, range(4), seed=7) == [_draw(i, s) for i, s in
                                                  zip(range(4), task_seeds(7, 4), strict=True)]
    with pytest.raises(TypeError, match="exactly one of seed= and seeds="):
        map_tasks(_draw, [1], seed=1, seeds=[1])


def test_local_processes_give_identical_numbers(serial):
    with parallel.use(LOCAL):
        _assert_identical(serial, _heavy_results())


def test_dask_local_cluster_gives_identical_numbers(serial):
    with parallel.use(DASK):
        _assert_identical(serial, _heavy_results())


def test_progress_reports_every_task_on_every_backend():
    for s in (parallel.SERIAL, LOCAL, DASK):
        seen = []
        out = map_tasks(_draw, range(6), seed=3, settings=s, on_done=seen.append)
        assert sorted(seen) == list(range(6)) and [o[0] for o in out] == list(range(6))


def _weighted_total(data: np.ndarray, seed: int) -> float:
    return float(data @ np.random.default_rng(seed).random(len(data)))


def test_large_shared_data_is_shipped_once_and_batches_keep_the_order():
    """Many short tasks on one large array (shipped to the cluster once, then run in
    batches): the same numbers, in the same order, as one by one here."""
    data = np.random.default_rng(2).standard_normal(50_000)  # 400 kB, scattered
    expected = map_tasks(_weighted_total, [data] * 37, seed=9)
    for s in (LOCAL, DASK):
        seen = []
        assert map_tasks(_weighted_total, [data] * 37, seed=9, settings=s,
                         on_done=seen.append) == expected
        assert sorted(seen) == list(range(37))
    assert parallel.batches(37, 2) == [(i, min(i + 4, 37)) for i in range(0, 37, 4)]
    assert parallel.batches(6, 2) == [(i, i + 1) for i in range(6)]


def _die_once(item: tuple[str, int], seed: int) -> int:
    marker, value = item
    if value == 3 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)  # the worker process dies mid-task
    return value * 10


def test_a_worker_that_dies_is_replaced_and_its_task_retried(tmp_path):
    marker = str(tmp_path / "died")
    out = map_tasks(_die_once, [(marker, i) for i in range(6)], seed=0, settings=DASK)
    assert out == [0, 10, 20, 30, 40, 50]
    assert os.path.exists(marker)  # the task really did kill its first worker


def test_an_unreachable_scheduler_is_named():
    """How long it takes is measured in benchmarks/bench_timeouts.py, not asserted here."""
    s = ParallelSettings(backend="dask", address="tcp://127.0.0.1:9", connect_timeout=2)
    with pytest.raises(ParallelError, match=r"Could not reach a Dask scheduler at "
                                            r"tcp://127\.0\.0\.1:9 within 2 s.*dask scheduler"):
        map_tasks(_draw, range(3), seed=0, settings=s)


def test_settings_come_from_the_file_and_the_environment_wins():
    s = settings_from({"backend": "local", "workers": 3}, environ={})
    assert (s.backend, s.workers) == ("local", 3)
    s = settings_from({"backend": "local"}, environ={"ANALYSIS_PARALLEL": "dask",
                                                      "ANALYSIS_DASK_ADDRESS": "tcp://h:8786"})
    assert (s.backend, s.address) == ("dask", "tcp://h:8786")
    assert "scheduler tcp://h:8786" in s.describe()


@pytest.mark.parametrize(("section", "environ", "match"), [
    ({"backend": "spark"}, {}, r"'backend' in \[parallel\] is 'spark'; use one of 'serial'"),
    ({}, {"ANALYSIS_PARALLEL": "threads"}, r"\$ANALYSIS_PARALLEL is 'threads'; use one of"),
    ({}, {"ANALYSIS_WORKERS": "two"}, r"\$ANALYSIS_WORKERS is 'two'; use a whole number"),
    ({"workers": -1}, {}, r"'workers' in \[parallel\] is -1; use 0"),
    ({"nodes": 4}, {}, r"Unknown key\(s\) \['nodes'\] in \[parallel\]"),
    ({"connect_timeout": 0}, {}, r"'connect_timeout' .* positive number of seconds"),
])
def test_bad_parallel_settings_are_named(section, environ, match):
    with pytest.raises(ConfigError, match=match):
        settings_from(section, environ=environ)


def test_the_config_file_section_is_read_and_checked(tmp_path, monkeypatch):
    monkeypatch.delenv("ANALYSIS_PARALLEL", raising=False)
    path = tmp_path / "analysis.toml"
    path.write_text('[parallel]\nbackend = "local"\nworkers = 2\n')
    assert load_config(path, profile="default").parallel == ParallelSettings(backend="local",
                                                                             workers=2)
    path.write_text('[parallel]\nbackend = "mpi"\n')
    with pytest.raises(ConfigError, match="'backend' in \\[parallel\\] is 'mpi'"):
        load_config(path, profile="default")


def test_studies_computed_concurrently_equal_those_computed_one_by_one(tmp_path, monkeypatch):
    """Two studies at once on local worker processes: same facts and tables as serially."""
    from analysis.cache import ResultCache, _encode

    monkeypatch.delenv("ANALYSIS_MOVIELENS_DIR", raising=False)
    config = load_config(profile="quick")
    names = ["data_overview", "dowhy_recs"]
    serial = run_studies(names, config=config, cache=ResultCache(tmp_path / "a"))
    local = type(config)(path=config.path, profile=config.profile,
                         raw={**config.raw, "parallel": {"backend": "local", "workers": 2}})
    done = []
    both = run_studies(names, config=local, cache=ResultCache(tmp_path / "b"),
                       on_done=lambda name, cached: done.append((name, cached)))
    assert sorted(done) == [(n, False) for n in sorted(names)]
    for a, b in zip(serial, both, strict=True):
        ea, eb = _encode(a.result), _encode(b.result)
        for member in ea:
            if member not in ("provenance.json", "diagnostics.json"):
                assert ea[member] == eb[member], (a.name, member)
    again = run_studies(names, config=local, cache=ResultCache(tmp_path / "b"))
    assert all(r.cached for r in again)
