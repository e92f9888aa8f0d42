"""Checks of the ``dml_genre`` headline: omitted-variable sensitivity and headline coverage.

Two pieces kept apart from :mod:`analysis.studies.dml_genre` so each module stays short:

* :func:`sensitivity` bounds the headline AIPW (and PLR) estimate under an unobserved
  confounder of given strength (Chernozhukov, Cinelli, Newey, Sharma & Syrgkanis, 2022),
  with strengths benchmarked by leaving observed covariate groups out;
* :func:`headline_coverage` is a Monte Carlo study of the *headline pipeline* itself:
  AIPW with LightGBM nuisances, multiway cross-fitting by user and movie and two-way
  cluster-robust intervals, on a simulated two-way clustered ratings design with a
  known average effect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.estimators.aipw import AIPW
from analysis.estimators.core import default_learner
from analysis.estimators.sensitivity import (
    sensitivity_benchmark,
    sensitivity_bounds,
    sensitivity_grid,
)
from analysis.parallel import map_tasks, task_seeds

SCENARIO_CF = 0.03
"""Illustrative confounder strength of the bounds table (``cf_y = cf_d``; DoubleML default)."""

BENCHMARKS = {
    "release year": ["movie_year", "movie_age", "movie_year_missing", "year_gap"],
    "genre taste": ["share_drama", "share_romance", "share_drama_romance", "dev_drama",
                    "dev_romance", "dev_drama_romance"],
}
"""Observed covariate groups left out to calibrate how strong a confounder could be."""

BENCHMARK_KEYS = {"release year": "year", "genre taste": "taste"}
"""Short names of the benchmarks in the facts (``sens_year_lo``, ``sens_taste_lo``, ...)."""

CF_CAP = 0.99
"""Largest strength used for a benchmark's bounds (``cf_d = 1`` makes the bound infinite)."""


def sensitivity(models: dict[str, object], X: pd.DataFrame, y: np.ndarray, d: np.ndarray,
                clusters: np.ndarray, user: np.ndarray, movie: np.ndarray,
                grid_size: int = 41) -> dict[str, pd.DataFrame]:
    """Bounds, robustness values, benchmarks and a contour grid for the headline.

    Parameters
    ----------
    models : dict
        ``{"plr": fitted PLR, "aipw": fitted AIPW}`` (fitted on ``X, y, d, clusters``).
    clusters : array
        The clusters of the fit (one or two columns).
    user, movie : arrays
        The two ways of the variance of every bound.

    Returns
    -------
    dict of DataFrame
        ``sensitivity`` (one row per model and scenario: the scenario ``cf_y = cf_d =``
        :data:`SCENARIO_CF`, and for AIPW each benchmark's strength; ``rho = 1``),
        ``sensitivity_benchmarks`` (``benchmark, cf_y, cf_d, rho, delta_theta``) and
        ``sensitivity_grid`` (AIPW bounds on theta over ``cf_d`` × ``cf_y``).
    """
    aipw = models["aipw"]
    cols = [c for c in X.columns]
    bench = pd.concat([sensitivity_benchmark(aipw, X, y, d, [c for c in g if c in cols],
                                             clusters=clusters, name=name)
                       for name, g in BENCHMARKS.items() if any(c in cols for c in g)],
                      ignore_index=True)
    rows = []
    for term, model in models.items():
        row = sensitivity_bounds(model, SCENARIO_CF, SCENARIO_CF, clusters=user, second=movie,
                                 term=term)
        row["scenario"] = f"cf_y = cf_d = {SCENARIO_CF:g}"
        rows.append(row)
    for b in bench.itertuples():
        row = sensitivity_bounds(aipw, min(b.cf_y, CF_CAP), min(b.cf_d, CF_CAP), clusters=user,
                                 second=movie, term="aipw")
        row["scenario"] = f"as strong as {b.benchmark}"
        rows.append(row)
    table = pd.concat(rows, ignore_index=True)
    rv = float(table.loc[table["term"] == "aipw", "rv"].iloc[0])
    top = float(np.clip(np.ceil(60 * rv) / 20, 0.1, 0.5))  # about three times the RV
    grid = sensitivity_grid(aipw, max_cf=(top, top), size=grid_size, with_ci=False)
    return {"sensitivity": table, "sensitivity_benchmarks": bench, "sensitivity_grid": grid}


def sensitivity_facts(tables: dict[str, pd.DataFrame],
                      truth: float | None = None) -> dict[str, object]:
    """The sentence-level facts of the sensitivity section.

    Besides the headline numbers (``sens_rv``, ``sens_rva``, the bounds at
    :data:`SCENARIO_CF`), each benchmark of :data:`BENCHMARK_KEYS` gives
    ``sens_<key>_{cf_y, cf_d, lo, hi, ci_lo, ci_hi, crosses, capped, rho}``: the strengths
    used for its bounds (capped at :data:`CF_CAP`), the bounds, their one-sided confidence
    bounds, whether the bounds include zero, whether a strength was capped, and the
    benchmark's own ``rho``.  With a known ``truth``, ``sens_covers_truth`` says whether
    the bounds at :data:`SCENARIO_CF` contain it.
    """
    t = tables["sensitivity"]
    main = t[(t["term"] == "aipw") & t["scenario"].str.startswith("cf_y")].iloc[0]
    plr = t[(t["term"] == "plr")].iloc[0]
    bench = t[t["scenario"].str.startswith("as strong")]
    crosses = [(lo <= 0 <= hi) for lo, hi in zip(bench["theta_lower"], bench["theta_upper"],
                                                  strict=True)]
    strongest = tables["sensitivity_benchmarks"].sort_values("cf_y").iloc[-1]
    out: dict[str, object] = {
        "sens_cf": SCENARIO_CF, "sens_rv": float(main["rv"]), "sens_rva": float(main["rva"]),
        "sens_rva_zero": bool(main["rva"] == 0), "sens_rv_zero": bool(main["rv"] == 0),
        "sens_lo": float(main["theta_lower"]), "sens_hi": float(main["theta_upper"]),
        "sens_crosses": bool(main["theta_lower"] <= 0 <= main["theta_upper"]),
        "sens_ci_lo": float(main["ci_bound_lower"]),
        "sens_ci_hi": float(main["ci_bound_upper"]),
        "sens_plr_rv": float(plr["rv"]), "sens_plr_rva": float(plr["rva"]),
        "sens_n_bench": len(bench), "sens_bench_crossing": int(sum(crosses)),
        "sens_bench_name": str(strongest["benchmark"]),
        "sens_bench_cf_y": float(strongest["cf_y"]),
        "sens_bench_cf_d": float(strongest["cf_d"])}
    raw = tables["sensitivity_benchmarks"].set_index("benchmark")
    for name, key in BENCHMARK_KEYS.items():
        rows = bench[bench["scenario"] == f"as strong as {name}"]
        if rows.empty:
            continue
        r, b = rows.iloc[0], raw.loc[name]
        out.update({f"sens_{key}_cf_y": float(r["cf_y"]), f"sens_{key}_cf_d": float(r["cf_d"]),
                    f"sens_{key}_lo": float(r["theta_lower"]),
                    f"sens_{key}_hi": float(r["theta_upper"]),
                    f"sens_{key}_ci_lo": float(r["ci_bound_lower"]),
                    f"sens_{key}_ci_hi": float(r["ci_bound_upper"]),
                    f"sens_{key}_crosses": bool(r["theta_lower"] <= 0 <= r["theta_upper"]),
                    f"sens_{key}_capped": bool(max(b["cf_y"], b["cf_d"]) > CF_CAP),
                    f"sens_{key}_rho": float(b["rho"])})
    if truth is not None:
        out["sens_covers_truth"] = bool(main["theta_lower"] <= truth <= main["theta_upper"])
    return out


# --------------------------------------------------------------------------- coverage


def twoway_design(rng: np.random.Generator, *, n_users: int, n_movies: int, n_ratings: int,
                  theta: float = 0.3) -> tuple[np.ndarray, ...]:
    """One draw of a ratings design clustered by user *and* by movie, with a known ATE.

    Returns
    -------
    X, y, d, user, movie : ndarrays

    Notes
    -----
    Users :math:`u` and movies :math:`m` are drawn with skewed activity and popularity
    (Zipf-like weights), :math:`z_u, w_m \\sim N(0,1)` observed,
    :math:`a_u, b_m, \\xi_u` unobserved, and for rating :math:`i` of :math:`(u, m)`:

    .. math::

        P(D=1\\mid X) = \\Lambda(0.7 z_u + 0.7 w_m - 0.5), \\qquad
        Y = (\\theta + 0.3\\xi_u) D + z_u + 0.5 w_m + \\sin(2 z_u) + a_u + b_m + \\varepsilon .

    :math:`D` uses uniforms from a Gaussian copula with a shared shock per user and
    per movie (the propensity stays exactly logistic), so treatment residuals, like
    outcomes, are correlated within users and within movies.  The ATE is :math:`\\theta`.
    """
    wu = 1 / np.arange(1, n_users + 1) ** 0.6
    wm = 1 / np.arange(1, n_movies + 1) ** 0.8
    user = rng.choice(n_users, n_ratings, p=wu / wu.sum())
    movie = rng.choice(n_movies, n_ratings, p=wm / wm.sum())
    z, a, xi = (rng.standard_normal(n_users) for _ in range(3))
    w, b = rng.standard_normal(n_movies), 0.5 * rng.standard_normal(n_movies)
    su, sm = rng.standard_normal(n_users), rng.standard_normal(n_movies)
    x = rng.standard_normal(n_ratings)
    p = 1 / (1 + np.exp(-(0.7 * z[user] + 0.7 * w[movie] - 0.5)))
    u = stats.norm.cdf(np.sqrt(0.3) * su[user] + np.sqrt(0.3) * sm[movie]
                       + np.sqrt(0.4) * rng.standard_normal(n_ratings))
    d = (u < p).astype(float)
    y = ((theta + 0.3 * xi[user]) * d + z[user] + 0.5 * w[movie] + np.sin(2 * z[user])
         + a[user] + b[movie] + rng.standard_normal(n_ratings))
    return np.column_stack([z[user], w[movie], x]), y, d, user, movie


def headline_replication(design: tuple, seed: int) -> tuple[float, float, float]:
    """One replication: the headline AIPW (LightGBM, multiway folds, two-way SE).

    Returns ``(estimate, se_twoway, se_user)``.
    """
    n_users, n_movies, n_ratings, theta, n_folds, n_estimators = design
    rng = np.random.default_rng(seed)
    X, y, d, user, movie = twoway_design(rng, n_users=n_users, n_movies=n_movies,
                                         n_ratings=n_ratings, theta=theta)
    learner = {k: default_learner(k, n_estimators=n_estimators, learning_rate=0.1,
                                  min_child_samples=20, seed=seed)
               for k in ("regressor", "classifier")}
    m = AIPW(ml_g=learner["regressor"], ml_m=learner["classifier"], n_folds=n_folds,
             seed=seed)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(X, y, d, clusters=np.column_stack([user, movie]))
    return (m.coef_, m.se_, m.std_error(user))


def headline_coverage(n_reps: int, *, n_users: int, n_movies: int, n_ratings: int,
                      n_folds: int, n_estimators: int, theta: float = 0.3,
                      level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Monte Carlo coverage of the headline pipeline, through :func:`analysis.parallel.map_tasks`.

    Returns
    -------
    DataFrame
        One row per replication: ``estimate, se, se_user, covered`` (two-way interval)
        and ``covered_user`` (clustered by user only).
    """
    crit = float(stats.norm.ppf(0.5 + level / 2))
    design = (n_users, n_movies, n_ratings, theta, n_folds, n_estimators)
    rows = map_tasks(headline_replication, [design] * n_reps,
                     seeds=task_seeds(seed, n_reps))
    out = pd.DataFrame(rows, columns=["estimate", "se", "se_user"])
    out["covered"] = (out["estimate"] - theta).abs() <= crit * out["se"]
    out["covered_user"] = (out["estimate"] - theta).abs() <= crit * out["se_user"]
    return out


COARSE_MC_SE = 0.03
"""A Monte Carlo SE above this (fewer than about 50 replications) can only show large
shortfalls; the text says so (``hl_coarse``)."""


def headline_coverage_facts(reps: pd.DataFrame, theta: float = 0.3) -> dict[str, object]:
    """Coverage, its Monte Carlo standard error and whether it undercovers.

    Notes
    -----
    With :math:`\\hat p` the share of the :math:`R` replications whose two-way interval
    covers :math:`\\theta`, the Monte Carlo SE is
    :math:`\\sqrt{\\max(\\hat p(1-\\hat p), 1/(4R))/R}` (the floor keeps it positive when every
    interval covers), and ``hl_undercovers`` is :math:`\\hat p < 0.95 - 2\\,\\mathrm{SE}`.
    """
    p = float(reps["covered"].mean())
    n = len(reps)
    mc = float(np.sqrt(max(p * (1 - p), 0.25 / n) / n))
    return {"hl_coverage": p, "hl_coverage_user": float(reps["covered_user"].mean()),
            "hl_reps": n, "hl_mc_se": mc, "hl_bias": float(reps["estimate"].mean() - theta),
            "hl_sd": float(reps["estimate"].std()), "hl_mean_se": float(reps["se"].mean()),
            "hl_bias_mc_se": float(reps["estimate"].std() / np.sqrt(n)),
            "hl_undercovers": bool(p < 0.95 - 2 * mc), "hl_theta": theta,
            "hl_coarse": bool(mc > COARSE_MC_SE)}
