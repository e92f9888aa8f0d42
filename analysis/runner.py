"""Run studies through the result cache.

:func:`run_study` resolves a study's settings and data, computes the cache key
(settings, data fingerprint, the study's code) and either reads the cached
result or computes and stores a fresh one.  Library deprecation noise raised
while computing is dropped; :class:`~analysis.errors.AnalysisWarning` s become
the result's diagnostics, so the chapter can show them.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from analysis import parallel
from analysis.cache import CACHE_ENV, ResultCache, cache_key
from analysis.codehash import code_fingerprint
from analysis.config import BookConfig, load_config
from analysis.errors import AnalysisWarning, CacheError, CacheWarning
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


def study_key(name: str, config: BookConfig) -> str:
    """The cache key of ``name`` under ``config``'s profile (see :func:`cache_key`)."""
    study = get_study(name)
    settings = config.study(name)
    ref = study.data_ref(settings, config.root)
    return cache_key(name, settings.as_dict(), ref.fingerprint, code_fingerprint(study.__name__),
                     dataset=ref.name)


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
    key = study_key(name, config)
    hit = None if refresh else _cached(name, key, cache, started)
    if hit is not None:
        return hit
    cache.check_writable()  # fail before hours of computing, not after
    return _computed(name, config, cache, key, started)


def _cached(name: str, key: str, cache: ResultCache, started: float) -> StudyRun | None:
    """The cached run, or None (a corrupt entry is reported and recomputed)."""
    try:
        hit = cache.get(name, key)
    except CacheError as exc:
        warnings.warn(f"{exc} Recomputing.", stacklevel=3)
        return None
    return None if hit is None else StudyRun(name, hit, True, time.perf_counter() - started,
                                             key)


def _computed(name: str, config: BookConfig, cache: ResultCache, key: str,
              started: float) -> StudyRun:
    result = _compute(name, config)
    _store(name, key, result, cache)
    return StudyRun(name, result, False, time.perf_counter() - started, key)


def _store(name: str, key: str, result: StudyResult, cache: ResultCache) -> None:
    try:
        cache.put(name, key, result)
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
    keys = {name: study_key(name, config) for name in names}
    runs: dict[str, StudyRun] = {}
    todo = []
    for name in names:
        hit = None if refresh else _cached(name, keys[name], cache, time.perf_counter())
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
            runs[name] = _computed(name, config, cache, keys[name], time.perf_counter())
            if on_done:
                on_done(name, False)
    else:
        # the workers compute; this process writes the cache (a cluster's workers may not
        # see this machine's disk)
        computed = parallel.map_tasks(
            _compute_task, [(n, config) for n in todo], seeds=[0] * len(todo),
            settings=config.parallel, on_done=(lambda i: on_done(todo[i], False))
            if on_done else None)
        for name, (result, seconds) in zip(todo, computed, strict=True):
            _store(name, keys[name], result, cache)
            runs[name] = StudyRun(name, result, False, seconds, keys[name])
    return [runs[n] for n in names]


def _compute_task(item: tuple[str, BookConfig], seed: int) -> tuple[StudyResult, float]:
    """One study computed in a worker (its own loops run serially there), and its seconds."""
    name, config = item
    started = time.perf_counter()
    return _compute(name, config), time.perf_counter() - started


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
