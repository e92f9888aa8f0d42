"""The one door every parallel loop of the book goes through.

Monte Carlo replications, bootstrap replicates, repetitions of cross-fitting, grids of
simulations, the studies themselves: each is a list of independent tasks.
:func:`map_tasks` runs ``fn(item, seed)`` for every item and returns the results in
the items' order, on the backend the configuration chooses:

``serial``
    In this process, one task after another (the default, and the reference the
    tests compare the others against).
``local``
    Worker processes on this machine (joblib's ``loky`` backend).
``dask``
    A ``dask.distributed`` cluster: the scheduler at ``address``, or an in-process
    ``LocalCluster`` of ``workers`` single-threaded processes when the address is
    ``local``.  Dask reschedules the tasks of a worker that dies.

Every task gets its own seed, derived from the study's seed and the task's index with
:class:`numpy.random.SeedSequence` (``spawn``), never from global state or from which
worker runs it, and every task runs with its numerical libraries limited to one thread,
so the numbers are identical, to the last bit, whatever the backend.  The backend is not
part of any cache key.

The settings come from the ``[parallel]`` section of ``analysis.toml`` (see
:func:`settings_from`), overridden by ``$ANALYSIS_PARALLEL``, ``$ANALYSIS_DASK_ADDRESS``
and ``$ANALYSIS_WORKERS``; the runner activates them with :func:`use` around each study.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args

import numpy as np

from analysis.errors import ConfigError, ParallelError

T = TypeVar("T")
R = TypeVar("R")

Backend = Literal["serial", "local", "dask"]
BACKEND_ENV = "ANALYSIS_PARALLEL"
ADDRESS_ENV = "ANALYSIS_DASK_ADDRESS"
WORKERS_ENV = "ANALYSIS_WORKERS"


@dataclass(frozen=True)
class ParallelSettings:
    """Where the tasks run.

    Attributes
    ----------
    backend : {"serial", "local", "dask"}
    address : str
        Dask only: the scheduler's address (``tcp://host:8786``), or ``local`` for an
        in-process ``LocalCluster``.
    workers : int
        Worker processes for ``local`` and for a Dask ``LocalCluster``; 0 means one per
        core.
    connect_timeout : float
        Seconds to wait for a Dask scheduler before giving up with an error.
    """

    backend: Backend = "serial"
    address: str = "local"
    workers: int = 0
    connect_timeout: float = 10.0

    def n_workers(self) -> int:
        """Workers to start (``workers``, or the number of cores)."""
        return self.workers or os.cpu_count() or 1

    def describe(self) -> str:
        """One line for the run log."""
        if self.backend == "serial":
            return "serial (one process)"
        if self.backend == "local":
            return f"local ({self.n_workers()} worker processes)"
        where = (f"in-process LocalCluster, {self.n_workers()} workers"
                 if self.address == "local" else f"scheduler {self.address}")
        return f"dask ({where})"


SERIAL = ParallelSettings()
_ACTIVE: ContextVar[ParallelSettings] = ContextVar("analysis_parallel", default=SERIAL)
_IN_TASK: ContextVar[bool] = ContextVar("analysis_in_task", default=False)


def settings_from(section: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> ParallelSettings:
    """Validated settings from a ``[parallel]`` table and the environment (which wins).

    Raises
    ------
    ConfigError
        On an unknown key, backend or a bad number, naming the key and the fix.
    """
    environ = os.environ if environ is None else environ
    values = dict(section or {})
    allowed = {"backend", "address", "workers", "connect_timeout"}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ConfigError(f"Unknown key(s) {unknown} in [parallel]; valid keys: "
                          f"{', '.join(sorted(allowed))}.")
    for key, env in (("backend", BACKEND_ENV), ("address", ADDRESS_ENV),
                     ("workers", WORKERS_ENV)):
        if environ.get(env, "").strip():
            values[key] = environ[env].strip()
            where = f"${env}"
        else:
            where = f"'{key}' in [parallel]"
        if key == "backend" and key in values and values[key] not in get_args(Backend):
            raise ConfigError(f"{where} is {values[key]!r}; use one of "
                              f"{', '.join(map(repr, get_args(Backend)))}.")
        if key == "workers" and key in values:
            try:
                values[key] = int(values[key])
            except (TypeError, ValueError):
                raise ConfigError(f"{where} is {values[key]!r}; use a whole number of worker "
                                  "processes (0 for one per core).") from None
            if values[key] < 0:
                raise ConfigError(f"{where} is {values[key]}; use 0 (one per core) or more.")
    if "connect_timeout" in values and not (isinstance(values["connect_timeout"], int | float)
                                            and values["connect_timeout"] > 0):
        raise ConfigError(f"'connect_timeout' in [parallel] is {values['connect_timeout']!r}; "
                          "use a positive number of seconds such as 10.")
    return ParallelSettings(**values)


def active() -> ParallelSettings:
    """The settings in force: serial inside a task (tasks do not spawn tasks), else those
    :func:`use` set (serial by default)."""
    return SERIAL if _IN_TASK.get() else _ACTIVE.get()


@contextlib.contextmanager
def use(settings: ParallelSettings) -> Iterator[ParallelSettings]:
    """Run the enclosed code's :func:`map_tasks` calls on ``settings``' backend."""
    token = _ACTIVE.set(settings)
    try:
        yield settings
    finally:
        _ACTIVE.reset(token)


def task_seeds(seed: int, n: int) -> list[int]:
    """One independent 32-bit seed per task, from the study seed and the task index.

    Notes
    -----
    Task :math:`i` gets the first 32-bit word of the state of the :math:`i`-th child of
    ``SeedSequence(seed).spawn(n)``; children of one sequence are independent streams,
    unlike ``seed + i`` (whose streams overlap with those of the study seeded ``seed + 1``).
    """
    children = np.random.SeedSequence(seed).spawn(n)
    return [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]


def common_seeds(seed: int, n: int) -> list[int]:
    """One seed shared by ``n`` tasks that must draw the same random numbers (the same
    folds for every method compared, the same simulated data at every grid point), spawned
    from ``seed`` like any task seed: ``[task_seeds(seed, 1)[0]] * n``."""
    return task_seeds(seed, 1) * n


_NO_SHARED: Any = object()
"""Marker: the tasks take no shared argument (``fn(item, seed)``)."""


def run_task(fn: Callable[..., R], item: T, seed: int, shared: Any = _NO_SHARED) -> R:
    """One task; tasks that a task starts run serially inside it.  Callers hold
    :func:`one_thread` around their tasks (once per batch: entering it costs milliseconds)."""
    token = _IN_TASK.set(True)
    try:
        return fn(item, seed) if shared is _NO_SHARED else fn(item, seed, shared)
    finally:
        _IN_TASK.reset(token)


def one_thread() -> contextlib.AbstractContextManager:
    """Limit BLAS and OpenMP to one thread: the runner computes every study this way and
    every task runs this way, so results do not depend on how many threads or workers
    there are."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def map_tasks(fn: Callable[[T, int], R], items: Iterable[T], *, seed: int | None = None,
              seeds: Sequence[int] | None = None, settings: ParallelSettings | None = None,
              on_done: Callable[[int], None] | None = None,
              shared: Any = _NO_SHARED) -> list[R]:
    """``[fn(item, seed_i) for each item]`` on the active backend, in the items' order.

    Parameters
    ----------
    fn : callable
        A module-level function (so that it can be shipped to a worker) of an item and
        an integer seed; it must not rely on changing its arguments or global state.
    items : iterable
        The tasks' inputs.  An object passed as several items (the same data for every
        Monte Carlo replication) is shipped to a Dask cluster once.
    seed : int, optional
        The study's seed; task ``i`` gets ``task_seeds(seed, n)[i]``.
    seeds : sequence of int, optional
        Explicit per-task seeds instead (exactly one of ``seed`` and ``seeds``).
    settings : ParallelSettings, optional
        The backend; :func:`active` by default.
    on_done : callable, optional
        Called with a task's index as it finishes (progress bars; out of order on Dask).
    shared : object, optional
        Data every task reads (a dict of large arrays, say): with it, ``fn`` is called as
        ``fn(item, seed, shared)`` and the items stay small.  It reaches each worker
        once, not once per task: ``local`` writes its arrays of more than 1 MiB to
        memory-mapped files (in ``/dev/shm`` where there is one) that every worker maps
        without copying; ``dask`` broadcasts it to every worker with ``scatter``.

    Returns
    -------
    list
        The results, in the order of ``items``.

    Raises
    ------
    ParallelError
        If a Dask scheduler cannot be reached.
    """
    items = list(items)
    if (seed is None) == (seeds is None):
        raise TypeError("map_tasks needs exactly one of seed= and seeds=.")
    seeds = task_seeds(seed, len(items)) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != len(items):
        raise ValueError(f"{len(seeds)} seeds for {len(items)} tasks.")
    s = SERIAL if _IN_TASK.get() else (settings or active())
    if s.backend == "serial" or len(items) <= 1:
        out = []
        with one_thread():
            for i, (item, sd) in enumerate(zip(items, seeds, strict=True)):
                out.append(run_task(fn, item, sd, shared))
                if on_done:
                    on_done(i)
        return out
    if s.backend == "local":
        with memmapped(shared) as mapped:
            return _map_local(fn, items, seeds, s, on_done, mapped)
    return _map_dask(fn, items, seeds, s, on_done, shared)


def run_batch(fn: Callable[..., R], batch: Sequence[tuple[T, int]],
              shared: Any = _NO_SHARED) -> list[R]:
    """Several tasks in a row on one worker (each with its own seed, so batching changes
    nothing in the results, only how many round trips the scheduler makes), with BLAS and
    OpenMP limited to one thread on every backend so sums are taken in the same order."""
    with one_thread():
        return [run_task(fn, item, sd, shared) for item, sd in batch]


SHARED_MIN_BYTES = 1 << 20
"""Arrays of ``shared`` at least this large are memory-mapped for ``local`` workers."""


@contextlib.contextmanager
def memmapped(shared: Any) -> Iterator[Any]:
    """``shared`` with its large arrays replaced by read-only memory maps of files in a
    temporary folder (``/dev/shm`` where it exists), removed on exit.  Nested dicts,
    lists and tuples are walked; other objects are kept as they are.  joblib pickles a
    memory map as its file name, so a task's arguments stay small and every worker reads
    the same pages."""
    if shared is _NO_SHARED:
        yield shared
        return
    import shutil
    import tempfile

    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    folder = tempfile.mkdtemp(prefix="analysis-shared-", dir=shm)
    count = [0]

    def walk(obj: Any) -> Any:
        if isinstance(obj, np.ndarray) and obj.nbytes >= SHARED_MIN_BYTES \
                and obj.dtype.kind in "biufc":
            count[0] += 1
            path = os.path.join(folder, f"a{count[0]}.npy")
            np.save(path, obj, allow_pickle=False)
            return np.load(path, mmap_mode="r")
        if isinstance(obj, dict):
            return {k: walk(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple) and not hasattr(obj, "_fields"):
            return type(obj)(walk(v) for v in obj)
        return obj

    try:
        yield walk(shared)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def batches(n: int, workers: int, per_worker: int = 4) -> Sequence[tuple[int, int]]:
    """Cut ``n`` tasks into about ``per_worker`` batches per worker: short tasks (a Monte
    Carlo replication of a few milliseconds) then cost one scheduling round trip per
    batch, while a few long tasks (fits of different methods) stay one per batch so the
    workers share them evenly."""
    size = max(1, n // (workers * per_worker))
    return chunks(n, size)


def _map_local(fn, items, seeds, s: ParallelSettings, on_done, shared=_NO_SHARED) -> list:
    from joblib import Parallel, delayed

    parts = batches(len(items), s.n_workers())
    jobs = Parallel(n_jobs=min(s.n_workers(), len(parts)), backend="loky",
                    return_as="generator")
    out: list = []
    extra = () if shared is _NO_SHARED else (shared,)  # the marker is no marker once pickled
    results = jobs(delayed(run_batch)(fn, list(zip(items[lo:hi], seeds[lo:hi], strict=True)),
                                      *extra) for lo, hi in parts)
    for (lo, _), batch in zip(parts, results, strict=True):
        out.extend(batch)
        if on_done:
            for i in range(lo, lo + len(batch)):
                on_done(i)
    return out


def _map_dask(fn, items, seeds, s: ParallelSettings, on_done, shared=_NO_SHARED) -> list:
    from distributed import as_completed

    client = dask_client(s)
    shipped = _ship_shared(client, items)
    workers = len(client.scheduler_info().get("workers", {})) or s.n_workers()
    parts = batches(len(items), workers)
    extra = () if shared is _NO_SHARED else \
        (client.scatter([shared], broadcast=True, hash=False)[0],)  # one future, on all
    futures = [client.submit(run_batch, fn, list(zip(shipped[lo:hi], seeds[lo:hi],
                                                     strict=True)), *extra, pure=False)
               for lo, hi in parts]
    index = {f.key: part for f, part in zip(futures, parts, strict=True)}
    try:
        with client.as_current():
            for future in as_completed(futures):
                if on_done:
                    for i in range(*index[future.key]):
                        on_done(i)
        return [r for batch in client.gather(futures) for r in batch]
    except BaseException:
        client.cancel(futures)  # Ctrl-C or a failed task: stop the rest on the cluster
        raise


def _ship_shared(client, items: list) -> list:
    """Items that are one object passed several times go to the cluster once."""
    counts: dict[int, int] = {}
    for item in items:
        counts[id(item)] = counts.get(id(item), 0) + 1
    futures: dict[int, Any] = {}
    out = []
    for item in items:
        if counts[id(item)] > 1 and _is_large(item):
            if id(item) not in futures:
                futures[id(item)] = client.scatter([item], hash=False)[0]
            out.append(futures[id(item)])
        else:
            out.append(item)
    return out


def _is_large(item: Any, limit: int = 100_000) -> bool:
    try:
        return len(pickle.dumps(item, protocol=5)) > limit
    except Exception:  # unpicklable here: let Dask's own serialisation report it
        return False


_CLIENTS: dict[tuple, Any] = {}


def dask_client(s: ParallelSettings):
    """A connected ``distributed.Client`` for ``s`` (kept for the rest of the process).

    Raises
    ------
    ParallelError
        If ``dask.distributed`` is missing or the scheduler does not answer within
        ``connect_timeout`` seconds.
    """
    key = (s.address, s.n_workers() if s.address == "local" else None)
    if key in _CLIENTS and _CLIENTS[key].status == "running":
        return _CLIENTS[key]
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ParallelError("The dask backend needs dask.distributed: install it with "
                            "python -m pip install -e '.[dask]' (or 'dask[distributed]'), "
                            "or use backend = 'serial' or 'local'.") from exc
    if s.address == "local":
        import logging

        cluster = LocalCluster(n_workers=s.n_workers(), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster, set_as_default=False)
    else:
        try:
            client = Client(s.address, timeout=f"{s.connect_timeout}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ParallelError(
                f"Could not reach a Dask scheduler at {s.address} within "
                f"{s.connect_timeout:g} s ({type(exc).__name__}: {exc}). Start one with "
                "'dask scheduler' and workers with 'dask worker ADDRESS' (each with this "
                "project installed), check the address in [parallel] or "
                f"${ADDRESS_ENV}, or set ${BACKEND_ENV}=serial to run here.") from exc
    _CLIENTS[key] = client
    return client


@atexit.register
def close_clients() -> None:
    """Close every Dask client (and the LocalClusters this process started)."""
    for key, client in list(_CLIENTS.items()):
        with contextlib.suppress(Exception):
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
        _CLIENTS.pop(key, None)


def chunks(n: int, size: int) -> Sequence[tuple[int, int]]:
    """``(start, stop)`` pairs cutting ``range(n)`` into blocks of at most ``size``."""
    return [(i, min(i + size, n)) for i in range(0, n, size)]

