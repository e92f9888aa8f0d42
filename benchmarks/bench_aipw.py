"""Benchmarks of the AIPW chapter (``aipw_panel``): wall time and peak memory.

Usage (from the project root)::

    python benchmarks/bench_aipw.py bootstrap [--rows 100000] [--users 2000] [--reps 400]
        The vectorised user-cluster bootstrap against the seed-style loop that
        concatenates resampled rows per replicate (the source report's approach), on
        the same draws; prints both times, the speed-up and the largest difference.

    python benchmarks/bench_aipw.py pipeline [--users 7200] [--days 60] [--boot 400]
        The whole AIPW pipeline (simulated log, panel, learner selection and
        cross-fitting, bootstrap, g-methods, segments, heterogeneity; no Monte Carlo)
        on a panel of KuaiRec big-matrix size.

    python benchmarks/bench_aipw.py study [--profile default]
        The registered study as the book runs it (including its Monte Carlo check).

Each invocation is one process, so its peak resident memory (``ru_maxrss``) is its
own.  Results are printed and appended as JSON lines to ``benchmarks/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.estimators.bootstrap import cluster_bootstrap, loop_bootstrap  # noqa: E402


def peak_rss_gib() -> float:
    """Peak resident memory of this process in GiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def bench_bootstrap(rows: int, users: int, reps: int) -> dict:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user": rng.integers(0, users, rows),
                          "psi": rng.normal(1.0, 20.0, rows)})
    t = time.perf_counter()
    boot = cluster_bootstrap(frame["user"].to_numpy(), reps, seed=1)
    fast = boot.mean(frame["psi"].to_numpy())
    vector_s = time.perf_counter() - t
    t = time.perf_counter()
    slow = loop_bootstrap(frame, "user", lambda f: f["psi"].mean(), boot.draws)
    loop_s = time.perf_counter() - t
    return {"rows": rows, "users": users, "replicates": reps, "vectorised_s": round(vector_s, 3),
            "loop_s": round(loop_s, 2), "speedup": round(loop_s / vector_s, 1),
            "max_abs_difference": float(np.max(np.abs(fast - slow)))}


def bench_pipeline(users: int, days: int, boot: int) -> dict:
    from analysis.config import build_study_config
    from analysis.data.kuairec_sim import simulate_kuairec
    from analysis.features.panel import build_panel
    from analysis.studies import aipw_panel

    config = build_study_config(aipw_panel.Config, {
        "source": "synthetic", "n_users": users, "n_days": days, "n_boot": boot,
        "coverage_reps": 0}, section="[benchmark]", root=ROOT)
    t = time.perf_counter()
    data = simulate_kuairec(**config.sim_params())
    panel = build_panel(data.log)
    data_s = time.perf_counter() - t
    t = time.perf_counter()
    res = aipw_panel.analyse(data, panel, config, aipw_panel.data_ref(config, ROOT))
    f = res.facts
    return {"users": users, "days": days, "user_days": f["n_rows"], "plays": len(data.log),
            "bootstrap": boot, "data_s": round(data_s, 1),
            "analysis_s": round(time.perf_counter() - t, 1), "aipw": f["aipw"],
            "aipw_se": f["aipw_se"], "truth_ate": f["truth_ate"]}


def bench_study(profile: str) -> dict:
    from analysis.config import load_config
    from analysis.studies import aipw_panel

    config = load_config(profile=profile).study("aipw_panel")
    t = time.perf_counter()
    res = aipw_panel.run(config, ROOT)
    f = res.facts
    return {"profile": profile, "study_s": round(time.perf_counter() - t, 1),
            "user_days": f["n_rows"], "aipw": f["aipw"], "aipw_se": f["aipw_se"],
            "truth_ate": f["truth_ate"], "coverage_reps": f.get("coverage_reps"),
            "coverage_aipw": f.get("coverage_aipw"),
            "coverage_aipw_boot": f.get("coverage_aipw_boot")}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["bootstrap", "pipeline", "study"])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--users", type=int, default=None)
    p.add_argument("--reps", type=int, default=400)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--boot", type=int, default=400)
    p.add_argument("--profile", default="default")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    start, load = time.perf_counter(), os.getloadavg()[0]
    if args.what == "bootstrap":
        out = bench_bootstrap(args.rows, args.users or 2000, args.reps)
    elif args.what == "pipeline":
        out = bench_pipeline(args.users or 7200, args.days, args.boot)
    else:
        out = bench_study(args.profile)
    out = {"benchmark": f"aipw_panel/{args.what}", **out,
           "wall_s": round(time.perf_counter() - start, 1),
           "peak_rss_gib": round(peak_rss_gib(), 2),
           "load_avg_start": round(load, 2), "cpus": os.cpu_count(),
           "python": platform.python_version()}
    print(json.dumps(out, indent=2))
    with (ROOT / "benchmarks" / "results.jsonl").open("a") as fh:
        fh.write(json.dumps(out) + "\n")
    return out


if __name__ == "__main__":
    main()
