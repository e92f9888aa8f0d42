"""Cross-fitting against the hardware floor and the peers: ours, DoubleML and EconML.

Usage (from the project root)::

    python benchmarks/bench_peers.py [--rows 1000000] [--controls 36] [--trees 100]
                                     [--workers 2] [--methods M1,M2,...]
    python benchmarks/bench_dml.py --peers [same options]

One partially linear model, :math:`Y = \\theta D + g(X) + \\zeta`, on a synthetic
sample of ``--rows`` rows and ``--controls`` Gaussian controls (continuous treatment),
with the same LightGBM learner (``--trees`` trees, one thread) for :math:`E[Y|X]` and
:math:`E[D|X]` and the *same* three folds for every method.  Each method runs in its own
process (``subprocess``), which simulates the data itself, so its time and memory are its
own:

``fits_serial``
    The 6 nuisance fits alone (2 learners x 3 folds), one after the other.
``fits_2proc``
    The same 6 fits in ``--workers`` forked processes that inherit the data (no copy, no
    start-up imports): **the floor** every other row is divided by.
``ours_serial``, ``ours_local``
    ``PartiallyLinearDML(...).fit`` on the ``serial`` backend and on ``local`` with
    ``--workers`` worker processes (every fold's fit a task).
``doubleml_2jobs``, ``doubleml_serial``
    DoubleML's ``DoubleMLPLR`` (partialling out) with ``n_jobs_cv=2`` and serially
    (install it with ``python -m pip install -e '.[bench]'``).
``econml_serial``
    EconML's ``LinearDML`` (no effect modifiers), serially.

``seconds`` is the wall time of the fit alone (after the data are simulated);
``peak GiB`` is the process's resident-set high-water mark (``ru_maxrss`` of the child,
data included), ``workers GiB`` the largest of its worker processes.  The estimates are
printed to 15 significant digits: every method solves
:math:`\\hat\\theta = \\sum \\tilde Y\\tilde D / \\sum \\tilde D^2` on the same folds with the
same fits, so they should agree to about the last digit.  The load average is printed,
because the machine may be shared; results are appended as one JSON line to
``benchmarks/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.estimators.core import default_learner  # noqa: E402
from analysis.estimators.crossfit import fold_splits, make_folds  # noqa: E402
from analysis.parallel import task_seeds  # noqa: E402

METHODS = ("fits_serial", "fits_2proc", "ours_serial", "ours_local", "doubleml_2jobs",
           "doubleml_serial", "econml_serial")
LABELS = {"fits_serial": "the 6 nuisance fits alone, serial",
          "fits_2proc": "the 6 nuisance fits alone, {w} processes (the floor)",
          "ours_serial": "ours, PartiallyLinearDML, serial",
          "ours_local": "ours, PartiallyLinearDML, local {w} workers",
          "doubleml_2jobs": "DoubleML DoubleMLPLR, n_jobs_cv={w}",
          "doubleml_serial": "DoubleML DoubleMLPLR, serial",
          "econml_serial": "EconML LinearDML, serial"}
FLOOR = "fits_2proc"
SEED = 0
THETA = 0.5


def simulate(rows: int, controls: int, seed: int = SEED) -> tuple[np.ndarray, ...]:
    """Controls, outcome and a continuous treatment with nonlinear nuisances."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, controls))
    m = np.sin(X[:, 0]) + 0.5 * X[:, 1] * (X[:, 2] > 0)
    g = np.cos(X[:, 0]) + 0.5 * X[:, 3] ** 2 + 0.25 * X[:, 4] * X[:, 5]
    d = m + rng.standard_normal(rows)
    y = THETA * d + g + rng.standard_normal(rows)
    return X, y, d


def common_folds(rows: int) -> np.ndarray:
    """The folds ``PartiallyLinearDML(n_folds=3, seed=SEED)`` draws: every method gets them."""
    return make_folds(rows, 3, seed=task_seeds(SEED, 1)[0])


def learner(trees: int):
    return default_learner("regressor", n_estimators=trees, seed=SEED)


def _theta(y, d, g_hat, m_hat) -> float:
    """The partialling-out estimate, solved as ours solves it."""
    from analysis.estimators.core import plr_score
    from analysis.estimators.inference import solve_score

    return float(solve_score(*plr_score(y, d, g_hat, m_hat)).theta)


# --------------------------------------------------------------------------- the floor

_DATA: dict = {}  # set before forking: the floor's workers inherit it


def _one_fit(task: tuple[str, int]) -> np.ndarray:
    target, c = task
    X, folds, trees = _DATA["X"], _DATA["folds"], _DATA["trees"]
    _, test, train = fold_splits(folds)[c]
    from sklearn.base import clone

    est = clone(learner(trees)).fit(X[train], _DATA[target][train])
    return est.predict(X[test])


def _fits(X, y, d, folds, trees: int, workers: int) -> float:
    from threadpoolctl import threadpool_limits

    _DATA.update(X=X, y=y, d=d, folds=folds, trees=trees)
    tasks = [(t, c) for t in ("y", "d") for c in range(3)]
    with threadpool_limits(1):
        if workers <= 1:
            preds = [_one_fit(t) for t in tasks]
        else:
            import multiprocessing as mp

            with mp.get_context("fork").Pool(workers) as pool:
                preds = pool.map(_one_fit, tasks, chunksize=1)
    eta = {"y": np.empty(len(y)), "d": np.empty(len(y))}
    splits = fold_splits(folds)
    for (t, c), p in zip(tasks, preds, strict=True):
        eta[t][splits[c][1]] = p
    return _theta(y, d, eta["y"], eta["d"])


# --------------------------------------------------------------------------- the methods


def _ours(X, y, d, folds, trees: int, workers: int) -> float:
    from analysis import parallel
    from analysis.estimators.dml import PartiallyLinearDML

    s = parallel.ParallelSettings(backend="local", workers=workers) if workers > 1 \
        else parallel.SERIAL
    with parallel.use(s):
        model = PartiallyLinearDML(ml_g=learner(trees), ml_m=learner(trees), n_folds=3,
                                   seed=SEED).fit(X, y, d)
    assert np.array_equal(model.folds_[0], folds), "ours drew other folds than the peers"
    return float(model.coef_)


def _doubleml(X, y, d, folds, trees: int, workers: int) -> float:
    import doubleml

    data = doubleml.DoubleMLData.from_arrays(X, y, d)
    model = doubleml.DoubleMLPLR(data, ml_l=learner(trees), ml_m=learner(trees), n_folds=3,
                                 draw_sample_splitting=False)
    smpls = [(np.flatnonzero(train), np.flatnonzero(test)) for _, test, train in
             fold_splits(folds)]
    model.set_sample_splitting(all_smpls=[smpls])
    model.fit(n_jobs_cv=workers if workers > 1 else None)
    return float(model.coef[0])


def _econml(X, y, d, folds, trees: int, workers: int) -> float:
    from econml.dml import LinearDML

    cv = [(np.flatnonzero(train), np.flatnonzero(test)) for _, test, train in
          fold_splits(folds)]
    model = LinearDML(model_y=learner(trees), model_t=learner(trees), cv=cv,
                      random_state=SEED)
    model.fit(y, d, X=None, W=X)
    return float(np.ravel(model.const_marginal_ate())[0])


RUNNERS = {"fits_serial": (_fits, 1), "fits_2proc": (_fits, None),
           "ours_serial": (_ours, 1), "ours_local": (_ours, None),
           "doubleml_2jobs": (_doubleml, None), "doubleml_serial": (_doubleml, 1),
           "econml_serial": (_econml, 1)}


def run_child(method: str, rows: int, controls: int, trees: int, workers: int) -> dict:
    """One method in this process: simulate, time the fit, report time, memory, estimate."""
    warnings.simplefilter("ignore")
    X, y, d = simulate(rows, controls)
    folds = common_folds(rows)
    fn, w = RUNNERS[method]
    t0 = time.perf_counter()
    estimate = fn(X, y, d, folds, trees, workers if w is None else w)
    seconds = time.perf_counter() - t0
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)  # reap joblib's workers: their peak counts
    with_kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"method": method, "seconds": seconds, "estimate": estimate,
            "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
            "workers_peak_gib": with_kids / 1024**2}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--controls", type=int, default=36)
    p.add_argument("--trees", type=int, default=100)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated subset of {', '.join(METHODS)}")
    p.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(run_child(a.child, a.rows, a.controls, a.trees, a.workers)))
        return {}
    methods = [m for m in a.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        p.error(f"unknown method(s) {unknown}; choose among {', '.join(METHODS)}")
    load0 = os.getloadavg()[0]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    rows = {}
    for m in methods:
        cmd = [sys.executable, __file__, "--child", m, "--rows", str(a.rows), "--controls",
               str(a.controls), "--trees", str(a.trees), "--workers", str(a.workers)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            print(f"{m}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            rows[m] = {"method": m, "error": done.stderr.strip().splitlines()[-1:]}
            continue
        rows[m] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  {m}: {rows[m]['seconds']:.1f} s", file=sys.stderr, flush=True)
    floor = rows.get(FLOOR, {}).get("seconds")
    print(f"\n{a.rows:,} rows x {a.controls} controls, LightGBM {a.trees} trees at 1 thread, "
          f"the same 3 folds for all, each method in its own process "
          f"(load average {load0:.2f} at the start, {os.cpu_count()} cores)\n")
    print("| | seconds | peak GiB | workers GiB | x floor | estimate |\n|---|---|---|---|---|---|")
    for m in methods:
        r = rows[m]
        label = LABELS[m].format(w=a.workers)
        if "error" in r:
            print(f"| {label} | failed: {r['error']} | | | | |")
            continue
        ratio = f"{r['seconds'] / floor:.2f}" if floor else "n/a"
        print(f"| {label} | {r['seconds']:.1f} | {r['peak_gib']:.2f} | "
              f"{r['workers_peak_gib']:.2f} | {ratio} | {r['estimate']:.15g} |")
    out = {"benchmark": "dml/peers", "rows": a.rows, "controls": a.controls, "trees": a.trees,
           "workers": a.workers, "floor_s": None if floor is None else round(floor, 2),
           "methods": {m: ({k: (round(v, 3) if k != "estimate" and isinstance(v, float)
                                else v) for k, v in r.items() if k != "method"})
                       for m, r in rows.items()},
           "load_avg_start": round(load0, 2), "load_avg_end": round(os.getloadavg()[0], 2),
           "cpus": os.cpu_count(), "python": platform.python_version()}
    with (ROOT / "benchmarks" / "results.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(out) + "\n")
    return out


if __name__ == "__main__":
    main()
