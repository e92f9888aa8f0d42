"""Benchmarks of the interference chapter (``interference_slates``): wall time and peak memory.

Usage (from the project root)::

    python benchmarks/bench_interference.py study [--profile default] [--movielens DIR]
        The registered study as the book runs it (with its Monte Carlo check), on the
        MovieLens folder given (or $ANALYSIS_MOVIELENS_DIR; synthetic otherwise).

    python benchmarks/bench_interference.py slates [--slates 1000000] [--sessions 50]
        The whole analysis without the Monte Carlo check (slates, both designs, three
        estimators for seven estimands, Hudgens-Halloran, groups, targeting and the
        sensitivity grid) on a synthetic MovieLens sized to give that many slates.

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


def peak_rss_gib() -> float:
    """Peak resident memory of this process in GiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _summary(res, seconds: float) -> dict:
    f = res.facts
    return {"study_s": round(seconds, 1), "data": res.provenance.dataset,
            "slates": f["n_slates"], "users": f["n_users"],
            "total_per_1000": round(f["total_per_1000"], 1),
            "total_oracle_per_1000": round(f["total_oracle_per_1000"], 1),
            "direct_per_1000": round(f["direct_per_1000"], 1),
            "coverage_reps": f.get("coverage_reps", 0),
            "coverage_total": f.get("coverage_total")}


def bench_study(profile: str, movielens: str | None) -> dict:
    from analysis.config import load_config
    from analysis.studies import interference_slates

    if movielens:
        os.environ["ANALYSIS_MOVIELENS_DIR"] = movielens
    config = load_config(profile=profile).study("interference_slates")
    t = time.perf_counter()
    res = interference_slates.run(config, ROOT)
    return {"profile": profile, **_summary(res, time.perf_counter() - t)}


def bench_slates(slates: int, sessions: int) -> dict:
    from analysis.config import build_study_config
    from analysis.studies import interference_slates

    users = max(20, slates // sessions)
    config = build_study_config(interference_slates.Config, {
        "source": "synthetic", "synthetic_users": users, "synthetic_items": 9000,
        "synthetic_ratings": 50 * users, "sessions": sessions, "coverage_reps": 0},
        section="[benchmark]", root=ROOT)
    t = time.perf_counter()
    res = interference_slates.run(config, ROOT)
    return {"sessions": sessions, **_summary(res, time.perf_counter() - t)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["study", "slates"])
    p.add_argument("--profile", default="default")
    p.add_argument("--movielens", default=None)
    p.add_argument("--slates", type=int, default=1_000_000)
    p.add_argument("--sessions", type=int, default=50)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    start, load = time.perf_counter(), os.getloadavg()[0]
    if args.what == "study":
        out = bench_study(args.profile, args.movielens)
    else:
        out = bench_slates(args.slates, args.sessions)
    out = {"benchmark": f"interference_slates/{args.what}", **out,
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
