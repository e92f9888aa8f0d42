"""Benchmarks of the parallel backends (``analysis.parallel``).

Usage (from the project root)::

    python benchmarks/bench_parallel.py coverage [--reps 400] [--workers 2]
        The DML chapter's Monte Carlo coverage study (its default settings) serially, on
        ``local`` worker processes and on a Dask ``LocalCluster`` of single-threaded
        workers, each twice (cold: the first loop of a run, which starts the workers;
        warm: every later one): wall times, speed-ups over serial, and whether the
        tables are identical to the last bit.

    python benchmarks/bench_parallel.py graph [--profile default] [--study NAME ...]
        Every study computed serially with each task timed: per study, the number of
        tasks, the distribution of task durations, the bytes shipped per task (the
        pickled function, input and seed), the time spent outside tasks (the serial
        part), and from those the estimated wall time on 16 and 64 cores.

The estimate for ``p`` cores is the serial part plus a greedy (longest task first)
schedule of the measured task durations on ``p`` workers, plus a per-task overhead
(``--overhead``, default 5 ms: a Dask task's scheduling and transfer cost on a LAN), and
for the whole book, studies run concurrently, each on its share of the cores.
Results are printed and appended as JSON lines to ``benchmarks/results.jsonl``.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import pickle
import platform
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis import parallel  # noqa: E402
from analysis.parallel import ParallelSettings  # noqa: E402


def bench_coverage(reps: int, workers: int) -> dict:
    from analysis.config import load_config
    from analysis.estimators.coverage import coverage_simulation

    cfg = load_config(profile="default").study("dml_genre")
    kwargs = {"n_clusters": cfg.coverage_clusters, "seed": cfg.seed}
    out: dict = {"reps": reps, "workers": workers, "n_clusters": cfg.coverage_clusters}
    tables = {}
    for name, s in (("serial", parallel.SERIAL),
                    ("local", ParallelSettings(backend="local", workers=workers)),
                    ("dask", ParallelSettings(backend="dask", address="local",
                                              workers=workers))):
        if name == "dask":  # start the cluster outside the timing, as a running cluster is
            t = time.perf_counter()
            parallel.dask_client(s)
            out["dask_startup_s"] = round(time.perf_counter() - t, 2)
        # twice: the first run includes starting the worker processes and their imports
        # (a cold pool), the second is what every later loop of a run sees (a warm one)
        for run in ("cold", "warm"):
            t = time.perf_counter()
            with parallel.use(s):
                table = coverage_simulation(reps, **kwargs)
            out[f"{name}_{run}_s"] = round(time.perf_counter() - t, 2)
            tables[f"{name}_{run}"] = table
    for name in ("local", "dask"):
        for run in ("cold", "warm"):
            out[f"{name}_{run}_speedup"] = round(out[f"serial_{run}_s"]
                                                 / out[f"{name}_{run}_s"], 2)
            out[f"{name}_{run}_identical"] = bool(
                tables[f"{name}_{run}"].equals(tables["serial_cold"]))
    out["coverage"] = float(tables["serial_cold"]["covered"].mean())
    return out


class Recorder:
    """Wraps :func:`analysis.parallel.run_task` to time every top-level task (tasks that
    tasks start run inside them, serially) and size its input."""

    def __init__(self) -> None:
        self.original = parallel.run_task
        self.tasks: list[tuple[float, int]] = []
        self.depth = 0

    def __call__(self, fn, item, seed):
        if self.depth:
            return self.original(fn, item, seed)
        size = len(pickle.dumps((fn, item, seed), protocol=5))
        self.depth += 1
        t = time.perf_counter()
        try:
            out = self.original(fn, item, seed)
        finally:
            self.depth -= 1
        self.tasks.append((time.perf_counter() - t, size))
        return out


def schedule(durations: list[float], cores: int, overhead: float) -> float:
    """Makespan of a greedy longest-first schedule on ``cores`` workers."""
    load = [0.0] * max(1, cores)
    for d in sorted(durations, reverse=True):
        heapq.heappush(load, heapq.heappop(load) + d + overhead)
    return max(load)


def bench_graph(profile: str, studies: list[str] | None, overhead: float) -> dict:
    from analysis.config import load_config
    from analysis.runner import _compute
    from analysis.studies import STUDIES

    config = load_config(profile=profile)
    rows = []
    for name in studies or list(STUDIES):
        rec = Recorder()
        parallel.run_task = rec
        t = time.perf_counter()
        try:
            _compute(name, config)
        finally:
            parallel.run_task = rec.original
        wall = time.perf_counter() - t
        d = np.array([x[0] for x in rec.tasks]) if rec.tasks else np.zeros(0)
        b = np.array([x[1] for x in rec.tasks]) if rec.tasks else np.zeros(0)
        serial_part = wall - d.sum()
        row = {"study": name, "wall_s": round(wall, 1), "tasks": len(d),
               "in_tasks_s": round(float(d.sum()), 1), "serial_s": round(serial_part, 1),
               "serial_fraction": round(serial_part / wall, 3)}
        if len(d):
            row.update(task_s_median=round(float(np.median(d)), 4),
                       task_s_p90=round(float(np.quantile(d, 0.9)), 4),
                       task_s_max=round(float(d.max()), 3),
                       bytes_median=int(np.median(b)), bytes_max=int(b.max()),
                       mib_total=round(float(b.sum()) / 2**20, 1))
        for p in (16, 64):
            row[f"est_{p}_cores_s"] = round(serial_part + schedule(list(d), p, overhead), 1)
        row["durations"] = [round(float(x), 4) for x in d]
        rows.append(row)
    out = {"profile": profile, "overhead_s": overhead, "studies": rows}
    total = sum(r["wall_s"] for r in rows)
    out["book_serial_s"] = round(total, 1)
    for p in (16, 64):
        # studies concurrently, each on cores in proportion to its task time (at least 1)
        work = {r["study"]: r["in_tasks_s"] for r in rows}
        share = {k: max(1, int(p * v / max(sum(work.values()), 1e-9))) for k, v in work.items()}
        out[f"book_est_{p}_cores_s"] = round(max(
            r["serial_s"] + schedule(r["durations"], share[r["study"]], overhead)
            for r in rows), 1)
    out["book_serial_fraction"] = round(sum(r["serial_s"] for r in rows) / total, 3)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["coverage", "graph"])
    p.add_argument("--reps", type=int, default=400)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--profile", default="default")
    p.add_argument("--study", action="append")
    p.add_argument("--overhead", type=float, default=0.005)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    start, load = time.perf_counter(), os.getloadavg()[0]
    if args.what == "coverage":
        out = bench_coverage(args.reps, args.workers)
    else:
        out = bench_graph(args.profile, args.study, args.overhead)
    out = {"benchmark": f"parallel/{args.what}", **out,
           "wall_s": round(time.perf_counter() - start, 1),
           "load_avg_start": round(load, 2), "cpus": os.cpu_count(),
           "python": platform.python_version()}
    shown = {k: v for k, v in out.items() if k != "studies"}
    if "studies" in out:
        shown["studies"] = pd.DataFrame(out["studies"]).drop(columns="durations").to_dict(
            "records")
    print(json.dumps(shown, indent=2))
    with (ROOT / "benchmarks" / "results.jsonl").open("a") as fh:
        fh.write(json.dumps(shown) + "\n")
    return out


if __name__ == "__main__":
    main()
