"""Run studies through the result cache.

:func:`run_study` resolves a study's settings and data, computes the cache key
(settings, data fingerprint, the study's code) and either reads the cached
result or computes and stores a fresh one.  Library deprecation noise raised
while computing is dropped; :class:`~analysis.errors.AnalysisWarning` s become
the result's diagnostics, so the chapter can show them.

:func:`run_studies` may compute studies on other processes or machines (the ``local``
and ``dask`` backends).  Every data reference (the study's ``path``, the ``ANALYSIS_*``
variables, the project's ``data/raw``) is resolved here, in the process that runs the
book, and sent with the task (:class:`StudyTask`); the worker resolves the same
references, must find the same data (same name, source and fingerprint), and otherwise
stops the run with a :class:`~analysis.errors.DataError` naming the worker, the path and
the fix.  The cache stores a result only under the key of the data it was computed on.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from analysis import parallel
from analysis.cache import CACHE_ENV, ResultCache, cache_key
from analysis.codehash import code_fingerprint
from analysis.config import BookConfig, load_config
from analysis.data.common import DataRef, environ_snapshot, pinned_environ
from analysis.errors import AnalysisWarning, CacheError, CacheWarning, DataError
from analysis.result import Diagnostic, StudyResult
from analysis.studies import STUDIES, get_study


@dataclass(frozen=True)
class StudyRun:
    """One study's result and how it was obtained.

    Attributes
    ----------
    name : str
    result : StudyResult
    cached : bool
        True if read from the cache, False if computed now.
    seconds : float
        Wall time of this call (a cache read or the computation).
    key : str
        The cache key.
    """

    name: str
    result: StudyResult
    cached: bool
    seconds: float
    key: str


def default_cache(config: BookConfig) -> ResultCache:
    """``$ANALYSIS_CACHE_DIR`` if set, else ``data/cache`` under the project root."""
    env = os.environ.get(CACHE_ENV)
    return ResultCache(Path(env) if env else config.root / "data" / "cache")


def study_data(name: str, config: BookConfig) -> DataRef:
    """The data ``name`` runs on under ``config``, resolved in this process."""
    return get_study(name).data_ref(config.study(name), config.root)


def study_key(name: str, config: BookConfig, data: DataRef | None = None) -> str:
    """The cache key of ``name`` under ``config``'s profile (see :func:`cache_key`)."""
    study = get_study(name)
    settings = config.study(name)
    ref = data or study_data(name, config)
    return cache_key(name, settings.as_dict(), ref.fingerprint, code_fingerprint(study.__name__),
                     dataset=ref.name)


@dataclass(frozen=True)
class StudyTask:
    """One study to compute elsewhere, with every data reference resolved here.

    Attributes
    ----------
    name : str
    config : BookConfig
    data : DataRef
        The data this process resolved (the cache key is computed from it).
    environ : tuple of (str, str)
        This process's ``ANALYSIS_*`` variables: the worker resolves data locations from
        them, never from its own environment.
    """

    name: str
    config: BookConfig
    data: DataRef
    environ: tuple[tuple[str, str], ...]


def run_study(name: str, *, config: BookConfig | None = None, profile: str | None = None,
              refresh: bool = False, cache: ResultCache | None = None) -> StudyRun:
    """Return a study's result, from the cache when it is current.

    Parameters
    ----------
    name : str
        A registered study.
    config : BookConfig, optional
        Parsed configuration; loaded with :func:`load_config` when omitted.
    profile : str, optional
        Profile, when ``config`` is omitted.
    refresh : bool
        Recompute even if a current entry exists.
    cache : ResultCache, optional
        Defaults to :func:`default_cache`.
    """
    config = config or load_config(profile=profile)
    cache = cache or default_cache(config)
    started = time.perf_counter()
    data = study_data(name, config)
    key = study_key(name, config, data)
    hit = None if refresh else _cached(name, key, data, cache, started)
    if hit is not None:
        return hit
    cache.check_writable()  # fail before hours of computing, not after
    return _computed(name, config, cache, key, data, started)


def _cached(name: str, key: str, data: DataRef, cache: ResultCache,
            started: float) -> StudyRun | None:
    """The cached run, or None (a corrupt entry, or one of other data, is reported and
    recomputed)."""
    try:
        hit = cache.get(name, key, data=data)
    except CacheError as exc:
        warnings.warn(f"{exc} Recomputing.", stacklevel=3)
        return None
    return None if hit is None else StudyRun(name, hit, True, time.perf_counter() - started,
                                             key)


def _computed(name: str, config: BookConfig, cache: ResultCache, key: str, data: DataRef,
              started: float) -> StudyRun:
    result = _compute(name, config)
    _store(name, key, data, result, cache)
    return StudyRun(name, result, False, time.perf_counter() - started, key)


def _store(name: str, key: str, data: DataRef, result: StudyResult,
           cache: ResultCache) -> None:
    try:
        cache.put(name, key, result, data=data)
    except OSError as exc:  # the result in hand is never thrown away
        warnings.warn(f"Could not store {name}'s result in the cache {cache.directory} "
                      f"({exc.strerror or exc}); using it without caching. Point "
                      f"${CACHE_ENV} at a writable folder to keep results.", CacheWarning,
                      stacklevel=3)


def run_studies(names: list[str] | None = None, *, config: BookConfig | None = None,
                profile: str | None = None, refresh: bool = False,
                cache: ResultCache | None = None,
                on_done: Callable[[str, bool], None] | None = None) -> list[StudyRun]:
    """Run several studies (all registered ones by default); results in book order.

    Studies whose result is cached are read first.  The rest are computed one after
    another on the serial backend, and concurrently, one study per task (each running its
    own loops serially), on the ``local`` or ``dask`` backend; ``on_done(name, cached)`` is
    called as each study finishes.
    """
    config = config or load_config(profile=profile)
    cache = cache or default_cache(config)
    names = names or list(STUDIES)
    data = {name: study_data(name, config) for name in names}
    keys = {name: study_key(name, config, data[name]) for name in names}
    runs: dict[str, StudyRun] = {}
    todo = []
    for name in names:
        hit = None if refresh else _cached(name, keys[name], data[name], cache,
                                           time.perf_counter())
        if hit is not None:
            runs[name] = hit
            if on_done:
                on_done(name, True)
        else:
            todo.append(name)
    if todo:
        cache.check_writable()
    if config.parallel.backend == "serial" or len(todo) <= 1:
        for name in todo:
            runs[name] = _computed(name, config, cache, keys[name], data[name],
                                   time.perf_counter())
            if on_done:
                on_done(name, False)
    else:
        # the workers compute on the data resolved here; this process writes the cache (a
        # cluster's workers may not see this machine's disk).  Studies carry their own seeds
        # in their settings, so the task seeds are spawned but unused.
        env = tuple(environ_snapshot().items())
        tasks = [StudyTask(n, config, data[n], env) for n in todo]
        computed = parallel.map_tasks(
            _compute_task, tasks, seed=0, settings=config.parallel,
            on_done=(lambda i: on_done(todo[i], False)) if on_done else None)
        for name, (result, seconds) in zip(todo, computed, strict=True):
            _store(name, keys[name], data[name], result, cache)
            runs[name] = StudyRun(name, result, False, seconds, keys[name])
    return [runs[n] for n in names]


def _compute_task(task: StudyTask, seed: int) -> tuple[StudyResult, float]:
    """One study computed in a worker (its own loops run serially there), and its seconds.

    The worker resolves data locations from the environment the task carries and must
    find the very data the running process resolved.

    Raises
    ------
    DataError
        If this worker cannot read the named data, or finds other data there; the message
        names the worker, the path and the fix.
    """
    started = time.perf_counter()
    with pinned_environ(dict(task.environ)):
        _check_worker_data(task)
        result = _compute(task.name, task.config)
    return result, time.perf_counter() - started


def worker_name() -> str:
    """This Dask worker's address, else the host and process id."""
    try:
        from distributed import get_worker

        return f"Dask worker {get_worker().address}"
    except (ImportError, ValueError):
        return f"worker process {os.getpid()} on {socket.gethostname()}"


def _check_worker_data(task: StudyTask) -> None:
    want = task.data
    where = f"at {want.path}" if want.path else f"({want.name}, generated from settings)"
    fix = ("Make the data readable at that same path on every worker (a shared disk, or a "
           "copy at the same path), or run with ANALYSIS_PARALLEL=serial to compute here. "
           "The book never swaps named data for other data.")
    try:
        found = get_study(task.name).data_ref(task.config.study(task.name), task.config.root)
    except DataError as exc:
        raise DataError(f"{worker_name()} cannot read {task.name}'s data {want.name} "
                        f"{where}: {exc} {fix}") from exc
    if (found.name, found.source, found.fingerprint) != (want.name, want.source,
                                                          want.fingerprint):
        seen = f"{found.name} ({found.source}" + (f", at {found.path})" if found.path else ")")
        raise DataError(f"{worker_name()} cannot read {task.name}'s data {want.name} {where}: "
                        f"it resolves {seen} instead. {fix}")


def _compute(name: str, config: BookConfig) -> StudyResult:
    """Run the study on the configured parallel backend, with BLAS and OpenMP at one thread
    (as in every task), so its numbers do not depend on the backend or the machine."""
    study = get_study(name)
    settings = config.study(name)
    with warnings.catch_warnings(record=True) as caught, parallel.use(config.parallel), \
            parallel.one_thread():
        warnings.simplefilter("always")
        result = study.run(settings, config.root)
    seen = {(d.topic, d.message) for d in result.diagnostics}
    extra = []
    for w in caught:
        if issubclass(w.category, AnalysisWarning):
            diag = Diagnostic("warning", w.category.__name__, str(w.message))
            if (diag.topic, diag.message) not in seen:
                seen.add((diag.topic, diag.message))
                extra.append(diag)
    prov = dataclasses.replace(result.provenance, profile=config.profile)
    return dataclasses.replace(result, provenance=prov,
                               diagnostics=result.diagnostics + tuple(extra))
