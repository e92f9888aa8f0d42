"""The DoWhy pipeline on real data with a known answer: LaLonde and Card.

Every benchmark is computed from the data: the LaLonde experimental effect is
the difference in means of the randomised NSW sample, never a typed number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from analysis.causal.iv import anderson_rubin, two_stage_least_squares
from analysis.causal.pipeline import DoWhyPipeline
from analysis.data.benchmarks import Benchmark, load_card, load_nsw_cps, load_nsw_experiment
from analysis.estimators.linear import design, ols
from analysis.result import count_phrase, tidy_frame, tidy_row

BALANCE_VARS = ("age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75", "u74",
                "u75")


@dataclass(frozen=True)
class CheckResult:
    """Tables and facts of one real-data check."""

    tables: dict[str, pd.DataFrame]
    facts: dict[str, float | int | str | bool]


def backdoor_graph(b: Benchmark) -> nx.DiGraph:
    """Every covariate causes treatment and outcome; treatment causes outcome."""
    g = nx.DiGraph([(b.treatment, b.outcome)])
    g.add_edges_from((c, n) for c in b.covariates for n in (b.treatment, b.outcome))
    return g


def lalonde_check(*, n_bootstrap: int, model_y: Callable[[], object],
                  model_t: Callable[[], object], folds: int, seed: int) -> CheckResult:
    """NSW experimental benchmark vs backdoor adjustment with CPS controls.

    Returns
    -------
    CheckResult
        Tables ``lalonde`` (tidy estimates with ``benchmark``, ``error`` and
        ``bias_reduction``), ``lalonde_balance`` and ``lalonde_overlap``.
    """
    exp = load_nsw_experiment()
    e = exp.frame
    y1, y0 = e.loc[e["treat"] == 1, "re78"], e.loc[e["treat"] == 0, "re78"]
    bench = float(y1.mean() - y0.mean())
    bench_se = float(np.sqrt(y1.var() / len(y1) + y0.var() / len(y0)))
    obs = load_nsw_cps()
    pipe = DoWhyPipeline(obs.frame, backdoor_graph(obs), treatment="treat", outcome="re78",
                         seed=seed)
    naive = pipe.naive()
    naive["term"] = "Naive difference (NSW trainees − CPS)"
    lr, _ = pipe.backdoor_linear()
    psw, scores = pipe.propensity_weighting(target="att", n_bootstrap=n_bootstrap)
    dml, _ = pipe.double_ml(model_y=model_y, model_t=model_t, folds=folds)
    rows = [tidy_row("Experimental benchmark (NSW randomised)", bench, bench_se,
                     method="experiment"), naive, lr, psw, dml]
    table = tidy_frame(rows)
    table["benchmark"] = bench
    table["error"] = table["estimate"] - bench
    naive_err = abs(naive["estimate"] - bench)
    table["bias_reduction"] = 1 - table["error"].abs() / naive_err
    table.loc[0, ["error", "bias_reduction"]] = np.nan
    table.loc[1, "bias_reduction"] = np.nan  # the naive comparison is the reference
    table["covers_benchmark"] = (table["ci_lower"] <= bench) & (bench <= table["ci_upper"])
    treated = obs.frame["treat"].to_numpy() == 1
    best = table.iloc[2:].loc[lambda t: t["error"].abs().idxmin()]
    facts = {
        "lalonde_benchmark": bench, "lalonde_benchmark_se": bench_se,
        "lalonde_n_treated": int(treated.sum()), "lalonde_n_controls": int((~treated).sum()),
        "lalonde_n_experiment_controls": int(len(y0)),
        "lalonde_naive": naive["estimate"], "lalonde_lr": lr["estimate"],
        "lalonde_lr_lower": lr["ci_lower"], "lalonde_lr_upper": lr["ci_upper"],
        "lalonde_psw": psw["estimate"], "lalonde_psw_lower": psw["ci_lower"],
        "lalonde_psw_upper": psw["ci_upper"], "lalonde_dml": dml["estimate"],
        "lalonde_dml_lower": dml["ci_lower"], "lalonde_dml_upper": dml["ci_upper"],
        "lalonde_best_method": str(best["term"]), "lalonde_best_estimate": float(best["estimate"]),
        "lalonde_best_error": float(best["error"]),
        "lalonde_best_abs_error": float(abs(best["error"])),
        "lalonde_naive_abs_error": float(naive_err),
        "lalonde_cover_phrase": count_phrase(int(table.iloc[2:]["covers_benchmark"].sum()),
                                             len(table.iloc[2:]), "intervals", "contain")
        + " the benchmark",
        "lalonde_share_controls_low_ps": float(np.mean(scores[~treated] < 0.01)),
        "lalonde_share_treated_high_ps": float(np.mean(scores[treated] > 0.99)),
    }
    return CheckResult(tables={"lalonde": table, "lalonde_balance": _balance(obs.frame, e),
                               "lalonde_overlap": _overlap(scores, treated)}, facts=facts)


def _balance(obs: pd.DataFrame, exp: pd.DataFrame) -> pd.DataFrame:
    cols = list(BALANCE_VARS)
    t = obs.loc[obs["treat"] == 1, cols]
    c = obs.loc[obs["treat"] == 0, cols]
    ec = exp.loc[exp["treat"] == 0, cols]
    sd = np.sqrt((t.var() + c.var()) / 2)
    return pd.DataFrame({"variable": cols, "nsw_treated": t.mean().to_numpy(),
                         "nsw_controls": ec.mean().to_numpy(), "cps": c.mean().to_numpy(),
                         "std_diff_cps": ((t.mean() - c.mean()) / sd).to_numpy()})


def _overlap(scores: np.ndarray, treated: np.ndarray) -> pd.DataFrame:
    edges = np.linspace(0, 1, 26)
    ht, _ = np.histogram(scores[treated], bins=edges)
    hc, _ = np.histogram(scores[~treated], bins=edges)
    return pd.DataFrame({"lower": edges[:-1], "upper": edges[1:], "treated": ht, "controls": hc})


CARD_LITERATURE_IV = 0.126
"""The 2SLS return to schooling the literature quotes for Card's college-proximity IV
(a quotation, not a result; the chapter says why it is not reproduced exactly)."""

CARD_SPECS = {
    "Mixtape controls": ("exper", "black", "south", "smsa", "married"),
    "Adding experience²": ("exper", "exper2", "black", "south", "smsa", "married"),
}


def card_check() -> CheckResult:
    """OLS and 2SLS returns to schooling with college proximity as the instrument.

    Returns
    -------
    CheckResult
        Table ``card``: per specification, OLS and 2SLS tidy rows with the
        first-stage F.
    """
    b = load_card()
    df = b.frame
    rows = []
    for spec, covs in CARD_SPECS.items():
        X, names = design(df, [b.treatment, *covs])
        fit = ols(df[b.outcome].to_numpy(float), X, names)
        i = fit.index(b.treatment)
        rows.append(tidy_row(f"OLS ({spec})", fit.coef[i], fit.se_hc1[i], spec=spec,
                             method="OLS", first_stage_f=np.nan))
        iv = two_stage_least_squares(df, outcome=b.outcome, treatment=b.treatment,
                                     instrument=b.instrument, covariates=covs)
        rows.append(iv.tidy(f"2SLS ({spec})", spec=spec, method="2SLS"))
    table = tidy_frame(rows)
    main = table[table["spec"] == "Mixtape controls"].set_index("method")
    first = two_stage_least_squares(df, outcome=b.outcome, treatment=b.treatment,
                                    instrument=b.instrument, covariates=CARD_SPECS[
                                        "Mixtape controls"])
    facts = {"card_n": int(len(df)), "card_ols": float(main.loc["OLS", "estimate"]),
             "card_iv": float(main.loc["2SLS", "estimate"]),
             "card_iv_lower": float(main.loc["2SLS", "ci_lower"]),
             "card_iv_upper": float(main.loc["2SLS", "ci_upper"]),
             "card_ols_lower": float(main.loc["OLS", "ci_lower"]),
             "card_ols_upper": float(main.loc["OLS", "ci_upper"]),
             "card_first_stage_f": first.first_stage_f,
             "card_first_stage_coef": first.first_stage_coef,
             "card_iv_se_ratio": float(main.loc["2SLS", "std_error"] / main.loc["OLS",
                                                                             "std_error"]),
             "card_iv_ols_ratio": float(main.loc["2SLS", "estimate"] / main.loc["OLS",
                                                                             "estimate"]),
             "card_weak": bool(first.weak),
             "card_alt_iv": float(table.loc[table["term"] == "2SLS (Adding experience²)",
                                            "estimate"].iloc[0])}
    ar = anderson_rubin(df, outcome=b.outcome, treatment=b.treatment, instrument=b.instrument,
                        covariates=CARD_SPECS["Mixtape controls"])
    facts.update(card_ar_kind=ar.kind, card_ar_lower=float(ar.lower),
                 card_ar_upper=float(ar.upper), card_ar_bounded=ar.bounded)
    return CheckResult(tables={"card": table}, facts=facts)
