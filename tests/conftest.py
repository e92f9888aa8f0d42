"""Shared fixtures: an isolated result cache and the real MovieLens folder."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from analysis import parallel
from analysis.data.common import pinned_environ
from analysis.data.movielens import MOVIELENS_ENV

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    """Longest first: the Monte Carlo (``slow``) tests and the book's executions start
    before the short tests (stable order otherwise), so that the parallel test processes
    finish together instead of one waiting on a long test that started last."""
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None
                                 and item.get_closest_marker("book") is None))


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Every test gets the project's config, the quick profile and a fresh cache."""
    monkeypatch.setenv("ANALYSIS_CONFIG", str(ROOT / "analysis.toml"))
    monkeypatch.setenv("ANALYSIS_PROFILE", os.environ.get("ANALYSIS_TEST_PROFILE", "quick"))
    monkeypatch.setenv("ANALYSIS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    # Tests choose real data explicitly through the `movielens_dir` fixture.
    monkeypatch.delenv(MOVIELENS_ENV, raising=False)


@pytest.fixture(autouse=True)
def _slow_tests_on_every_core(request, monkeypatch):
    """``slow`` tests (Monte Carlo replications) run their tasks on worker processes, one
    per core: through :func:`analysis.parallel.use` for direct ``map_tasks`` calls and
    ``$ANALYSIS_PARALLEL`` for studies, which a test may still override.  The backends give
    the same numbers to the last bit (tests/test_parallel.py), so only the wall time
    changes; ``ANALYSIS_TEST_SERIAL=1`` keeps them in this process.  Under pytest-xdist
    (the default, one test process per core) the cores are already busy, so they stay
    serial there."""
    if (request.node.get_closest_marker("slow") is None
            or os.environ.get("PYTEST_XDIST_WORKER")
            or os.environ.get("ANALYSIS_TEST_SERIAL", "").strip() not in ("", "0")):
        yield
        return
    monkeypatch.setenv(parallel.BACKEND_ENV, "local")
    with parallel.use(parallel.ParallelSettings(backend="local")):
        yield


@pytest.fixture(scope="session")
def movielens_dir() -> Path:
    """The real ml-latest-small, from ``$ANALYSIS_TEST_MOVIELENS`` (set by .ci/run)."""
    env = os.environ.get("ANALYSIS_TEST_MOVIELENS")
    if not env:
        pytest.skip("set ANALYSIS_TEST_MOVIELENS to a real MovieLens folder "
                    "(.ci/run points it at ../shared/data/movielens/ml-latest-small)")
    path = Path(env)
    if not (path / "ratings.csv").is_file():
        pytest.fail(f"ANALYSIS_TEST_MOVIELENS={env} holds no ratings.csv")
    return path


@pytest.fixture(scope="session")
def quick_root(tmp_path_factory) -> Path:
    """One result cache (``<root>/cache``) for the whole test session: the quick runs and
    the executed chapters share it, as a render shares ``data/cache``, so each study is
    computed once per data source.

    ``$ANALYSIS_TEST_RESULTS_DIR`` (set by .ci/run) puts it at a known folder, so that the
    render stage after the tests reads the results from ``<folder>/cache``."""
    shared = os.environ.get("ANALYSIS_TEST_RESULTS_DIR")
    if shared:
        Path(shared).mkdir(parents=True, exist_ok=True)
        return Path(shared)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # pytest-xdist: the workers' temporary folders share this run's parent folder.
        root = tmp_path_factory.getbasetemp().parent / "quick-results"
        root.mkdir(exist_ok=True)
        return root
    return tmp_path_factory.mktemp("quick-results")


@contextlib.contextmanager
def _study_lock(path: Path, *, wait: bool) -> Iterator[bool]:
    """An exclusive lock on ``path`` between test processes (pytest-xdist workers); yields
    whether it was taken (always, when ``wait``).  Without ``fcntl`` (Windows) it is a no-op:
    the result cache's atomic writes keep concurrent computations of a study correct."""
    if fcntl is None:
        yield True
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class QuickRuns(Mapping):
    """Every registered study under the quick profile (synthetic data), computed on first
    use and kept for the session.

    Test processes share the cache under ``root``: a study is computed under a lock file,
    and a process that needs several studies first takes those no other process is
    computing, then waits for the rest and reads them from the cache, so the workers of a
    parallel test run share the work instead of repeating it."""

    def __init__(self, root: Path) -> None:
        from analysis.cache import ResultCache
        from analysis.config import load_config
        from analysis.studies import STUDIES

        self._root = root
        self._names = list(STUDIES)
        self._config = load_config(ROOT / "analysis.toml", profile="quick")
        self._cache = ResultCache(root / "cache")
        self._runs: dict[str, Any] = {}

    def __getitem__(self, name: str):
        if name not in self._names:
            raise KeyError(name)
        self.compute([name])
        return self._runs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def compute(self, names: list[str] | None = None) -> QuickRuns:
        """Compute (or read from the shared cache) ``names``, by default every study."""
        pending = [n for n in (self._names if names is None else names) if n not in self._runs]
        # No data named, whatever the test that first asks has set: synthetic data.
        with pinned_environ({}):
            while pending:
                # the studies no other process is computing, then wait for one of the rest
                pending = [n for n in pending if not self._run(n, wait=False)]
                if pending and self._run(pending[0], wait=True):
                    pending.pop(0)
        return self

    def _run(self, name: str, *, wait: bool) -> bool:
        """Run ``name`` under its lock (a cache read if another process computed it);
        whether the lock was taken."""
        from analysis.runner import run_study

        with _study_lock(self._root / "locks" / f"{name}.lock", wait=wait) as held:
            if held:
                self._runs[name] = run_study(name, config=self._config, cache=self._cache)
        return held


@pytest.fixture(scope="session")
def quick_runs(quick_root) -> QuickRuns:
    """Every registered study under the quick profile (synthetic data), computed once per
    test session (and shared between parallel test processes) for the modules that only
    read results; see :class:`QuickRuns`."""
    return QuickRuns(quick_root)
