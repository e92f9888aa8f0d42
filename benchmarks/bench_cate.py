"""Benchmark of the heterogeneity studies at their default size: wall time and the
figures issue 17 set as goals.

Usage (from the project root)::

    python benchmarks/bench_cate.py --study ihdp_benchmark      # 50 IHDP realizations
    python benchmarks/bench_cate.py --study forest_pricing      # the forest chapter's study

Each run recomputes the study (default profile, the backend of ``analysis.toml`` or
``$ANALYSIS_PARALLEL``) into a scratch cache, prints the figures and appends them to
``benchmarks/results.jsonl``: for IHDP, the recommended method's mean √PEHE (goal ≤ 1.6)
and mean per-unit coverage (goal ≥ 80%) and every method's summary; for the forest
chapter, its wall time (goal < 3 minutes on 2 cores) and the per-unit coverage of the
method chosen by R-loss (goal ≥ 90%).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.cache import ResultCache  # noqa: E402
from analysis.config import load_config  # noqa: E402
from analysis.runner import run_study  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--study", choices=["ihdp_benchmark", "forest_pricing"],
                        required=True)
    parser.add_argument("--profile", default="default")
    args = parser.parse_args()
    config = load_config(ROOT / "analysis.toml", profile=args.profile)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = run_study(args.study, config=config, refresh=True, cache=ResultCache(Path(tmp)))
    wall = time.perf_counter() - start
    r = run.result
    out = {"benchmark": f"cate/{args.study}", "profile": args.profile,
           "wall_s": round(wall, 1), "load_avg_start": round(load, 2),
           "cpus": os.cpu_count(), "python": platform.python_version()}
    f = r.facts
    if args.study == "ihdp_benchmark":
        out.update({"realizations": f["n_realizations"], "recommended": f["recommended_key"],
                    "recommended_sqrt_pehe": round(f["recommended_pehe"], 3),
                    "recommended_cate_coverage": round(f["recommended_coverage"], 3),
                    "methods": r.table("summary").round(3).to_dict(orient="records")})
    else:
        methods = r.table("methods").set_index("method")
        chosen = f["chosen_key"]
        out.update({"chosen": chosen,
                    "chosen_cate_coverage": round(float(methods.loc[chosen, "coverage"]), 3),
                    "chosen_sqrt_pehe": round(float(methods.loc[chosen, "sqrt_pehe"]), 3),
                    "coverage_by_method": methods["coverage"].round(3).to_dict()})
    print(json.dumps(out, indent=1, default=str))
    with (ROOT / "benchmarks" / "results.jsonl").open("a") as fh:
        fh.write(json.dumps(out, default=str) + "\n")


if __name__ == "__main__":
    main()
