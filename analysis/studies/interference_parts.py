"""Pieces of the ``interference_slates`` study: estimates beside the oracle, the
Hudgens-Halloran design, heterogeneity, targeting, the sensitivity grid and the Monte
Carlo check."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.estimators.aipw import AIPW
from analysis.estimators.crossfit import cross_fit, make_folds
from analysis.estimators.linear import cluster_ols
from analysis.estimators.selection import default_candidates
from analysis.interference.clicks import (
    ClickModel,
    click_probability,
    expected_clicks,
    other_share,
)
from analysis.interference.designs import (
    SPILLOVERS,
    Experiment,
    promoted_count,
    run_design,
    spillover_masks,
)
from analysis.interference.estimators import (
    difference_in_means,
    hudgens_halloran,
    item_level_naive,
    lin_adjustment,
)
from analysis.interference.slates import Slates
from analysis.parallel import map_tasks
from analysis.result import check_row, coverage_check, tidy_row

PER_SLATE = "clicks per promoted slate"
PER_ITEM = "click-rate difference per item"
REPORT = {"direct": 0.172, "same_cluster_item": -0.058, "all_item": -0.044,
          "same_cluster": -0.145, "same_cluster_per_1000": -145.4, "total": -0.308,
          "aipw_total": -0.304, "dim_total": -0.308, "oracle_total": -0.316}
"""The source report's numbers (quotations, not results), each in the unit of
:data:`REPORT_UNITS`.  The report's -0.058 (same-cluster competitors) and -0.044 (all
non-focal items) are differences in the click rate of one item (their rows count items),
not per slate; its per-slate same-cluster figure is -0.145 (-145.4 per 1,000 promoted
slates)."""
REPORT_UNITS = {"direct": PER_SLATE, "same_cluster_item": PER_ITEM, "all_item": PER_ITEM,
                "same_cluster": PER_SLATE,
                "same_cluster_per_1000": "clicks per 1,000 promoted slates",
                "total": PER_SLATE, "aipw_total": PER_SLATE, "dim_total": PER_SLATE,
                "oracle_total": PER_SLATE}
"""The unit the report gives each quoted number in."""
ESTIMANDS = {"direct": "Direct effect on the focal item", **SPILLOVERS,
             "total": "Total slate effect"}
COVARIATES = ["focal_position", "focal_score", "mean_score", "top_score", "same_cluster_items",
              "user_activity"]


def slate_covariates(slates: Slates, activity: np.ndarray) -> np.ndarray:
    """What the platform knows about a slate before promoting it (S, 6)."""
    S = slates.n_slates
    same = slates.cluster == slates.focal_cluster()[:, None]
    return np.column_stack([slates.focal, slates.score[np.arange(S), slates.focal],
                            slates.score.mean(axis=1), slates.score[:, 0],
                            same.sum(axis=1) - 1, activity[slates.user]])


def outcomes(exp: Experiment) -> dict[str, np.ndarray]:
    """Per-slate observed outcome of every estimand (clicks summed over its items)."""
    s = exp.slates
    y = exp.y.astype(np.float64)
    out = {"direct": y[np.arange(s.n_slates), s.focal], "total": y.sum(axis=1)}
    for key, mask in spillover_masks(s).items():
        out[key] = (y * mask).sum(axis=1)
    return {k: out[k] for k in ESTIMANDS}


def estimates(exp: Experiment, X: np.ndarray, *, seed: int, n_folds: int) -> tuple:
    """Difference in means, Lin's adjustment and cross-fitted AIPW for every estimand,
    beside the oracle; returns the table and the fitted AIPW of the total effect."""
    oracle = exp.oracle_slate()
    slate = np.arange(exp.slates.n_slates)
    lgbm_c = default_candidates("classifier", seed=seed)["lgbm-small"]
    lgbm_r = default_candidates("regressor", seed=seed)["lgbm-small"]
    rows, total_model = [], None
    for key, o in outcomes(exp).items():
        res = {"Difference in means": difference_in_means(o, exp.promoted, slate),
               "Lin regression adjustment": lin_adjustment(o, exp.promoted, X, slate)}
        model = AIPW(ml_m=lgbm_c, ml_g=lgbm_r, n_folds=n_folds, seed=seed).fit(
            X, o, exp.promoted, clusters=exp.slates.user)
        res["AIPW (cross-fitted LightGBM)"] = {"estimate": model.coef_,
                                               "std_error": model.se_}
        if key == "total":
            total_model = model
        for est, r in res.items():
            row = tidy_row(ESTIMANDS[key], r["estimate"], r["std_error"], estimand=key,
                           estimator=est)
            row.update(oracle=oracle[key], per_1000=1000 * r["estimate"],
                       oracle_per_1000=1000 * oracle[key],
                       covers_oracle=bool(row["ci_lower"] <= oracle[key] <= row["ci_upper"]))
            rows.append(row)
    return pd.DataFrame(rows), total_model


def decomposition(est: pd.DataFrame) -> pd.DataFrame:
    """Direct + indirect (all non-focal items) = total, per 1,000 promoted slates."""
    dim = est[est["estimator"] == "Difference in means"].set_index("estimand")
    rows = []
    for key, label in (("direct", "Direct (focal item)"), ("all", "Indirect (all other items)"),
                       ("total", "Total (whole slate)")):
        rows.append({"part": label, "estimate_per_1000": dim.loc[key, "per_1000"],
                     "ci_lower_per_1000": 1000 * dim.loc[key, "ci_lower"],
                     "ci_upper_per_1000": 1000 * dim.loc[key, "ci_upper"],
                     "oracle_per_1000": dim.loc[key, "oracle_per_1000"]})
    out = pd.DataFrame(rows)
    out["additivity_gap"] = [np.nan, np.nan, out["estimate_per_1000"].iloc[2]
                             - out["estimate_per_1000"].iloc[:2].sum()]
    return out


def naive_item_level(exp: Experiment) -> pd.DataFrame:
    """The item-level A/B a team ignoring interference reports, against the total effect."""
    naive = item_level_naive(exp.y, exp.promoted, exp.slates.focal)
    oracle = exp.oracle_slate()
    return pd.DataFrame([
        {"quantity": "Item-level A/B: focal item's click gain (what a team reports)",
         "per_1000": 1000 * naive["estimate"],
         "ci_lower_per_1000": 1000 * (naive["estimate"] - 1.959964 * naive["std_error"]),
         "ci_upper_per_1000": 1000 * (naive["estimate"] + 1.959964 * naive["std_error"])},
        {"quantity": "True total slate effect (oracle)", "per_1000": 1000 * oracle["total"],
         "ci_lower_per_1000": np.nan, "ci_upper_per_1000": np.nan},
        {"quantity": "Bias of the item-level A/B", "per_1000":
         1000 * (naive["estimate"] - oracle["total"]),
         "ci_lower_per_1000": np.nan, "ci_upper_per_1000": np.nan}])


def hh_table(exp: Experiment, levels: tuple[float, float]) -> pd.DataFrame:
    """Hudgens-Halloran estimates of design 2, beside their oracle values."""
    res = hudgens_halloran(exp.y.sum(axis=1), exp.promoted, exp.slates.user, exp.saturation,
                           levels)
    Y = {k: v.sum(axis=1).mean() for k, v in exp.p_sat.items()}
    lo, hi = levels
    oracle = {f"DE({lo:g})": Y[(1, lo)] - Y[(0, lo)], f"DE({hi:g})": Y[(1, hi)] - Y[(0, hi)],
              "IE": Y[(0, hi)] - Y[(0, lo)], "TE": Y[(1, hi)] - Y[(0, lo)],
              "OE": _overall(exp, hi) - _overall(exp, lo)}
    t = res.table
    t["oracle"] = [oracle[term] for term in t["term"]]
    t["covers_oracle"] = (t["ci_lower"] <= t["oracle"]) & (t["oracle"] <= t["ci_upper"])
    t["per_1000"] = 1000 * t["estimate"]
    share = pd.Series(exp.promoted).groupby(exp.saturation).mean()
    t["realised_share"] = t["saturation"].map(share)
    return t


def _overall(exp: Experiment, psi: float) -> float:
    """Mean outcome of a slate when its user's saturation is ``psi`` (promotion averaged)."""
    _, codes = np.unique(exp.slates.user, return_inverse=True)
    n = np.bincount(codes)[codes]
    share = promoted_count(psi, n) / n
    y1, y0 = exp.p_sat[(1, psi)].sum(axis=1), exp.p_sat[(0, psi)].sum(axis=1)
    return float(np.mean(share * y1 + (1 - share) * y0))


def by_group(exp: Experiment, codes: np.ndarray, labels: list[str], *, min_slates: int,
             kind: str) -> pd.DataFrame:
    """The total slate effect within groups of slates (focal cluster or focal position)."""
    total = exp.y.sum(axis=1).astype(np.float64)
    truth = exp.slate_effects().sum(axis=1)
    rows = []
    for h, label in enumerate(labels):
        keep = codes == h
        z = exp.promoted[keep]
        if keep.sum() < 2 * min_slates or z.min() == z.max() or \
                min((z == 1).sum(), (z == 0).sum()) < min_slates:
            continue
        r = difference_in_means(total[keep], z)
        rows.append(tidy_row(label, r["estimate"], r["std_error"], kind=kind,
                             slates=int(keep.sum()), oracle=float(truth[keep].mean())))
    out = pd.DataFrame(rows)
    out["per_1000"] = 1000 * out["estimate"]
    return out


def policy_value(slates: Slates, model: ClickModel, promote: np.ndarray) -> float:
    """Exact value of a promotion policy per eligible slate: expected clicks of all slates
    when ``promote`` is applied minus when nothing is promoted.

    Notes
    -----
    Every session's fatigue is the share of its user's *other* sessions that the policy
    promotes, so a policy that promotes a quarter of the slates is valued at the
    saturation it implies, not at the experiment's 50%:
    :math:`V(\\pi) = \\frac1S\\sum_s\\sum_k E[Y_{sk}(\\pi_s, f_s(\\pi))] - E[Y_{sk}(0, 0)]`.
    """
    promote = np.asarray(promote, dtype=np.float64)
    on = click_probability(slates, model, promote, other_share(promote, slates.user))
    none = np.zeros(slates.n_slates)
    off = click_probability(slates, model, none, none)
    sd = model.session_sd
    return float((expected_clicks(on, sd) - expected_clicks(off, sd)).sum(axis=1).mean())


def targeting(exp: Experiment, X: np.ndarray, model: AIPW, *, seed: int,
              n_folds: int, click_model: ClickModel) -> pd.DataFrame:
    """Policies that promote some slates, valued per 1,000 eligible slates.

    ``ipw_per_1000`` is the inverse-probability (off-policy) estimate on held-out folds with
    a 95% interval clustered by user (a user's slates share fatigue and the user's tastes);
    it estimates ``oracle_at_experiment_per_1000``, the policy's value with every slate's
    effect at the experiment's 50% saturation.  ``oracle_per_1000`` is the exact value of
    the policy under the saturation it implies (:func:`policy_value`), which differs by
    the promotion fatigue the experiment's saturation cannot show.
    """
    psi = model.psi_b_[0]
    user = exp.slates.user
    folds = make_folds(len(psi), n_folds, clusters=user, seed=seed + 5)
    lift = cross_fit(default_candidates("regressor", seed=seed)["lgbm-small"], X, psi, folds,
                     name="net-lift model")
    truth = exp.slate_effects().sum(axis=1)
    y = exp.y.sum(axis=1).astype(np.float64)
    z = exp.promoted.astype(np.float64)
    e = z.mean()
    ipw = z * y / e - (1 - z) * y / (1 - e)
    rules = {"Promote all": np.ones_like(lift),
             "Promote the top 50% by predicted lift": lift >= np.quantile(lift, 0.5),
             "Promote the top 25% by predicted lift": lift >= np.quantile(lift, 0.75),
             "Promote where predicted lift > 0": lift > 0,
             "Oracle: the true top 25%": truth >= np.quantile(truth, 0.75)}
    ones = np.ones((len(y), 1))
    rows = []
    for name, rule in rules.items():
        pi = np.asarray(rule, dtype=np.float64)
        coef, se = cluster_ols(pi * ipw, ones, user)
        est, se = float(coef[0]), float(se[0])
        rows.append({"policy": name, "share_promoted": pi.mean(),
                     "ipw_per_1000": 1000 * est, "ci_lower_per_1000": 1000 * (est - 1.959964 * se),
                     "ci_upper_per_1000": 1000 * (est + 1.959964 * se),
                     "oracle_at_experiment_per_1000": 1000 * float(np.mean(pi * truth)),
                     "oracle_per_1000": 1000 * policy_value(exp.slates, click_model, pi)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ sensitivity grid


def sensitivity_point(item: tuple, seed: int) -> dict:
    """The oracle direct and total effects of design 1 under one click model."""
    slates, params, label, value = item
    exp = run_design(slates, ClickModel().with_(**params), seed=seed)
    o = exp.oracle_slate()
    return {"parameter": label, "value": value, "direct": o["direct"], "total": o["total"],
            "spillover": o["all"]}


def sensitivity(slates_by_size: dict[int, Slates], base: ClickModel, *, seed: int,
                base_size: int) -> pd.DataFrame:
    """One-at-a-time grid around the base click model (and the slate size)."""
    b = base.__dict__
    items = [(slates_by_size[base_size], {**b, "intensity": v}, "Promotion intensity", v)
             for v in (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)]
    items += [(slates_by_size[base_size], {**b, "attention": v}, "Attention budget", v)
              for v in (0.1, 0.35, 1.0, 2.0)]
    items += [(slates_by_size[base_size], {**b, "substitution": v},
               "Within-cluster substitution", v) for v in (0.0, 1.5, 4.0)]
    items += [(slates_by_size[base_size], {**b, "eta": v}, "Position bias", v)
              for v in (0.0, 0.6, 1.2, 2.0)]
    items += [(slates_by_size[k], b, "Slate size", float(k)) for k in sorted(slates_by_size)]
    out = pd.DataFrame(map_tasks(sensitivity_point, items, seed=seed))
    out["per_1000"] = 1000 * out["total"]
    out["negative"] = out["total"] < 0
    return out


# ------------------------------------------------------------------ Monte Carlo check


def coverage_replication(item: tuple, seed: int) -> dict:
    """One re-randomisation of both designs on fixed slates, and every interval."""
    slates, model, levels = item
    exp = run_design(slates, model, seed=seed)
    o = exp.oracle_slate()
    out = outcomes(exp)
    slate = np.arange(slates.n_slates)
    row = {}
    for key in ("direct", "total"):
        r = difference_in_means(out[key], exp.promoted, slate)
        row[f"{key}_est"], row[f"{key}_se"], row[f"{key}_oracle"] = (r["estimate"],
                                                                     r["std_error"], o[key])
    K = slates.size
    items = exp.y.astype(np.float64).ravel()  # every item a row, as an item-level analysis has
    z_items = np.repeat(exp.promoted, K)
    iid = difference_in_means(items, z_items)
    clustered = difference_in_means(items, z_items, np.repeat(slate, K))
    row.update(item_est=K * iid["estimate"], item_se_iid=K * iid["std_error"],
               item_se_slate=K * clustered["std_error"], item_oracle=o["total"])
    two = run_design(slates, model, design="two_stage", saturations=levels, seed=seed)
    hh = hh_table(two, levels).set_index("term")
    for term in hh.index:
        row[f"hh_{term}_est"] = hh.loc[term, "estimate"]
        row[f"hh_{term}_se"] = hh.loc[term, "std_error"]
        row[f"hh_{term}_oracle"] = hh.loc[term, "oracle"]
    return row


def coverage_study(slates: Slates, model: ClickModel, levels: tuple[float, float], *,
                   reps: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Re-randomise both designs ``reps`` times; coverage of every interval, and the HH
    standard errors against the estimates' actual spread."""
    t = pd.DataFrame(map_tasks(coverage_replication, [(slates, model, levels)] * reps,
                               seed=seed))
    z = 1.959964
    rows = []

    def add(name: str, est: str, se: str, truth: str, role: str) -> None:
        covered = (t[est] - t[truth]).abs() <= z * t[se]
        t[f"covered: {name}"] = covered
        rows.append({"interval": name, "coverage": float(covered.mean()), "reps": reps,
                     "mc_se": float(np.sqrt(covered.mean() * (1 - covered.mean()) / reps)),
                     "mean_se": float(t[se].mean()),
                     "sd_error": float((t[est] - t[truth]).std()), "role": role})

    add("Direct effect, slate-clustered", "direct_est", "direct_se", "direct_oracle", "method")
    add("Total effect, slate-clustered", "total_est", "total_se", "total_oracle", "method")
    add("Total effect from item rows, unclustered", "item_est", "item_se_iid", "item_oracle",
        "counterexample")
    add("Total effect from item rows, slate-clustered", "item_est", "item_se_slate",
        "item_oracle", "method")
    for term in [c[3:-4] for c in t.columns if c.startswith("hh_") and c.endswith("_est")]:
        add(f"Hudgens-Halloran {term}", f"hh_{term}_est", f"hh_{term}_se", f"hh_{term}_oracle",
            "method")
    return t, pd.DataFrame(rows)


def se_ratio_check(name: str, reps: pd.DataFrame, est: str, se: str, truth: str, *,
                   role: str) -> dict:
    r"""Known-answer check of a standard error: mean SE over the SD of the errors, against 1.

    Notes
    -----
    With :math:`R` replications, :math:`(R-1)s^2/\sigma^2 \sim \chi^2_{R-1}` for normal
    errors, so the 95% interval of the ratio :math:`\overline{se}/\sigma` is
    :math:`\overline{se}/s \cdot [\sqrt{q_{.025}/(R-1)}, \sqrt{q_{.975}/(R-1)}]` with
    :math:`q` the :math:`\chi^2_{R-1}` quantiles (the mean SE varies far less than
    :math:`s`).  A calibrated SE covers 1; an SE that ignores within-slate dependence falls
    below.  This is better powered than coverage: an SE 20% too small lowers coverage
    from 95% to about 88%, which 50 replications cannot tell from 95%.
    """
    from scipy.stats import chi2

    err = reps[est] - reps[truth]
    R = len(err)
    ratio = float(reps[se].mean() / err.std(ddof=1))
    lo, hi = (ratio * np.sqrt(chi2.ppf(q, R - 1) / (R - 1)) for q in (0.025, 0.975))
    return check_row(f"{name}: mean SE / SD of errors", "Monte Carlo SE ratio", ratio,
                     lo, hi, 1.0, "calibrated (1)", role=role, detail=f"{R} replications")


def coverage_rows(reps: pd.DataFrame, summary: pd.DataFrame) -> list[dict]:
    """Monte Carlo rows of the ``checks`` table: coverage of every interval whose method is
    checked, and, for the item rows, the SE ratio with and without slate clustering (the
    unclustered interval's undercoverage is too small for coverage to show at few
    replications; its SE ratio shows it)."""
    rows = [coverage_check(f"{r.interval} (re-randomised slates)", reps[f"covered: {r.interval}"],
                           role=r.role) for r in summary.itertuples() if r.role == "method"]
    rows.append(se_ratio_check("Total effect from item rows, slate-clustered", reps,
                               "item_est", "item_se_slate", "item_oracle", role="method"))
    rows.append(se_ratio_check("Total effect from item rows, unclustered", reps,
                               "item_est", "item_se_iid", "item_oracle", role="counterexample"))
    return rows
