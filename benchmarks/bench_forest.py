"""Benchmark of EconML's CausalForestDML at scale: wall time, peak memory, and accuracy.

Usage (from the project root)::

    python benchmarks/bench_forest.py --rows 100000 --setting default
    python benchmarks/bench_forest.py --rows 1000000 --setting lean

Each run is one process (its peak resident memory is its own): it simulates the pricing
design's customers, fits ``CausalForestDML`` with fixed linear nuisance models (so the
forest dominates), predicts every customer's CATE (with intervals when inference is on)
and scores the predictions against the true effects on a 20,000-customer holdout.

Settings (``--setting``):

``default``
    The chapter's forest: 400 trees, min leaf 10, ``max_samples`` 0.45, inference on.
``lean``
    For a million rows: 200 trees, min leaf 50, ``max_samples`` 0.05,
    ``subforest_size`` 4, inference on; float32 features.
``lean-noinf``
    As ``lean`` with inference off (no CATE intervals, no sub-forest variance).

Results are printed and appended to ``benchmarks/results.jsonl``.
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

from analysis.data.pricing import simulate_pricing  # noqa: E402
from analysis.estimators.cate import score_cate  # noqa: E402

SETTINGS = {
    "default": {"n_estimators": 400, "min_samples_leaf": 10, "max_samples": 0.45,
                "inference": True, "float32": False},
    "lean": {"n_estimators": 200, "min_samples_leaf": 50, "max_samples": 0.05,
             "inference": True, "float32": True},
    "lean-noinf": {"n_estimators": 200, "min_samples_leaf": 50, "max_samples": 0.05,
                   "inference": False, "float32": True},
}


def peak_rss_gib() -> float:
    """Peak resident memory of this process in GiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--setting", choices=list(SETTINGS), default="default")
    p.add_argument("--jobs", type=int, default=2, help="forest threads (default: both cores)")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    from econml.dml import CausalForestDML
    from sklearn.linear_model import LinearRegression, LogisticRegression

    s = SETTINGS[args.setting]
    t0 = time.perf_counter()
    data = simulate_pricing(n=args.rows, scenario="linear", seed=1)
    test = simulate_pricing(n=20_000, scenario="linear", seed=2)
    dtype = np.float32 if s["float32"] else np.float64
    X = data.X.to_numpy(dtype=dtype)
    y, t = data.frame["revenue"].to_numpy(), data.frame["treated"].to_numpy()
    sim_s = time.perf_counter() - t0
    est = CausalForestDML(model_y=LinearRegression(), model_t=LogisticRegression(max_iter=500),
                          discrete_treatment=True, cv=2, random_state=0, n_jobs=args.jobs,
                          n_estimators=s["n_estimators"], min_samples_leaf=s["min_samples_leaf"],
                          max_samples=s["max_samples"], inference=s["inference"],
                          subforest_size=4)
    t1 = time.perf_counter()
    est.fit(y, t, X=X)
    fit_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    Xt = test.X.to_numpy(dtype=dtype)
    point = est.effect(Xt)
    import pandas as pd

    frame = pd.DataFrame({"estimate": point, "lower": np.nan, "upper": np.nan})
    if s["inference"]:
        lo, hi = est.effect_interval(Xt)
        frame["lower"], frame["upper"] = lo, hi
    ate = est.ate__inference()
    predict_s = time.perf_counter() - t2
    score = score_cate(frame, test.tau)
    out = {"benchmark": "forest_pricing/causal_forest", "rows": args.rows,
           "setting": args.setting, **{k: v for k, v in s.items()}, "jobs": args.jobs,
           "simulate_s": round(sim_s, 1), "fit_s": round(fit_s, 1),
           "predict_s": round(predict_s, 1), "peak_rss_gib": round(peak_rss_gib(), 2),
           "sqrt_pehe_holdout": round(score["sqrt_pehe"], 3),
           "cate_coverage_holdout": score["coverage"],
           "ate": float(np.ravel(ate.point_estimate)[0]),
           "ate_se": float(np.ravel(ate.stderr)[0]), "cpus": os.cpu_count(),
           "python": platform.python_version()}
    print(json.dumps(out, indent=2))
    with (ROOT / "benchmarks" / "results.jsonl").open("a") as fh:
        fh.write(json.dumps(out) + "\n")
    return out


if __name__ == "__main__":
    main()
