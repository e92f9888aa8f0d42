"""Pieces of the ``dml_genre`` study: causal graph, tables and the limitations list.

Kept apart from :mod:`analysis.studies.dml_genre` so each module stays short;
everything here is computed from data or from the study's facts.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from analysis.estimators.adjustment import backdoor_check
from analysis.estimators.diagnostics import compare_learners
from analysis.result import check_row, checks_frame, coverage_check, headline_frame

QUESTION = "Does a movie's drama-romance genre change its ratings?"

NODES = {  # id: (label, role, observed, x, y)
    "D": ("Drama-romance", "treatment", True, 1.0, 1.2),
    "Y": ("Rating", "outcome", True, 4.0, 1.2),
    "history": ("User taste\n(prior history)", "adjusted", True, 0.2, 2.7),
    "era": ("Release year", "adjusted", True, 2.5, 2.7),
    "time": ("Time of rating", "adjusted", True, 4.6, 2.7),
    "quality": ("Movie quality\n(unobserved)", "unobserved", False, 6.4, 1.2),
    "user_mean": ("User mean rating\n(incl. this one)", "bad", True, 6.4, 2.7),
    "n_genres": ("Number of\ngenres", "bad", True, -0.9, -0.2),
    "popularity": ("Movie popularity", "bad", True, 1.0, -0.9),
    "movie_prior": ("Movie's earlier\nmean rating", "bad", True, 3.3, -0.9),
    "movie_mean": ("Movie mean rating\n(incl. this one)", "bad", True, 5.7, -0.9),
}
EDGES = [
    ("D", "Y", "effect"),
    ("history", "D", "confounding"), ("history", "Y", "confounding"),
    ("era", "D", "confounding"), ("era", "Y", "confounding"),
    ("time", "D", "confounding"), ("time", "Y", "confounding"),
    ("quality", "Y", "other"), ("quality", "popularity", "other"),
    ("quality", "movie_prior", "other"), ("quality", "movie_mean", "other"),
    ("popularity", "Y", "other"),
    ("D", "popularity", "downstream"), ("D", "movie_prior", "downstream"),
    ("D", "movie_mean", "downstream"), ("D", "n_genres", "downstream"),
    ("Y", "movie_mean", "leak"), ("Y", "user_mean", "leak"),
]
SETS = {
    "justified": ("Justified (this chapter)", ["history", "era", "time"]),
    "all": ("All prior-history features", ["history", "era", "time", "popularity",
                                           "movie_prior"]),
    "report": ("Report-style", ["user_mean", "movie_mean", "popularity", "n_genres", "time"]),
}


def causal_graph() -> nx.DiGraph:
    """The assumed causal graph of a rating (node attributes: label, role, observed, pos)."""
    g = nx.DiGraph()
    for node, (label, role, observed, x, y) in NODES.items():
        g.add_node(node, label=label, role=role, observed=observed, pos=(x, y))
    g.add_edges_from((s, t, {"kind": k}) for s, t, k in EDGES)
    return g


def graph_nodes(g: nx.DiGraph) -> pd.DataFrame:
    """Nodes as a table for drawing."""
    return pd.DataFrame([{"node": n, "label": a["label"], "role": a["role"],
                          "observed": a["observed"], "x": a["pos"][0], "y": a["pos"][1]}
                         for n, a in g.nodes(data=True)])


def graph_edges(g: nx.DiGraph) -> pd.DataFrame:
    """Edges as a table for drawing."""
    return pd.DataFrame([{"source": s, "target": t, "kind": a["kind"]}
                         for s, t, a in g.edges(data=True)])


def adjustment_sets(g: nx.DiGraph) -> pd.DataFrame:
    """Each candidate adjustment set checked with the back-door criterion."""
    rows = []
    for key, (label, nodes) in SETS.items():
        valid, reason = backdoor_check(g, "D", "Y", nodes)
        names = ", ".join(g.nodes[n]["label"].replace("\n", " ") for n in nodes)
        rows.append({"set": key, "label": label, "nodes": names, "valid": valid,
                     "reason": reason.replace("\n", " ")})
    out = pd.DataFrame(rows)
    labels = {n: a["label"].replace("\n", " ") for n, a in g.nodes(data=True)}
    for n, text in labels.items():
        out["reason"] = out["reason"].str.replace(rf"\b{n}\b", text, regex=True)
    return out


def model_comparison(X: pd.DataFrame, y: np.ndarray, user: np.ndarray, config: object,
                     gb: object) -> pd.DataFrame:
    """The report's outcome-model table: Linear, Ridge, Lasso, RF, GB on held-out users."""
    rng = np.random.default_rng(config.seed)
    n = len(y)
    keep = np.sort(rng.choice(n, config.comparison_max_rows, replace=False)) \
        if n > config.comparison_max_rows else np.arange(n)
    learners = {
        "Linear": LinearRegression(),
        "Ridge": make_pipeline(StandardScaler(), Ridge(alpha=10.0)),
        "Lasso": make_pipeline(StandardScaler(), Lasso(alpha=0.01)),
        "Random forest": RandomForestRegressor(
            n_estimators=config.rf_trees, max_depth=12, min_samples_leaf=20,
            max_features=0.33, max_samples=0.5, n_jobs=1, random_state=config.seed),
        "Gradient boosting (LightGBM)": gb,
    }
    out = compare_learners(learners, X.to_numpy()[keep].astype(np.float64), y[keep], user[keep],
                           n_folds=config.n_folds, seed=config.seed)
    out["rows"] = len(keep)
    out["best"] = out["rmse"] == out["rmse"].min()
    return out


def overlap_histogram(m_hat: np.ndarray, d: np.ndarray, bins: int = 40) -> pd.DataFrame:
    """Share of each arm's ratings per propensity bin."""
    top = min(1.0, np.ceil(m_hat.max() * 20) / 20)
    edges = np.linspace(0, top, bins + 1)
    t = d == 1
    h1, _ = np.histogram(m_hat[t], bins=edges)
    h0, _ = np.histogram(m_hat[~t], bins=edges)
    return pd.DataFrame({"lower": edges[:-1], "upper": edges[1:],
                         "treated": h1 / max(h1.sum(), 1), "untreated": h0 / max(h0.sum(), 1)})


def coverage_summary(reps: pd.DataFrame, level: float) -> pd.DataFrame:
    """Coverage of cluster-robust and iid intervals, with Monte Carlo standard errors."""
    rows = []
    for name, col, se in (("cluster-robust", "covered", "se"), ("iid", "covered_iid", "se_iid")):
        p = float(reps[col].mean())
        rows.append({"interval": name, "coverage": p, "nominal": level, "reps": len(reps),
                     "mc_se": float(np.sqrt(p * (1 - p) / len(reps))),
                     "mean_se": float(reps[se].mean()),
                     "sd_estimate": float(reps["estimate"].std())})
    return pd.DataFrame(rows)


def data_summary(r: pd.DataFrame, items: pd.DataFrame, d: np.ndarray) -> pd.DataFrame:
    """Data and treatment at a glance."""
    y = r["rating"].to_numpy()
    t = d == 1
    rows = [("Ratings (all used; no sampling)", f"{len(r):,}"),
            ("Users", f"{r['user'].nunique():,}"),
            ("Movies rated", f"{r['item'].nunique():,}"),
            ("Drama-romance movies rated", f"{r.loc[t, 'item'].nunique():,}"),
            ("Treatment prevalence (share of ratings)", f"{t.mean():.1%}"),
            ("Mean rating, drama-romance", f"{y[t].mean():.3f}"),
            ("Mean rating, other movies", f"{y[~t].mean():.3f}"),
            ("Period", f"{r['timestamp'].min():%Y-%m} to {r['timestamp'].max():%Y-%m}")]
    return pd.DataFrame(rows, columns=["metric", "value"])


def limitations(f: Mapping[str, object]) -> pd.DataFrame:
    """What this analysis cannot do, with the numbers behind each point."""
    rows = [
        ("Genre is not randomized",
         "Unmeasured movie traits (quality, budget, studio) could differ between "
         "drama-romances and other movies.",
         "Two-way clustering by movie widens intervals for chance differences; only an "
         "experiment or a design with exogenous variation removes the risk."),
        ("Taste is measured by history",
         "Prior ratings are a proxy for taste; early ratings of a user have little history, "
         "so some confounding by taste may remain (it biases upwards, like the naive gap).",
         f"After weighting the largest absolute standardized difference is "
         f"{f['max_smd_after']:.3f}; the omitted-variable bounds give a robustness value "
         f"of {f['sens_rv']:.1%} for the AIPW estimate."),
        ("Ratings are self-selected",
         "Users rate what they chose to watch, so the effect is among watched movies, not "
         "for a random user shown a random movie.",
         "Read the estimate as a statement about the ratings that exist."),
        ("Heavy users dominate",
         f"The most active 10% of users gave {f['top10_share']:.0%} of ratings, and averages "
         "are over ratings.",
         "The heavy-vs-light segment shows whether this matters."),
        ("Few distinct treated movies",
         f"Only {f['n_treated_movies']:,} drama-romance movies were rated; ratings of one "
         "movie share its quality.",
         "Standard errors are clustered by user and movie (two-way)."),
        ("PLR is not the ATE",
         "With heterogeneous effects the partially linear model weights users whose choice "
         "of genre is least predictable.",
         "The AIPW estimate is the average treatment effect; both are shown."),
        ("Four segment tests",
         "Testing four segments makes one false positive at p < 0.05 fairly likely "
         f"(segment differences at p < 0.05: {f['n_segment_differences']} of "
         f"{f['n_segments']}).",
         "Bonferroni correction (p < 0.0125); differences that survive it: "
         f"{f['bonferroni_segment_differences']} of {f['n_segments']}."),
    ]
    return pd.DataFrame(rows, columns=["limitation", "why_it_matters", "what_we_did"])


def known_answer_checks(tables: Mapping[str, pd.DataFrame],
                        facts: Mapping[str, object]) -> pd.DataFrame:
    """Every known-answer check of the chapter, in the fixed ``checks`` columns.

    The Monte Carlo coverage of both interval types and of the headline pipeline
    always; on synthetic data also
    the planted ATE against each estimate and every segment's true effect.
    """
    reps = tables["coverage_reps"]
    rows = [coverage_check("DML-PLR, cluster-robust 95% interval (clustered design)",
                           reps["covered"]),
            coverage_check("DML-PLR, interval assuming independent ratings", reps["covered_iid"],
                           role="counterexample",
                           detail=f"{len(reps)} replications; ratings of a user are dependent")]
    if "headline_coverage_reps" in tables:
        hl = tables["headline_coverage_reps"]
        rows.append(coverage_check(
            "Headline pipeline: AIPW with LightGBM, multiway folds, 95% interval clustered by "
            "user and movie", hl["covered"],
            detail=f"{len(hl)} replications of a two-way clustered ratings design"))
    truth = facts.get("truth_ate")
    if truth is not None:
        est = tables["estimates"].set_index("term")
        for term, label, role in (("aipw", "AIPW (ATE)", "method"),
                                  ("naive", "Naive difference in means", "counterexample")):
            r = est.loc[term]
            rows.append(check_row(f"{label} vs the planted drama-romance effect",
                                  "planted truth", r["estimate"], r["ci_lower"], r["ci_upper"],
                                  truth, "planted ATE",
                                  role=role, detail="95% CI clustered by user and movie"))
        seg = tables["segments"]
        for r in seg[seg["kind"] == "group"].itertuples():
            rows.append(check_row(f"AIPW effect among {r.term} ({r.segment})", "planted truth",
                                  r.estimate, r.ci_lower, r.ci_upper, r.truth,
                                  "true segment effect"))
    return checks_frame(rows)


def headline(facts: Mapping[str, object]) -> pd.DataFrame:
    """The chapter's answer at a glance (AIPW, clustered by user and movie)."""
    if not facts["aipw_significant"]:
        answer = "No effect detectable"
    else:
        answer = f"Slightly {facts['aipw_direction']} ratings"
    truth = facts.get("truth_ate")
    if truth is None:
        verdict, label = "no known answer (real data)", ""
    else:
        label = "planted effect"
        verdict = "recovers the planted effect" if facts["aipw_covers_truth"] else \
            "misses the planted effect"
    return headline_frame(question=QUESTION, answer=answer, estimate=facts["aipw"],
                          ci_lower=facts["aipw_lo"], ci_upper=facts["aipw_hi"], unit="stars",
                          reference=truth, reference_label=label, verdict=verdict)
