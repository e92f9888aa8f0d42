"""Pieces of the ``forest_pricing`` study: the report's printout, method comparison,
forest settings, cross-fitted heterogeneity and policies, and the Monte Carlo check."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.data.pricing import FEATURES, simulate_pricing
from analysis.estimators.cate import LABELS, SHORT, CATEFit, fit_cate, score_cate
from analysis.estimators.policy import dr_potential_outcomes, policy_value, tree_nodes
from analysis.parallel import common_seeds, map_tasks
from analysis.result import coverage_check

REPORT_PRINTOUT = ("Estimated ATE: 0.0000\n95% CI:        (0.6747, 1.2446)\n"
                   "P-value:       0.0000")
"""What the source report printed (a quotation)."""
REPORT = {"ate": 0.0, "ci": (0.6747, 1.2446), "p": 0.0, "n": 5000}
MODIFIER = FEATURES.index("engagement")
"""Column of the engagement score X2, the effect modifier of the report's design."""


def report_calls(forest: CATEFit, X: np.ndarray) -> pd.DataFrame:
    """What each EconML call returns on this data, beside the report's printout.

    Only ``ate__inference()`` is the doubly robust ATE with its interval;
    ``ate_interval(X)`` is a conservative interval for the mean of the forest's CATE
    predictions, and ``effect_interval(X)`` holds one interval per customer.
    """
    est = forest.model
    ate_x = float(np.ravel(est.ate(X))[0])
    lo_x, hi_x = (float(np.ravel(v)[0]) for v in est.ate_interval(X, alpha=0.05))
    lo1, hi1 = (np.ravel(v) for v in est.effect_interval(X, alpha=0.05))
    rows = [
        {"call": "ate__inference() (doubly robust ATE)", "estimate": forest.ate["estimate"],
         "ci_lower": forest.ate["ci_lower"], "ci_upper": forest.ate["ci_upper"],
         "what_it_is": "The ATE and its confidence interval: use this."},
        {"call": "ate(X), ate_interval(X)", "estimate": ate_x, "ci_lower": lo_x,
         "ci_upper": hi_x, "what_it_is": "Mean of the CATE predictions, with a conservative "
                                         "interval for that mean."},
        {"call": "effect(X)[0], effect_interval(X)[0]",
         "estimate": float(np.ravel(est.effect(X[:1]))[0]), "ci_lower": float(lo1[0]),
         "ci_upper": float(hi1[0]), "what_it_is": "One customer's CATE and interval (the "
                                                  "first row): not an ATE at all."},
    ]
    return pd.DataFrame(rows)


def compare_methods(X: np.ndarray, y: np.ndarray, t: np.ndarray, tau: np.ndarray, *,
                    forest: CATEFit, seed: int, n_folds: int, methods: tuple[str, ...],
                    settings: dict[str, dict] | None = None
                    ) -> tuple[pd.DataFrame, dict[str, CATEFit]]:
    """Every method's ATE (beside the true ATE of this sample) and CATE scores;
    ``settings`` maps a method to its extra settings (e.g. the BCF's draws)."""
    others = [m for m in methods if m != "causal_forest"]
    settings = settings or {}
    fitted = map_tasks(_method_fit, [(X, y, t, m, forest.nuisance, n_folds,
                                      settings.get(m, {})) for m in others],
                       seeds=common_seeds(seed, len(others)))
    fits = {"causal_forest": forest, **dict(zip(others, fitted, strict=True))}
    truth = float(tau.mean())
    rows = []
    for fit in fits.values():
        row = fit.tidy().iloc[0].to_dict()
        row.update(score_cate(fit.cate, tau))
        row.update(truth=truth, covers_truth=bool(row["ci_lower"] <= truth <= row["ci_upper"])
                   if np.isfinite(row["std_error"]) else None,
                   has_intervals=bool(fit.cate["lower"].notna().all()))
        rows.append(row)
    return pd.DataFrame(rows), fits


def _method_fit(item: tuple, seed: int) -> CATEFit:
    """One CATE method on the forest's nuisances (one task)."""
    X, y, t, method, nuisance, n_folds, params = item
    return fit_cate(X, y, t, method=method, modifiers=[MODIFIER], seed=seed, n_folds=n_folds,
                    nuisance=nuisance, **params)


def cate_table(data, fits: dict[str, CATEFit]) -> pd.DataFrame:
    """Per customer: the features the figures use, the truth and each method's CATE."""
    f = data.frame
    out = pd.DataFrame({"customer": f["customer"], "engagement": f["engagement"],
                        "usage": f["usage"], "treated": f["treated"], "tau": data.tau})
    for m, fit in fits.items():
        out[f"{m}"] = fit.cate["estimate"].to_numpy()
        if fit.cate["lower"].notna().all():
            out[f"{m}_lower"] = fit.cate["lower"].to_numpy()
            out[f"{m}_upper"] = fit.cate["upper"].to_numpy()
    return out


def tune_forest(X: np.ndarray, y: np.ndarray, t: np.ndarray, tau: np.ndarray, *,
                forest: CATEFit, settings: list[dict], seed: int, n_folds: int) -> pd.DataFrame:
    """The forest under a small grid of settings, scored against the true effects (one
    task per setting; their times are measured by ``benchmarks/bench_forest.py``, not here,
    so that the table is the same on every run)."""
    items = [(X, y, t, tau, forest.nuisance, s, n_folds) for s in settings]
    return pd.DataFrame(map_tasks(_tuning_point, items, seeds=common_seeds(seed, len(items))))


def _tuning_point(item: tuple, seed: int) -> dict:
    X, y, t, tau, nuisance, s, n_folds = item
    fit = fit_cate(X, y, t, method="causal_forest", seed=seed, n_folds=n_folds,
                   nuisance=nuisance, **s)
    return {**s, **score_cate(fit.cate, tau), "ate": fit.ate["estimate"],
            "ate_se": fit.ate["std_error"]}


def cross_fitted(X: np.ndarray, y: np.ndarray, t: np.ndarray, *, nuisance: dict,
                 tau_oof: np.ndarray, folds: np.ndarray, seed: int, cost: float, depth: int,
                 leaf: int) -> dict:
    """The DR scores, and policy-tree decisions learned on the other folds.

    ``tau_oof`` holds the chosen method's out-of-fold CATEs (from
    :func:`~analysis.estimators.cate_selection.out_of_fold_cate`, on the same ``folds``).
    For each fold the policy tree is fitted on the other folds' doubly robust scores and
    applied to it, so every ranking and policy is judged on units it never saw.
    """
    from econml.policy import PolicyTree

    nu = nuisance
    g0, g1 = dr_potential_outcomes(y, t, nu["m_hat"], nu["g0_hat"], nu["g1_hat"])
    psi = g1 - g0
    tree_oof = np.empty(len(y))
    for k in np.unique(folds):
        train, test = folds != k, folds == k
        tree = PolicyTree(max_depth=depth, min_samples_leaf=leaf, random_state=seed)
        tree.fit(X[train], np.column_stack([np.zeros(train.sum()), psi[train] - cost]))
        tree_oof[test] = tree.predict(X[test])
    display = PolicyTree(max_depth=depth, min_samples_leaf=leaf, random_state=seed).fit(
        X, np.column_stack([np.zeros(len(y)), psi - cost]))
    return {"psi": psi, "tau_oof": np.asarray(tau_oof, dtype=np.float64),
            "tree_oof": tree_oof, "tree": tree_nodes(display, FEATURES, X), "folds": folds}


def policies(cf: dict, tau: np.ndarray, cost: float, *, chosen: str,
             forest_oof: np.ndarray) -> pd.DataFrame:
    """Each policy's gain per customer over treating nobody: DR estimate, CI and truth.

    ``chosen`` is the method whose held-out CATEs (``cf["tau_oof"]``) the thresholds use
    (the R-loss winner); the forest's threshold rule is added when it is another.
    """
    n = len(tau)
    name = SHORT[chosen]
    rules = {"Treat nobody": np.zeros(n), "Treat everybody": np.ones(n),
             f"Treat if {name} CATE > 0": (cf["tau_oof"] > 0).astype(float),
             f"Treat if {name} CATE > cost": (cf["tau_oof"] > cost).astype(float)}
    if chosen != "causal_forest":
        rules["Treat if Causal forest CATE > cost"] = (forest_oof > cost).astype(float)
    rules["Depth-2 policy tree"] = cf["tree_oof"]
    pick, picks = best_rule_cross_fitted(rules, cf["psi"], cost, cf["folds"])
    rules.update({BEST_RULE: pick, "Oracle (true effect > cost)": (tau > cost).astype(float)})
    rows = [{"policy": label, **policy_value(pi, cf["psi"], cost, tau)}
            for label, pi in rules.items()]
    out = pd.DataFrame(rows)
    best = out.loc[out["policy"].str.startswith("Oracle"), "true_value"].iloc[0]
    out["regret"] = best - out["true_value"]
    out["chosen_rule"] = out["policy"] == f"Treat if {name} CATE > cost"
    out["picked_in_folds"] = [picks.get(p, 0) for p in out["policy"]]
    return out


BEST_RULE = "Best learned rule (chosen on other folds)"
"""The policy that, on each held-out fold, follows the learned rule with the highest
doubly robust value on the other folds: an honest value for "the best learned policy"."""


def best_rule_cross_fitted(rules: dict[str, np.ndarray], psi: np.ndarray, cost: float,
                           folds: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """Choose the best learned rule on all folds but one, apply it to that fold.

    Choosing the best of several rules by their value on the same scores and reporting
    that value is optimistic (the maximum of noisy estimates); here each fold's decisions
    come from the rule that won on the other folds, so the combined policy is valued on
    scores that did not choose it.

    Returns
    -------
    (array, dict)
        The combined decisions, and how many folds picked each rule.
    """
    learned = [k for k in rules if k not in ("Treat nobody",)]
    out = np.zeros(len(psi))
    picks: dict[str, int] = {}
    for k in np.unique(folds):
        train, test = folds != k, folds == k
        values = [float(np.mean((psi[train] - cost) * rules[r][train])) for r in learned]
        best = learned[int(np.argmax(values))]
        picks[best] = picks.get(best, 0) + 1
        out[test] = rules[best][test]
    return out, picks


# ------------------------------------------------------------------ Monte Carlo check


def coverage_replication(design: tuple[int, dict, int], seed: int) -> dict[str, object]:
    """One simulated data set of the linear design through the headline's pipeline.

    ``design`` is ``(n, forest_settings, n_folds)``.  As in the chapter's headline fit,
    :func:`fit_cate` chooses the propensity and outcome learners among the documented
    candidates (a regularised linear model and two LightGBMs, ``n_jobs=1``, seeded) by
    out-of-fold loss on this data set, fits the causal forest on them and takes the ATE
    from ``ate__inference()``; only the sample size and the number of trees are smaller.
    """
    n, settings, n_folds = design
    data = simulate_pricing(n=n, scenario="linear", seed=seed)
    fit = fit_cate(data.X.to_numpy(), data.frame["revenue"].to_numpy(),
                   data.frame["treated"].to_numpy(), method="causal_forest", seed=seed,
                   n_folds=n_folds, nuisance="auto", **settings)
    score = score_cate(fit.cate, data.tau)
    return {"ate": fit.ate["estimate"], "se": fit.ate["std_error"],
            "ci_lower": fit.ate["ci_lower"], "ci_upper": fit.ate["ci_upper"],
            "sample_ate": float(data.tau.mean()), "cate_coverage": score["coverage"],
            "sqrt_pehe": score["sqrt_pehe"], "propensity_learner": fit.nuisance["t_name"],
            "outcome_learner": fit.nuisance["y_name"]}


INTERVAL_METHODS = ("causal_forest", "linear_dml", "ols_interactions", "bcf")
"""The methods with per-unit CATE intervals."""


def cate_coverage_replication(design: tuple[int, int, int], seed: int) -> dict[str, float]:
    """One simulated data set of the linear design; every method with per-unit intervals
    on the chosen (cross-validated) nuisances, as in the chapter; the share of customers
    whose true effect lies in their 95% interval, per method.

    ``design`` is ``(n, n_trees, n_folds)``.
    """
    n, trees, n_folds = design
    data = simulate_pricing(n=n, scenario="linear", seed=seed)
    X, y, t = (data.X.to_numpy(), data.frame["revenue"].to_numpy(),
               data.frame["treated"].to_numpy())
    out, nuisance = {}, "auto"
    for m in INTERVAL_METHODS:
        extra = {"n_estimators": trees} if m == "causal_forest" else {}
        fit = fit_cate(X, y, t, method=m, modifiers=[MODIFIER], seed=seed, n_folds=n_folds,
                       nuisance=nuisance, **extra)
        nuisance = fit.nuisance
        out[m] = score_cate(fit.cate, data.tau)["coverage"]
    return out


POPULATION_ATE = 0.5
"""The linear design's ATE, :math:`0.5 + 8\\,E[X_2]` with :math:`E[X_2] = 0`."""


def coverage_study(*, reps: int, n: int, forest_settings: dict, n_folds: int,
                   seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Replicate :func:`coverage_replication` (one task per replication, spawned seeds);
    summarise ATE and CATE coverage.

    Returns
    -------
    reps_table : DataFrame
        One row per replication, with ``covered`` (the ATE interval contains
        :data:`POPULATION_ATE`) and the learners chosen in it.
    summary : DataFrame
        ``interval``, ``coverage``, ``mc_se``, ``nominal``, ``band_lower``, ``band_upper``,
        ``mean_se``, ``sd_estimate``, ``bias``, ``reps``.

    Notes
    -----
    The band is :math:`0.95 \\pm 3\\sqrt{0.95 \\cdot 0.05 / R}` over :math:`R`
    replications (clipped to [0, 1]): coverage outside it is more than three Monte Carlo
    standard errors from nominal.  The CATE row is the mean over replications of the share
    of customers whose true effect lies in their interval (its SE is the SD of that share over
    :math:`\\sqrt R`); it has no band, since honest forests' per-unit intervals are not
    expected to reach 95%.
    """
    table = pd.DataFrame(map_tasks(coverage_replication, [(n, dict(forest_settings), n_folds)]
                                   * reps, seed=seed))
    table["covered"] = table["ci_lower"].le(POPULATION_ATE) & table["ci_upper"].ge(POPULATION_ATE)
    p = float(table["covered"].mean())
    half = 3 * float(np.sqrt(0.95 * 0.05 / reps))
    summary = pd.DataFrame([
        {"interval": "ATE (ate__inference), population ATE 0.5", "coverage": p,
         "mc_se": float(np.sqrt(p * (1 - p) / reps)), "nominal": 0.95,
         "band_lower": max(0.0, 0.95 - half), "band_upper": min(1.0, 0.95 + half),
         "mean_se": float(table["se"].mean()), "sd_estimate": float(table["ate"].std()),
         "bias": float(table["ate"].mean() - POPULATION_ATE), "reps": reps},
        {"interval": "CATE intervals, average share of customers covered",
         "coverage": float(table["cate_coverage"].mean()),
         "mc_se": float(table["cate_coverage"].std() / np.sqrt(reps)), "nominal": 0.95,
         "band_lower": float("nan"), "band_upper": float("nan"), "mean_se": float("nan"),
         "sd_estimate": float("nan"), "bias": float("nan"), "reps": reps}])
    return table, summary


COVERAGE_CHECK = ("Causal forest ATE interval, headline pipeline (CV-chosen nuisances), "
                  "simulated subscribers")
"""The ``checks`` row of the Monte Carlo check (the validation appendix lists it)."""


def coverage_rows(table: pd.DataFrame) -> list[dict]:
    """The Monte Carlo rows of the ``checks`` table."""
    return [coverage_check(COVERAGE_CHECK, table["covered"],
                           detail=f"{len(table)} replications of the headline pipeline "
                                  "(learners chosen by cross-validated loss in each, "
                                  "ate__inference)")]


def naive_check(data) -> dict:
    """The counterexample: the raw difference in mean revenue between offered and
    not-offered customers (with a Welch interval), against the sample's true ATE; the offer
    went to engaged, high-revenue customers, so it should miss."""
    from analysis.result import check_row

    f = data.frame
    y1 = f.loc[f["treated"] == 1, "revenue"].to_numpy()
    y0 = f.loc[f["treated"] == 0, "revenue"].to_numpy()
    diff = float(y1.mean() - y0.mean())
    se = float(np.sqrt(y1.var(ddof=1) / len(y1) + y0.var(ddof=1) / len(y0)))
    return check_row("Naive difference in means: ATE, linear effect", "planted truth", diff,
                     diff - 1.959964 * se, diff + 1.959964 * se, float(data.tau.mean()),
                     "true ATE of the sample", role="counterexample")


def method_checks(methods: pd.DataFrame, scenario: str) -> list[dict]:
    """Each method's ATE interval against the true ATE of the sample."""
    from analysis.result import check_row

    return [check_row(f"{LABELS[r.method]}: ATE, {scenario} effect", "planted truth",
                      r.estimate, r.ci_lower, r.ci_upper, r.truth, "true ATE of the sample")
            for r in methods.itertuples() if np.isfinite(r.std_error)]
