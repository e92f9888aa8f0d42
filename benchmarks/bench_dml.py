"""Benchmark of the double ML study (``dml_genre``): wall time and peak memory.

Usage (from the project root)::

    python benchmarks/bench_dml.py small [--path DIR]
        The full study with its default settings on the real ml-latest-small
        (DIR defaults to $ANALYSIS_MOVIELENS_DIR, else ../shared/data/movielens/ml-latest-small).

    python benchmarks/bench_dml.py synthetic [--ratings 20000000] [--users 138493]
                                             [--items 27278] [--n-rep 1] [--trees 30]
                                             [--learning-rate 0.15] [--subsample 0.8]
                                             [--control-sets]
        The study on a synthetic MovieLens-shaped set of that size (MovieLens 20M's
        shape by default), with the settings shown in the output.  Without
        ``--control-sets`` the report-style/all-features comparison is skipped;
        everything else (features, PLR, AIPW, two-way SEs, segments, balance, model
        comparison on a 30k-row sample, Monte Carlo coverage) runs.

    python benchmarks/bench_dml.py --peers [--rows 1000000] [--trees 100] [--workers 2] ...
        Cross-fitting against the 2-process floor, DoubleML and EconML (each method in its
        own process); see ``benchmarks/bench_peers.py``.

Each invocation is one process, so its peak memory is its own: the resident-set
high-water mark from ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (everything,
including LightGBM's C++ allocations), next to ``tracemalloc``'s peak of
Python-tracked allocations (numpy arrays included).  Wall time is
``time.perf_counter``.  The machine load average is printed, because the
machine may be shared.  Results are printed and appended as JSON lines to
``benchmarks/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.data.movielens import load_movielens, movielens_ref  # noqa: E402
from analysis.data.synthetic import simulate_movielens, synthetic_movielens_ref  # noqa: E402
from analysis.studies import dml_genre  # noqa: E402


def peak_rss_gib() -> float:
    """Peak resident memory of this process in GiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--peers" in argv:
        from bench_peers import main as peers

        return peers([a for a in argv if a != "--peers"])
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("size", choices=["small", "synthetic"])
    p.add_argument("--path", default=os.environ.get(
        "ANALYSIS_MOVIELENS_DIR", str(ROOT.parent / "shared/data/movielens/ml-latest-small")))
    p.add_argument("--ratings", type=int, default=20_000_000)
    p.add_argument("--users", type=int, default=138_493)
    p.add_argument("--items", type=int, default=27_278)
    p.add_argument("--n-rep", type=int, default=1)
    p.add_argument("--trees", type=int, default=30)
    p.add_argument("--learning-rate", type=float, default=0.15)
    p.add_argument("--subsample", type=float, default=0.8)
    p.add_argument("--control-sets", action="store_true")
    a = p.parse_args(argv)
    warnings.simplefilter("ignore")
    tracemalloc.start()
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    if a.size == "small":
        config = dml_genre.Config(source="real", path=a.path)
        data, ref = load_movielens(a.path), movielens_ref(a.path)
    else:
        config = dml_genre.Config(source="synthetic", synthetic_users=a.users,
                                  synthetic_items=a.items, synthetic_ratings=a.ratings,
                                  n_rep=a.n_rep, n_estimators=a.trees, subsample=a.subsample,
                                  learning_rate=a.learning_rate,
                                  compare_control_sets=a.control_sets)
        data = simulate_movielens(**config.synthetic_params())
        ref = synthetic_movielens_ref(**config.synthetic_params())
    t_data = time.perf_counter() - t0
    rss_data = peak_rss_gib()
    result = dml_genre.analyse(data, config, ref)
    total = time.perf_counter() - t0
    f = result.facts
    out = {
        "benchmark": f"dml_genre/{a.size}", "dataset": ref.name, "ratings": len(data.ratings),
        "wall_s": round(total, 1), "data_s": round(t_data, 1),
        "analysis_s": round(total - t_data, 1), "peak_rss_gib": round(peak_rss_gib(), 2),
        "peak_rss_after_data_gib": round(rss_data, 2),
        "tracemalloc_peak_gib": round(tracemalloc.get_traced_memory()[1] / 1024**3, 2),
        "load_avg_start": round(load0, 2), "load_avg_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "settings": {k: v for k, v in config.as_dict().items() if k != "path"},
        "aipw": f["aipw"], "aipw_se": f["aipw_se"], "plr": f["plr"],
        "truth_ate": f.get("truth_ate"),
    }
    print(json.dumps(out, indent=2))
    with (ROOT / "benchmarks" / "results.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(out) + "\n")
    return out


if __name__ == "__main__":
    main()
