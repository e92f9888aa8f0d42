"""Does the drama-romance combination change ratings?  Double machine learning on MovieLens.

The study re-does a report that estimated the effect of a movie being
drama-romance on its ratings with cross-fitted double ML on a 50,000-rating
sample, and addresses what leaves its conclusion unsupported: post-treatment and
possibly leaky controls (features here come from each rating's prior history and
the adjustment set is justified by a causal graph), dependence across ratings
(multiway cross-fitting by user and movie, two-way clustered standard errors), no
check against a known answer (planted effects, and Monte Carlo coverage of the
headline pipeline) and no sensitivity analysis (omitted-variable bounds).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.config import at_least, folds, fraction, positive, seed_field
from analysis.data.common import DataRef
from analysis.data.movielens import MovieLensData
from analysis.errors import ConfigError, OverlapError
from analysis.estimators.coverage import coverage_simulation
from analysis.estimators.diagnostics import ipw_weights, standardized_differences
from analysis.estimators.dml import AIPW, PartiallyLinearDML, default_learner
from analysis.estimators.inference import score_se, solve_score
from analysis.estimators.linear import linear_adjustment_score
from analysis.features.movielens import (
    FEATURE_NAMES,
    FEATURES,
    JUSTIFIED,
    build_features,
    report_style_features,
    treatment,
)
from analysis.result import StudyResult, tidy_frame, tidy_row
from analysis.studies import dml_genre_checks as checks
from analysis.studies import dml_genre_parts as parts
from analysis.studies.base import Timer, make_result
from analysis.studies.movielens import (
    MovieLensConfig,
    load_movielens_for,
    movielens_data_ref,
)

NAME = "dml_genre"
TITLE = "Does drama-romance change ratings? Double machine learning"
CHAPTER = "chapters/dml.qmd"
SUMMARY_TEMPLATE = "studies/dml_genre.md.j2"
RECOMMENDATION_TEMPLATE = "studies/dml_genre_recommendation.md.j2"

SEGMENTS = {
    "heavy": ("Heavy vs light users", "light users", "heavy users"),
    "positive": ("Positive vs critical raters", "critical raters", "positive raters"),
    "experienced": ("Experienced vs new users", "new users", "experienced users"),
    "specialist": ("Genre specialists vs generalists", "generalists", "specialists"),
}
"""The report's four proposed segments: key -> (title, False label, True label)."""


@dataclass(frozen=True, kw_only=True)
class Config(MovieLensConfig):
    """Settings of the double ML chapter.

    Attributes
    ----------
    n_folds : int
        Cross-fitting folds per way: users and movies are each split into ``n_folds``
        folds (multiway cross-fitting; 3, as the source report's folds).
    n_rep : int
        Repetitions of cross-fitting, aggregated by the median.
    n_estimators, learning_rate, subsample
        Size of the LightGBM nuisance learners and the share of rows each tree sees.
    rf_trees : int
        Trees of the random forest in the model comparison.
    comparison_max_rows : int
        Rows sampled for the model-comparison table (the estimates use all rows).
    coverage_reps, coverage_clusters : int
        Monte Carlo replications and clusters of the coverage check.
    headline_reps, headline_users, headline_movies, headline_ratings : int
        Monte Carlo replications and design size of the coverage check of the headline
        pipeline itself (AIPW, LightGBM, multiway folds, two-way clustering).
    report_sample : int
        Ratings in the source report's sample (the SE ratios are also computed on a
        random sample of this size).
    compare_control_sets : bool
        Also fit the report-style and all-features control sets (doubles the work;
        the benchmark on 20 million ratings turns it off).
    """

    seed: int = seed_field(20150101)
    n_folds: int = folds(3)
    n_rep: int = positive(3)
    n_estimators: int = positive(100)
    learning_rate: float = positive(0.1)
    subsample: float = fraction(0.8)
    rf_trees: int = positive(30)
    comparison_max_rows: int = at_least(30_000, 1000, "the model comparison holds out users")
    coverage_reps: int = positive(400)
    coverage_clusters: int = at_least(200, 20, "cluster-robust errors need 20 clusters")
    compare_control_sets: bool = True
    headline_reps: int = positive(100)
    headline_users: int = at_least(400, 20, "two-way clustering needs 20 users")
    headline_movies: int = at_least(300, 20, "two-way clustering needs 20 movies")
    headline_ratings: int = positive(6000)
    report_sample: int = positive(50_000)

    def check(self) -> None:
        """Every cross-fitting fold needs users: at least four per fold."""
        super().check()
        if self.source != "real" and self.synthetic_users < 4 * self.n_folds:
            raise ConfigError(f"synthetic_users = {self.synthetic_users} is too few for "
                              f"n_folds = {self.n_folds}: folds are grouped by user and need "
                              f"at least 4 users each. Use synthetic_users >= "
                              f"{4 * self.n_folds} or fewer folds.")


def data_ref(config: Config, root: Path | None = None) -> DataRef:
    """The MovieLens data this study will use."""
    return movielens_data_ref(config, root)


def run(config: Config, root: Path | None = None) -> StudyResult:
    """Estimate the effect of drama-romance on ratings.

    Returns
    -------
    StudyResult
        Tables ``estimates`` (naive, OLS, DML-PLR, AIPW; two-way clustered),
        ``standard_errors``, ``adjustment``, ``segments``, ``model_comparison``,
        ``overlap``, ``balance``, ``coverage``, ``coverage_reps``, ``summary``,
        ``features``, ``graph_nodes``, ``graph_edges``, ``adjustment_sets``,
        ``limitations``, ``checks`` (known answers) and ``headline``; facts for the
        summary.
    """
    timer = Timer()
    return analyse(load_movielens_for(config, root), config, data_ref(config, root), timer)


def analyse(data: MovieLensData, config: Config, ref: DataRef,
            timer: Timer | None = None) -> object:
    """The study's computation on already-loaded data (the benchmark calls this directly).

    Returns
    -------
    StudyResult
        As :func:`run`.
    """
    timer = timer or Timer()
    r, items = data.ratings, data.items
    X_all = build_features(r, items)
    cols = [FEATURE_NAMES.index(c) for c in JUSTIFIED]
    Xj = pd.DataFrame(np.ascontiguousarray(X_all.to_numpy()[:, cols]), columns=JUSTIFIED,
                      index=X_all.index, copy=False)  # C-contiguous float32: no copies in fits
    if not config.compare_control_sets:
        X_all = Xj  # free the other columns; the segments only need justified ones
    d = treatment(r, items).astype(np.float64)
    y = r["rating"].to_numpy(dtype=np.float64)
    user, movie = r["user"].to_numpy(), r["item"].to_numpy()
    effects = data.truth.get("effects")

    two = np.column_stack([user, movie])  # multiway cross-fitting, two-way variance
    plr = _model(PartiallyLinearDML, config).fit(Xj, y, d, clusters=two)
    irm = _model(AIPW, config).fit(Xj, y, d, clusters=two)
    estimates = _estimates(Xj, y, d, user, movie, plr, irm)
    adjustment = _adjustment(config, X_all, r, items, y, d, user, movie, estimates)
    segments = _segments(irm, X_all, effects)
    sens = checks.sensitivity({"plr": plr, "aipw": irm}, Xj, y, d, two, user, movie)
    headline_cov = checks.headline_coverage(
        config.headline_reps, n_users=config.headline_users, n_movies=config.headline_movies,
        n_ratings=config.headline_ratings, n_folds=config.n_folds,
        n_estimators=config.n_estimators, seed=config.seed)
    m_hat = irm.nuisance_["m_hat"].mean(axis=0)
    coverage = coverage_simulation(config.coverage_reps, n_clusters=config.coverage_clusters,
                                   n_folds=config.n_folds, seed=config.seed)
    graph = parts.causal_graph()
    tables = {
        "estimates": estimates,
        "standard_errors": _standard_errors(estimates),
        "adjustment": adjustment,
        "segments": segments,
        "model_comparison": parts.model_comparison(Xj, y, user, config,
                                                   _learner("regressor", config)),
        "overlap": parts.overlap_histogram(m_hat, d),
        "balance": _balance(Xj, d, m_hat),
        "coverage": parts.coverage_summary(coverage, level=0.95),
        "coverage_reps": coverage,
        "summary": parts.data_summary(r, items, d),
        "features": pd.DataFrame([f.__dict__ for f in FEATURES]),
        "graph_nodes": parts.graph_nodes(graph),
        "graph_edges": parts.graph_edges(graph),
        "adjustment_sets": parts.adjustment_sets(graph),
        "report_sample_ses": _sample_ses(plr, irm, user, movie, config),
        "headline_coverage_reps": headline_cov,
        **sens,
    }
    facts = _facts(config, data.truth, tables, r, d, irm)
    facts.update(checks.sensitivity_facts(tables, data.truth.get("ate")))
    facts.update(checks.headline_coverage_facts(headline_cov))
    sample = tables["report_sample_ses"].set_index("term")
    facts.update({"heavy_prior_median": float(np.expm1(np.median(X_all["user_n_prior"]))),
                  "sample_rows": int(sample.loc["plr", "rows"]),
                  "sample_users": int(sample.loc["plr", "users"]),
                  "sample_ratio_user_plr": float(sample.loc["plr", "ratio_user"]),
                  "sample_ratio_twoway_plr": float(sample.loc["plr", "ratio_twoway"]),
                  "sample_is_all": bool(int(sample.loc["plr", "rows"]) == len(r)),
                  "report_sample": config.report_sample,
                  "hl_users": config.headline_users, "hl_movies": config.headline_movies,
                  "hl_ratings": config.headline_ratings})
    tables["limitations"] = parts.limitations(facts)
    tables["checks"] = parts.known_answer_checks(tables, facts)
    tables["headline"] = parts.headline(facts)
    return make_result(study=NAME, config=config, ref=ref, rows=len(r), tables=tables,
                       facts=facts, timer=timer)


# --------------------------------------------------------------------------- estimation


def _learner(kind: str, config: Config) -> object:
    return default_learner(kind, n_estimators=config.n_estimators,  # type: ignore[arg-type]
                           learning_rate=config.learning_rate, subsample=config.subsample,
                           seed=config.seed)


def _model(cls: type, config: Config, n_rep: int | None = None) -> PartiallyLinearDML | AIPW:
    return cls(ml_g=_learner("regressor", config), ml_m=_learner("classifier", config),
               n_folds=config.n_folds, n_rep=n_rep or config.n_rep, seed=config.seed)


def _ses(psi_a: np.ndarray, psi_b: np.ndarray, theta: float, user: np.ndarray,
         movie: np.ndarray) -> dict[str, float]:
    """SEs of one solved score: iid, by user, by movie and two-way (user and movie)."""
    return {"se_iid": score_se(psi_a, psi_b, theta), "se_user": score_se(psi_a, psi_b, theta, user),
            "se_movie": score_se(psi_a, psi_b, theta, movie),
            "se_twoway": score_se(psi_a, psi_b, theta, user, movie)}


def _model_ses(model: PartiallyLinearDML | AIPW, user: np.ndarray,
               movie: np.ndarray) -> dict[str, float]:
    """As :func:`_ses`, median-aggregated over the model's repetitions."""
    return {"se_iid": model.std_error(None), "se_user": model.std_error(user),
            "se_movie": model.std_error(movie), "se_twoway": model.std_error(user, movie)}


def _estimates(Xj: pd.DataFrame, y: np.ndarray, d: np.ndarray, user: np.ndarray,
               movie: np.ndarray, plr: PartiallyLinearDML, irm: AIPW) -> pd.DataFrame:
    """Naive, OLS, DML-PLR and AIPW with two-way (user and movie) clustered intervals."""
    rows = []
    specs = [("naive", "Naive difference in means", linear_adjustment_score(None, y, d)),
             ("ols", "OLS with the justified controls", linear_adjustment_score(Xj, y, d))]
    for term, label, (a, b) in specs:
        theta = solve_score(a, b).theta
        ses = _ses(a, b, theta, user, movie)
        rows.append(tidy_row(term, theta, ses["se_twoway"], label=label, **ses))
    for term, label, model in (("plr", "DML partially linear (PLR)", plr),
                               ("aipw", "DML interactive (AIPW, the ATE)", irm)):
        ses = _model_ses(model, user, movie)
        rows.append(tidy_row(term, model.coef_, ses["se_twoway"], label=label, **ses))
    return tidy_frame(rows)


def _standard_errors(estimates: pd.DataFrame) -> pd.DataFrame:
    """How the SE of each estimate changes with the assumed dependence."""
    out = estimates[["term", "label", "se_iid", "se_user", "se_movie", "se_twoway"]].copy()
    out["ratio_user"] = out["se_user"] / out["se_iid"]
    out["ratio_twoway"] = out["se_twoway"] / out["se_iid"]
    return out


def _sample_ses(plr: PartiallyLinearDML, irm: AIPW, user: np.ndarray, movie: np.ndarray,
                config: Config) -> pd.DataFrame:
    """SE ratios (clustered / iid) on a random sample of the report's size (no refit).

    The fitted scores of the first repetition are restricted to ``report_sample``
    random ratings (all, when there are fewer), the estimate re-solved there, and its
    iid, user-clustered and two-way standard errors compared.
    """
    n = len(user)
    rng = np.random.default_rng(config.seed + 7)
    keep = np.sort(rng.choice(n, config.report_sample, replace=False)) \
        if n > config.report_sample else np.arange(n)
    rows = []
    for term, m in (("plr", plr), ("aipw", irm)):
        a, b = m.psi_a_[0][keep], m.psi_b_[0][keep]
        theta = solve_score(a, b).theta
        iid = score_se(a, b, theta)
        rows.append({"term": term, "rows": len(keep), "users": len(np.unique(user[keep])),
                     "ratio_user": score_se(a, b, theta, user[keep]) / iid,
                     "ratio_twoway": score_se(a, b, theta, user[keep], movie[keep]) / iid})
    return pd.DataFrame(rows)


def _adjustment(config: Config, X_all: pd.DataFrame, r: pd.DataFrame, items: pd.DataFrame,
                y: np.ndarray, d: np.ndarray, user: np.ndarray, movie: np.ndarray,
                estimates: pd.DataFrame) -> pd.DataFrame:
    """PLR and AIPW under the report-style, the all-features and the justified sets.

    The comparison sets are cross-fitted with folds by user only (one repetition; three
    fits per nuisance instead of the nine cells of multiway folds) and their standard
    errors clustered by user and movie; the justified rows are the headline estimates.
    """
    sets = [("report", "Report-style controls (leaky; flagged)", report_style_features),
            ("all", "All 35 prior-history features (adds movie statistics)",
             lambda *_: X_all)]
    rows = []
    for key, label, make in sets if config.compare_control_sets else []:
        X = make(r, items)
        for term, cls in (("plr", PartiallyLinearDML), ("aipw", AIPW)):
            with warnings.catch_warnings():  # the main analysis reports its own diagnostics
                warnings.simplefilter("ignore")
                try:
                    m = _model(cls, config, n_rep=1).fit(X, y, d, clusters=user)
                except OverlapError as exc:
                    rows.append(tidy_row(term, np.nan, np.nan, set=key, set_label=label,
                                         n_features=X.shape[1], note=_short(exc)))
                    continue
            rows.append(tidy_row(term, m.coef_, m.std_error(user, movie), set=key,
                                 set_label=label, n_features=X.shape[1], note=""))
    for term in ("plr", "aipw"):
        e = estimates.set_index("term").loc[term]
        rows.append({**e[["estimate", "std_error", "ci_lower", "ci_upper", "p_value"]]
                     .to_dict(), "term": term, "set": "justified",
                     "set_label": "Justified set (prior history, release year, time)",
                     "n_features": len(JUSTIFIED), "note": ""})
    return tidy_frame(rows)


def _short(exc: Exception) -> str:
    return "Not estimable: " + str(exc).split(":", 1)[1].split(",")[0].strip() + "."


def _segment_masks(X_all: pd.DataFrame) -> dict[str, np.ndarray]:
    """Boolean segment membership per rating, from information before the rating only.

    "Heavy" compares the user's number of *earlier* ratings (``user_n_prior``, a
    monotone transform of that count) with its median over all ratings, so no later
    rating decides a rating's segment.
    """
    prior = X_all["user_n_prior"].to_numpy()
    return {
        "heavy": prior >= np.median(prior),
        "positive": X_all["user_prior_mean"].to_numpy()
        >= np.median(X_all["user_prior_mean"]),
        "experienced": X_all["user_experience_years"].to_numpy() >= 30 / 365.25,
        "specialist": X_all["genre_entropy"].to_numpy() < np.median(X_all["genre_entropy"]),
    }


def _segments(irm: AIPW, X_all: pd.DataFrame, effects: np.ndarray | None) -> pd.DataFrame:
    """Group ATEs (AIPW pseudo-outcome means) for the four segments, and their differences."""
    frames = []
    for key, mask in _segment_masks(X_all).items():
        title, lo, hi = SEGMENTS[key]
        if mask.all() or not mask.any():
            continue
        t = irm.group_ate(mask, [lo, hi])  # two-way: the fit's user and movie clusters
        t["segment"], t["segment_key"], t["kind"] = title, key, ["group", "group", "difference"]
        if effects is not None:
            g = [effects[~mask].mean(), effects[mask].mean()]
            t["truth"] = [g[0], g[1], g[1] - g[0]]
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def _balance(Xj: pd.DataFrame, d: np.ndarray, m_hat: np.ndarray) -> pd.DataFrame:
    before = standardized_differences(Xj, d)
    after = standardized_differences(Xj, d, ipw_weights(d, m_hat))
    group = {f.name: f.group for f in FEATURES}
    out = pd.DataFrame({"feature": before.index, "group": [group[c] for c in before.index],
                        "smd_before": before.to_numpy(), "smd_after": after.to_numpy()})
    return out.sort_values("smd_before", key=np.abs, ascending=False).reset_index(drop=True)


# --------------------------------------------------------------------------- facts


def _facts(config: Config, truth: dict, tables: dict[str, pd.DataFrame], r: pd.DataFrame,
           d: np.ndarray, irm: AIPW) -> dict[str, object]:
    est = tables["estimates"].set_index("term")
    adj = tables["adjustment"].set_index(["set", "term"])
    seg = tables["segments"]
    diffs = seg[seg["kind"] == "difference"]
    cov = tables["coverage"].set_index("interval")
    bal = tables["balance"]
    ses = tables["standard_errors"].set_index("term")
    facts: dict[str, object] = {
        "n_ratings": len(r), "n_users": int(r["user"].nunique()),
        "n_movies": int(r["item"].nunique()),
        "n_treated_movies": int(r.loc[d == 1, "item"].nunique()),
        "prevalence": float(d.mean()), "n_features": len(FEATURE_NAMES),
        "n_justified": len(JUSTIFIED), "n_folds": config.n_folds, "n_rep": config.n_rep,
        "truth_ate": truth.get("ate"),
        "trimmed_share": float(irm.trimmed_share_),
        "max_smd_before": float(bal["smd_before"].abs().max()),
        "max_smd_after": float(bal["smd_after"].abs().max()),
        "worst_feature": str(bal["feature"].iloc[0]),
        "coverage": float(cov.loc["cluster-robust", "coverage"]),
        "coverage_iid": float(cov.loc["iid", "coverage"]),
        "coverage_reps": int(cov.loc["cluster-robust", "reps"]),
        "se_ratio_user": float(ses.loc["aipw", "ratio_user"]),
        "se_ratio_twoway": float(ses.loc["aipw", "ratio_twoway"]),
        "se_ratio_user_plr": float(ses.loc["plr", "ratio_user"]),
        "n_segment_differences": int((diffs["p_value"] < 0.05).sum()),
        "n_segments": int(len(diffs)),
        "bonferroni_segment_differences": int((diffs["p_value"] < 0.05 / len(diffs)).sum()),
        "top10_share": float(np.sort(r.groupby("user").size().to_numpy())[::-1]
                             [: max(1, r["user"].nunique() // 10)].sum() / len(r)),
    }
    for term in ("naive", "ols", "plr", "aipw"):
        row = est.loc[term]
        facts.update({f"{term}": float(row["estimate"]), f"{term}_se": float(row["std_error"]),
                      f"{term}_lo": float(row["ci_lower"]), f"{term}_hi": float(row["ci_upper"]),
                      f"{term}_p": float(row["p_value"]),
                      f"{term}_se_user": float(row["se_user"]),
                      f"{term}_se_iid": float(row["se_iid"]),
                      f"{term}_significant": bool(row["p_value"] < 0.05),
                      f"{term}_direction": "higher" if row["estimate"] > 0 else "lower"})
        if truth.get("ate") is not None:
            ate = truth["ate"]
            facts[f"{term}_covers_truth"] = bool(row["ci_lower"] <= ate <= row["ci_upper"])
            facts[f"{term}_covers_truth_user"] = bool(abs(row["estimate"] - ate)
                                                      <= 1.959964 * row["se_user"])
            facts[f"{term}_error"] = float(row["estimate"] - ate)
    facts.update(_adjustment_facts(adj, facts["plr"]))
    facts.update(_segment_facts(seg))
    facts["plr_above_aipw"] = bool(facts["plr"] > facts["aipw"])
    facts["report_plr_verdict"] = _verdict(facts)
    facts["rating_sd"] = float(r["rating"].std())
    facts["coverage_ok"] = bool(abs(facts["coverage"] - 0.95) <= 0.03)
    return facts


def _segment_facts(seg: pd.DataFrame) -> dict[str, object]:
    """The clearest segment difference, and how many group estimates cover their truth."""
    diffs = seg[seg["kind"] == "difference"].reset_index(drop=True)
    top = diffs.loc[(diffs["estimate"] / diffs["std_error"]).abs().idxmax()]
    out: dict[str, object] = {
        "seg_top": str(top["segment"]), "seg_top_term": str(top["term"]),
        "seg_top_diff": float(top["estimate"]), "seg_top_lo": float(top["ci_lower"]),
        "seg_top_hi": float(top["ci_upper"]), "seg_top_p": float(top["p_value"]),
        "seg_top_significant": bool(top["p_value"] < 0.05)}
    if "truth" in seg:
        groups = seg[seg["kind"] == "group"]
        covered = (groups["ci_lower"] <= groups["truth"]) & (groups["truth"] <= groups["ci_upper"])
        out.update({"seg_truth_covered": int(covered.sum()), "seg_truth_total": len(groups),
                    "seg_top_truth": float(top["truth"])})
    return out


def _adjustment_facts(adj: pd.DataFrame, plr: float) -> dict[str, object]:
    """Report-style and all-features estimates (NaN when the comparison was not run)."""
    def get(key: tuple[str, str], col: str) -> float:
        return float(adj.loc[key, col]) if key in adj.index else float("nan")

    rep = ("report", "plr")
    note = adj.loc[("report", "aipw"), "note"] if ("report", "aipw") in adj.index else ""
    return {"report_plr": get(rep, "estimate"), "report_plr_lo": get(rep, "ci_lower"),
            "report_plr_hi": get(rep, "ci_upper"),
            "report_plr_significant": bool(get(rep, "p_value") < 0.05),
            "report_aipw_estimable": bool(np.isfinite(get(("report", "aipw"), "estimate"))),
            "report_aipw_note": str(note), "all_plr": get(("all", "plr"), "estimate"),
            "all_aipw_estimable": bool(np.isfinite(get(("all", "aipw"), "estimate"))),
            "shift_report_vs_justified": float(plr - get(rep, "estimate"))}


def _verdict(f: dict[str, object]) -> str:
    """What the report-style controls do to the PLR estimate, in words."""
    if not f["report_plr_significant"]:
        return ("the leaky controls absorb the effect, and the estimate, like the report's, "
                "cannot be told from zero")
    if f["report_plr"] < 0:  # type: ignore[operator]
        return ("the leaky controls absorb the effect and push the estimate significantly below "
                "zero, the opposite sign")
    return "the leaky controls change the estimate even though it stays positive"
