"""Shared fixtures: an isolated result cache and the real MovieLens folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from analysis import parallel
from analysis.data.movielens import MOVIELENS_ENV

ROOT = Path(__file__).resolve().parents[1]


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
    return tmp_path_factory.mktemp("quick-results")


@pytest.fixture(scope="session")
def quick_runs(quick_root):
    """Every registered study under the quick profile, computed once per test session
    (synthetic data) and shared by the modules that only read results."""
    from analysis.cache import ResultCache
    from analysis.config import load_config
    from analysis.runner import run_study
    from analysis.studies import STUDIES

    saved = os.environ.pop(MOVIELENS_ENV, None)
    try:
        config = load_config(ROOT / "analysis.toml", profile="quick")
        cache = ResultCache(quick_root / "cache")
        return {name: run_study(name, config=config, cache=cache) for name in STUDIES}
    finally:
        if saved is not None:
            os.environ[MOVIELENS_ENV] = saved
