"""Pieces of the ``aipw_panel`` study: descriptives, overlap and balance, segments, the
Monte Carlo check, and the tables the chapter reads.

Kept apart from :mod:`analysis.studies.aipw_panel` so each module stays short;
everything here is computed from the data, the fitted estimators or the simulator.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from analysis.data.kuairec_sim import simulate_kuairec
from analysis.estimators.aipw import AIPW
from analysis.estimators.bootstrap import ClusterBootstrap, cluster_bootstrap, percentile_interval
from analysis.estimators.diagnostics import standardized_differences
from analysis.estimators.gmethods import msm, stabilized_weights
from analysis.estimators.heterogeneity import holm, segment_effects
from analysis.estimators.inference import group_means, solve_score
from analysis.estimators.linear import linear_adjustment_score
from analysis.estimators.selection import default_candidates
from analysis.estimators.sensitivity import (
    sensitivity_benchmark,
    sensitivity_bounds,
    sensitivity_grid,
)
from analysis.features.panel import COVARIATES, DESCRIPTIONS, build_panel
from analysis.parallel import map_tasks
from analysis.result import checks_frame, coverage_check, tidy_frame, tidy_row

REPORT = {"users": 91, "user_days": 4698, "aipw": 1.09, "aipw_ci": (-7.3, 12.0),
          "msm": -2.69, "msm_ci": (-12.3, 5.7),
          "gcomp_lgbm": 0.0359, "gcomp_lgbm_ci": (-0.64, 1.87),
          "gcomp_ridge": 2.3288, "gcomp_ridge_ci": (-6.32, 9.36)}
"""The source report's numbers on the real KuaiRec data (quotations, not results), each
under the label its comparison table gives it: g-computation with a LightGBM outcome
model 0.0359 [-0.64, 1.87], with a ridge outcome model 2.3288 [-6.32, 9.36]."""

SEGMENT_FAMILIES = {
    "activity": "Prior activity (plays per day, t−3..t−1)",
    "high_share": "Prior high-watch days (of t−3..t−1)",
    "watch_ratio": "Prior watch ratio (t−3..t−1)",
    "calendar": "Day of the week",
}
CLIPS = (0.001, 0.01, 0.05)
TRIMS = (None, 0.05, 0.1)


def describe(panel_frame: pd.DataFrame, dropped: Mapping[str, int]) -> pd.DataFrame:
    """The panel at a glance."""
    f = panel_frame
    rows = [("Users", f"{f['user'].nunique():,}"), ("User-days in the panel", f"{len(f):,}"),
            ("Days covered", f"{f['day'].min():%Y-%m-%d} to {f['day'].max():%Y-%m-%d}"),
            ("High-watch days (treated share)", f"{f['treated'].mean():.1%}"),
            ("Mean plays over the next 7 days", f"{f['outcome'].mean():,.1f}"),
            ("Mean plays per day (day t)", f"{f['plays'].mean():,.1f}")]
    rows += [(label, f"{n:,}") for label, n in dropped.items()]
    return pd.DataFrame(rows, columns=["measure", "value"])


def covariate_table() -> pd.DataFrame:
    """Every covariate and its definition (all from days before t, or t's calendar)."""
    return pd.DataFrame({"covariate": COVARIATES,
                         "definition": [DESCRIPTIONS[c] for c in COVARIATES]})


def overlap(m_hat: np.ndarray, d: np.ndarray, bins: int = 30) -> pd.DataFrame:
    """Share of each arm's user-days per propensity bin."""
    edges = np.linspace(0, 1, bins + 1)
    h1, _ = np.histogram(m_hat[d == 1], bins=edges)
    h0, _ = np.histogram(m_hat[d == 0], bins=edges)
    return pd.DataFrame({"lower": edges[:-1], "upper": edges[1:],
                         "treated": h1 / max(h1.sum(), 1), "untreated": h0 / max(h0.sum(), 1)})


def effective_sample_size(w: np.ndarray, d: np.ndarray) -> dict[str, float]:
    """Kish's effective sample size :math:`(\\sum w)^2/\\sum w^2` of each arm."""
    out = {}
    for arm, name in ((1, "treated"), (0, "untreated")):
        wa = w[d == arm]
        out[f"ess_{name}"] = float(wa.sum() ** 2 / np.sum(wa**2))
        out[f"n_{name}"] = int((d == arm).sum())
    return out


def balance(X: pd.DataFrame, d: np.ndarray, w: np.ndarray) -> pd.DataFrame:
    """Standardised mean differences before and after weighting."""
    before = standardized_differences(X, d)
    after = standardized_differences(X, d, w)
    out = pd.DataFrame({"covariate": before.index, "smd_before": before.to_numpy(),
                        "smd_after": after.to_numpy()})
    return out.sort_values("smd_before", key=np.abs, ascending=False).reset_index(drop=True)


def clip_sensitivity(model: AIPW) -> pd.DataFrame:
    """AIPW under every clip and trimming rule, for the selected propensity model and the
    large LightGBM one (stored out-of-fold nuisances, no refit)."""
    rows = []
    g = model.selected_["ml_g"]
    for m_key in dict.fromkeys([model.selected_["ml_m"], "lgbm-large"]):
        if m_key not in model.candidates_["m_hat"]:
            continue
        for trim in TRIMS:
            for clip in CLIPS:
                r = model.combination(m_key, g, clip=clip, trim=trim)
                rows.append({"propensity": m_key, "clip": clip,
                             "trim": np.nan if trim is None else trim,
                             "rule": f"clip {clip:g}" + ("" if trim is None
                                                         else f", trim {trim:g}"),
                             "estimate": r["estimate"], "std_error": r["std_error"],
                             "ci_lower": r["estimate"] - 1.959964 * r["std_error"],
                             "ci_upper": r["estimate"] + 1.959964 * r["std_error"],
                             "n_used": r["n_used"], "share_clipped": r["share_clipped"]})
    return pd.DataFrame(rows)


def segment_codes(f: pd.DataFrame) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Integer codes and labels of every segment family, from pre-treatment information."""
    def terciles(x: pd.Series, names: list[str]) -> tuple[np.ndarray, list[str]]:
        cuts = np.unique(np.quantile(x, [1 / 3, 2 / 3]))
        codes = np.searchsorted(cuts, x.to_numpy(), side="right")
        return codes, names[: len(cuts) + 1]

    share = np.rint(f["prior3_high_share"].to_numpy() * 3).astype(int)
    present = np.unique(share)
    return {
        "activity": terciles(f["prior3_plays"], ["lightest third", "middle third",
                                                 "heaviest third"]),
        "high_share": (np.searchsorted(present, share),
                       [f"{k} of 3 days" for k in present]),
        "watch_ratio": terciles(f["prior3_watch_ratio"], ["lowest third", "middle third",
                                                          "highest third"]),
        "calendar": (f["weekend"].to_numpy().astype(int), ["weekday", "weekend"]),
    }


def segments(psi: np.ndarray, f: pd.DataFrame, clusters: np.ndarray, boot: ClusterBootstrap,
             effects: np.ndarray | None) -> pd.DataFrame:
    """AIPW effects in every segment, with Holm-adjusted p-values and Bonferroni intervals
    across all segments of all families (one family of tests)."""
    frames = []
    codes = segment_codes(f)
    m = sum(len(labels) for _, labels in codes.values())
    for key, (g, labels) in codes.items():
        t = segment_effects(psi, g, labels, clusters=clusters, boot=boot, n_tests=m)
        t.insert(0, "family", SEGMENT_FAMILIES[key])
        t.insert(1, "family_key", key)
        if effects is not None:
            t["truth"] = [float(effects[g == h].mean()) for h in range(len(labels))]
        frames.append(t)
    out = pd.concat(frames, ignore_index=True)
    out["p_holm"] = holm(out["p_value"].to_numpy())  # one family: every segment
    out["n_tests"] = m
    if effects is not None:
        out["covers_truth_adj"] = (out["boot_lower_adj"] <= out["truth"]) & \
            (out["truth"] <= out["boot_upper_adj"])
    return out


def segment_contrasts(psi: np.ndarray, f: pd.DataFrame, clusters: np.ndarray,
                      boot: ClusterBootstrap, effects: np.ndarray | None) -> pd.DataFrame:
    """Differences between the segments of each family, with Holm's correction over all
    of them (one family of tests).

    A targeting rule needs one segment to gain *more than another*, not one segment to
    differ from zero: for every pair :math:`a < b` of a family's segments this is
    :math:`\\hat\tau_a - \\hat\tau_b` with the cluster-robust variance
    :math:`V_{aa} + V_{bb} - 2V_{ab}` of :func:`~analysis.estimators.inference.group_means`
    (clusters span segments, so the means are correlated), a normal p-value, Holm's
    adjusted p-value over every contrast of every family, and Bonferroni-widened
    bootstrap intervals from the same user bootstrap.
    """
    rows, reps_all, truths = [], [], []
    for key, (g, labels) in segment_codes(f).items():
        means, cov, _ = group_means(psi, g, clusters)
        reps = boot.mean(psi, g)
        for a in range(len(labels)):
            for b in range(a + 1, len(labels)):
                se = float(np.sqrt(max(cov[a, a] + cov[b, b] - 2 * cov[a, b], 0.0)))
                rows.append(tidy_row(f"{labels[a]} − {labels[b]}", means[a] - means[b], se,
                                     family=SEGMENT_FAMILIES[key], family_key=key,
                                     first=labels[a], second=labels[b]))
                reps_all.append(reps[:, a] - reps[:, b])
                if effects is not None:
                    truths.append(float(effects[g == a].mean() - effects[g == b].mean()))
    out = tidy_frame(rows)
    m = len(out)
    out["p_holm"] = holm(out["p_value"].to_numpy())
    lo, hi = percentile_interval(np.column_stack(reps_all), 1 - 0.05 / m)
    out["boot_lower_adj"], out["boot_upper_adj"] = lo, hi
    out["n_tests"] = m
    if effects is not None:
        out["truth"] = truths
        out["covers_truth_adj"] = (out["boot_lower_adj"] <= out["truth"]) & \
            (out["truth"] <= out["boot_upper_adj"])
    return out


def negative_control(model: AIPW, X: np.ndarray, nc: np.ndarray, d: np.ndarray,
                     u: np.ndarray, *, n_folds: int, clip: float, seed: int) -> pd.DataFrame:
    """AIPW and the naive comparison on the negative-control outcome.

    The outcome is the plays of days :math:`t-7..t-4`, which day :math:`t`'s exposure
    cannot change: the true effect is zero.  The same learners as the headline (the
    ones cross-validation chose) estimate it; an interval that excludes zero would
    flag confounding the covariates miss.  The naive difference is shown beside it as
    the counterexample: it "finds" an effect on the past.
    """
    cands_m = default_candidates("classifier", seed=seed)
    cands_g = default_candidates("regressor", seed=seed)
    fit = AIPW(ml_m=cands_m[model.selected_["ml_m"]], ml_g=cands_g[model.selected_["ml_g"]],
               n_folds=n_folds, trimming_threshold=clip, seed=seed).fit(X, nc, d, clusters=u)
    naive = solve_score(*linear_adjustment_score(None, nc, d), u)
    return tidy_frame([
        tidy_row("AIPW, negative-control outcome", fit.coef_, fit.se_, method="aipw"),
        tidy_row("Naive difference, negative-control outcome", naive.theta, naive.se,
                 method="naive")])


SENSITIVITY_BENCHMARKS = {
    "recent activity": ["lag1_plays", "log_lag1_plays", "prior3_plays", "log_prior3_plays"],
    "the user's longer history": ["user_high_share", "user_plays_per_day",
                                  "log_prior_plays", "days_active"],
}
"""Groups of observed covariates whose omission calibrates an unobserved confounder."""


def sensitivity(model: AIPW, X: np.ndarray, y: np.ndarray, d: np.ndarray,
                u: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Omitted-variable bounds on the headline AIPW (Chernozhukov et al., 2022).

    Each benchmark refits the headline model without a group of observed covariates
    (:data:`SENSITIVITY_BENCHMARKS`); the strengths ``cf_y``, ``cf_d`` it implies
    bound a confounder "as strong as" that group, with :math:`\rho = 1` (adversarial).

    Returns
    -------
    bounds : DataFrame
        One row per scenario (no confounder, each benchmark): the bounds on the ATE, their
        confidence bounds, and the robustness values RV and RVa.
    grid : DataFrame
        Lower bounds over a grid of ``cf_d`` x ``cf_y`` for the contour figure.
    """
    rows = [sensitivity_bounds(model, 0.0, 0.0, term="no unobserved confounder")]
    for label, cols in SENSITIVITY_BENCHMARKS.items():
        idx = [COVARIATES.index(c) for c in cols]
        b = sensitivity_benchmark(model, X, y, d, idx, clusters=u, name=label).iloc[0]
        row = sensitivity_bounds(model, min(b["cf_y"], 0.99), min(b["cf_d"], 0.99),
                                 term=f"as strong as {label}")
        rows.append(row.assign(benchmark_rho=b["rho"], benchmark_delta=b["delta_theta"]))
    bounds = pd.concat(rows, ignore_index=True)
    grid = sensitivity_grid(model, max_cf=(0.15, 0.15), size=31, with_ci=False)
    return bounds, grid


# ------------------------------------------------------------------ Monte Carlo check


POPULATION_USERS = 20_000
"""Users simulated to compute the Monte Carlo design's true ATE."""


def population_ate(*, n_days: int, horizon: int, seed: int,
                   n_users: int = POPULATION_USERS) -> float:
    """The design's ATE: the mean individual effect over a very large simulated population."""
    sim = simulate_kuairec(n_users=n_users, n_days=n_days, horizon=horizon, seed=seed)
    panel = build_panel(sim.log, horizon=horizon).frame
    return float(panel.merge(sim.truth["effects"], on=["user", "t"])["effect"].mean())


def coverage_replication(design: tuple[int, int, int, int, int, float],
                         seed: int) -> dict[str, float]:
    """One Monte Carlo replication of the chapter's headline pipeline: simulate, build
    the panel, choose the learners by cross-validated loss, estimate, record intervals.

    ``design`` is ``(n_users, n_days, horizon, n_folds, n_boot, clip)``.  The nuisances
    are chosen exactly as the headline chooses them (``ml_m="auto"``, ``ml_g="auto"``:
    the candidates of :func:`~analysis.estimators.selection.default_candidates` scored by
    cross-validated loss), with the headline's folds (one repetition) and clipping.
    """
    n_users, n_days, horizon, n_folds, n_boot, clip = design
    sim = simulate_kuairec(n_users=n_users, n_days=n_days, horizon=horizon, seed=seed,
                           with_effects=False)
    f = build_panel(sim.log, horizon=horizon).frame
    X, y = f[COVARIATES].to_numpy(), f["outcome"].to_numpy()
    d, u = f["treated"].to_numpy(), f["user"].to_numpy()
    model = AIPW(ml_m="auto", ml_g="auto", n_folds=n_folds, trimming_threshold=clip,
                 seed=seed).fit(X, y, d, clusters=u)
    boot = cluster_bootstrap(u, n_boot, seed)
    lo, hi = percentile_interval(boot.mean(model.psi_b_[0]))
    w = stabilized_weights(d, model.nuisance_["m_hat"][0])
    ms = msm(y, d, w, u)
    naive = boot.mean(y, d.astype(int))
    nlo, nhi = percentile_interval(naive[:, 1] - naive[:, 0])
    return {"selected_m": model.selected_["ml_m"], "selected_g": model.selected_["ml_g"],
            "aipw": model.coef_, "aipw_se": model.se_, "aipw_boot_lower": float(lo),
            "aipw_boot_upper": float(hi), "msm": ms["estimate"], "msm_se": ms["std_error"],
            "naive": float(y[d == 1].mean() - y[d == 0].mean()), "naive_lower": float(nlo),
            "naive_upper": float(nhi)}


def coverage_study(*, reps: int, n_users: int, n_days: int, horizon: int, n_folds: int,
                   n_boot: int, seed: int, clip: float = 0.01
                   ) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Replicate :func:`coverage_replication` and summarise the coverage of each interval.

    Returns
    -------
    reps_table : DataFrame
        One row per replication.
    summary : DataFrame
        ``interval``, ``coverage``, ``mc_se``, ``mean_se`` or width, ``bias``, ``reps``.
    truth : float
        The design's ATE (:func:`population_ate`).
    """
    truth = population_ate(n_days=n_days, horizon=horizon, seed=seed + 1)
    design = (n_users, n_days, horizon, n_folds, n_boot, clip)
    table = pd.DataFrame(map_tasks(coverage_replication, [design] * reps, seed=seed))
    z = 1.959964
    covered = {
        "AIPW, analytic cluster SE": (table["aipw"] - truth).abs() <= z * table["aipw_se"],
        "AIPW, user-cluster bootstrap": (table["aipw_boot_lower"] <= truth)
        & (truth <= table["aipw_boot_upper"]),
        "MSM (stabilised weights), cluster SE": (table["msm"] - truth).abs()
        <= z * table["msm_se"],
        "Naive difference, user-cluster bootstrap": (table["naive_lower"] <= truth)
        & (truth <= table["naive_upper"]),
    }
    est = {"AIPW, analytic cluster SE": "aipw", "AIPW, user-cluster bootstrap": "aipw",
           "MSM (stabilised weights), cluster SE": "msm",
           "Naive difference, user-cluster bootstrap": "naive"}
    rows = []
    for name, c in covered.items():
        p = float(c.mean())
        mc_se = float(np.sqrt(0.95 * 0.05 / reps))  # at the nominal level
        rows.append({"interval": name, "coverage": p, "nominal": 0.95, "reps": reps,
                     "mc_se": float(np.sqrt(p * (1 - p) / reps)),
                     "band_lower": 0.95 - 3 * mc_se, "band_upper": 0.95 + 3 * mc_se,
                     "bias": float(table[est[name]].mean() - truth),
                     "sd_estimate": float(table[est[name]].std())})
    for name, c in covered.items():
        table[f"covered: {name}"] = c.to_numpy()
    return table, pd.DataFrame(rows), truth


def coverage_checks(reps_table: pd.DataFrame) -> list[dict]:
    """The Monte Carlo rows of the ``checks`` table."""
    rows = []
    for col in [c for c in reps_table.columns if c.startswith("covered: ")]:
        name = col.removeprefix("covered: ")
        role = "counterexample" if name.startswith("Naive") else "method"
        rows.append(coverage_check(f"{name} (simulated panels)", reps_table[col], role=role))
    return rows


def known_answer_checks(estimates: pd.DataFrame, segs: pd.DataFrame,
                        reps_table: pd.DataFrame | None,
                        nc: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every known-answer check: estimates and segments beside the planted truth, the
    negative-control outcome beside zero (real and simulated data), and the Monte Carlo
    coverage."""
    from analysis.result import check_row

    rows = []
    if nc is not None:
        for r in nc.itertuples():
            rows.append(check_row(f"{r.term} (plays on days t−7..t−4)", "negative control",
                                  r.estimate, r.ci_lower, r.ci_upper, 0.0,
                                  "no effect on the past",
                                  role="counterexample" if r.method == "naive" else "method"))
    if "truth" in estimates:
        for r in estimates.dropna(subset=["std_error"]).itertuples():
            rows.append(check_row(f"{r.term} vs the planted effect", "planted truth",
                                  r.estimate, r.ci_lower, r.ci_upper, r.truth,
                                  "true ATE of the panel",
                                  role="counterexample" if r.method == "naive" else "method"))
    if "truth" in segs:
        for r in segs.itertuples():
            rows.append(check_row(f"AIPW, {r.family}: {r.term}", "planted truth", r.estimate,
                                  r.boot_lower_adj, r.boot_upper_adj, r.truth,
                                  "true segment effect",
                                  detail=f"bootstrap interval, Bonferroni over {r.n_tests}"))
    if reps_table is not None:
        rows += coverage_checks(reps_table)
    return checks_frame(rows)
