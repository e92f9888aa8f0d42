"""A real Dask cluster never swaps the data (issue 19).

A ``dask scheduler`` and ``dask worker … --nthreads 1 --nworkers 2`` are started as a user
of the README would, from another folder and with another environment than the process
running the book (no ``ANALYSIS_*`` variable at all).  Before the fix, a study computed as a
task read ``$ANALYSIS_MOVIELENS_DIR`` from the worker's environment (unset), found nothing
named and simulated: ``data_overview | computed | synthetic-movielens``, and that result
was cached under the key of the real data.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import analysis.runner as runner
from analysis.cache import ResultCache
from analysis.config import load_config
from analysis.data.movielens import MOVIELENS_ENV, movielens_ref
from analysis.errors import DataError
from analysis.parallel import close_clients
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

STUDIES = ["data_overview", "forest_pricing"]  # two studies, so that studies become tasks
CONFIG = """\
[studies.data_overview]
source = "auto"

[studies.forest_pricing]
n_customers = 500
n_trees = 20
n_boot = 50
tree_leaf = 20
coverage_reps = 0
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two single-threaded workers with a bare environment and another
    working directory: they know where the code is (PYTHONPATH) and nothing else."""
    bin_dir = Path(sys.executable).parent
    home = tmp_path_factory.mktemp("worker-home")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": str(ROOT)}
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [str(bin_dir / "dask")] if (bin_dir / "dask").exists() else [
        sys.executable, "-m", "distributed.cli.dask_spec"]
    log = (home / "cluster.log").open("w")
    procs = [subprocess.Popen([*dask, "scheduler", "--port", str(port), "--no-dashboard"],
                              env=env, cwd=home, stdout=log, stderr=log)]
    try:
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or procs[0].poll() is not None:
                    pytest.fail("dask scheduler did not start: "
                                f"{(home / 'cluster.log').read_text()}")
                time.sleep(0.5)
        procs.append(subprocess.Popen(
            [*dask, "worker", address, "--nthreads", "1", "--nworkers", "2", "--no-dashboard"],
            env=env, cwd=home, stdout=log, stderr=log))
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        close_clients()
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()


@pytest.fixture
def on_cluster(cluster, tmp_path, monkeypatch):
    """The book's process: real MovieLens named by the environment, dask at ``cluster``."""
    path = tmp_path / "analysis.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("ANALYSIS_PARALLEL", "dask")
    monkeypatch.setenv("ANALYSIS_DASK_ADDRESS", cluster)
    return load_config(path, profile="default")


def _copy(movielens_dir: Path, where: Path) -> Path:
    folder = where / "ml-latest-small"
    shutil.copytree(movielens_dir, folder)
    return folder


def test_workers_compute_on_the_named_data_and_the_cache_holds_it(
        on_cluster, movielens_dir, tmp_path, monkeypatch):
    """Fails before the fix: the worker simulated (``synthetic-movielens``) and the serial
    run that followed read that synthetic result from the cache."""
    monkeypatch.setenv(MOVIELENS_ENV, str(movielens_dir))
    cache = ResultCache(tmp_path / "cache")
    runs = runner.run_studies(STUDIES, config=on_cluster, cache=cache)
    overview = runs[0].result.provenance
    assert not runs[0].cached
    assert (overview.dataset, overview.source) == ("ml-latest-small", "real")
    assert overview.fingerprint == movielens_ref(movielens_dir).fingerprint
    monkeypatch.setenv("ANALYSIS_PARALLEL", "serial")
    serial = load_config(on_cluster.path, profile="default")
    again = runner.run_study("data_overview", config=serial, cache=cache)
    assert again.cached and again.result.provenance.source == "real"
    assert again.result.facts == runs[0].result.facts


def _after_resolving(monkeypatch, change):
    """Change the disk after the running process resolved the data and before a worker
    reads it: the worker then sees what a worker with another disk would see."""
    resolve = runner.study_data

    def resolved_then_changed(name, config):
        ref = resolve(name, config)
        if name == "data_overview":
            change()
        return ref

    monkeypatch.setattr(runner, "study_data", resolved_then_changed)


def test_a_worker_without_the_data_stops_the_run(on_cluster, movielens_dir, tmp_path,
                                                 monkeypatch):
    folder = _copy(movielens_dir, tmp_path)
    monkeypatch.setenv(MOVIELENS_ENV, str(folder))
    _after_resolving(monkeypatch, lambda: folder.rename(tmp_path / "elsewhere"))
    cache = ResultCache(tmp_path / "cache")
    with pytest.raises(DataError, match=r"Dask worker tcp://127\.0\.0\.1:\d+ cannot read "
                       rf"data_overview's data ml-latest-small at {folder}.*"
                       r"readable at that same path on every worker.*ANALYSIS_PARALLEL=serial"):
        runner.run_studies(STUDIES, config=on_cluster, cache=cache)
    assert not list(cache.directory.glob("data_overview-*.zip"))


def test_a_worker_with_other_data_at_the_path_stops_the_run(on_cluster, movielens_dir,
                                                            tmp_path, monkeypatch):
    folder = _copy(movielens_dir, tmp_path)
    monkeypatch.setenv(MOVIELENS_ENV, str(folder))

    def other_copy():
        with (folder / "ratings.csv").open("a") as fh:
            fh.write("1,1,4.0,964982703\n")

    _after_resolving(monkeypatch, other_copy)
    cache = ResultCache(tmp_path / "cache")
    with pytest.raises(DataError, match=r"Dask worker .* cannot read data_overview's data "
                       r"ml-latest-small at .*it resolves ml-latest-small \(real, at .*\) "
                       r"instead.*same path on every worker"):
        runner.run_studies(STUDIES, config=on_cluster, cache=cache)
    assert not list(cache.directory.glob("data_overview-*.zip"))


def test_the_task_carries_the_environment_not_the_worker(tmp_path, movielens_dir,
                                                         monkeypatch):
    """Without a cluster: a task resolves data from the environment it carries, with
    relative and ``~`` folders made absolute in the running process."""
    from analysis.data.common import environ_snapshot

    monkeypatch.chdir(movielens_dir.parent)
    monkeypatch.setenv(MOVIELENS_ENV, movielens_dir.name)
    config = load_config(ROOT / "analysis.toml", profile="quick")
    data = runner.study_data("data_overview", config)
    task = runner.StudyTask("data_overview", config, data, tuple(environ_snapshot().items()))
    assert dict(task.environ)[MOVIELENS_ENV] == str(movielens_dir.absolute())
    monkeypatch.delenv(MOVIELENS_ENV)
    monkeypatch.chdir(tmp_path)
    result, _ = runner._compute_task(task, 0)
    assert result.provenance.fingerprint == data.fingerprint
    assert os.environ.get(MOVIELENS_ENV) is None
