"""Who should get the price change?  Causal forests for a subscription price.

A source report simulated 5,000 customers whose true effect is linear in an
engagement score X2, fitted EconML's ``CausalForestDML`` and printed an ATE of
0.0000 with a 95% interval of (0.6747, 1.2446): an estimate outside its own
interval, a bug (one customer's interval, or the interval of the mean of the CATE
predictions, printed as the ATE's).  This chapter redoes the analysis on a richer
simulator with every customer's true effect: the correct ATE inference, seven CATE
methods scored against the truth and chosen without it (held-out R-loss), calibration
(BLP, GATES, RATE/TOC) of the chosen method, policies with doubly robust values, a
second scenario where the truth is not linear, and a Monte Carlo check of the
intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.config import StudyConfig, at_least, folds, fraction, non_negative, seed_field
from analysis.data.common import DataRef
from analysis.data.pricing import FEATURES, PricingData, pricing_ref, simulate_pricing
from analysis.errors import ConfigError
from analysis.estimators.cate import METHODS, fit_cate
from analysis.estimators.cate_selection import out_of_fold_cate, selection_table
from analysis.estimators.crossfit import make_folds
from analysis.estimators.heterogeneity import blp, gates
from analysis.estimators.policy import rate
from analysis.report.summaries import effect
from analysis.result import StudyResult, checks_frame
from analysis.studies import forest_pricing_facts as facts_mod
from analysis.studies import forest_pricing_parts as parts
from analysis.studies.base import Timer, make_result

NAME = "forest_pricing"
TITLE = "Who should get the price change? Causal forests"
CHAPTER = "chapters/forest.qmd"
SUMMARY_TEMPLATE = "studies/forest_pricing.md.j2"
RECOMMENDATION_TEMPLATE = "studies/forest_pricing_recommendation.md.j2"
CALLOUT_TEMPLATE = "studies/forest_pricing_callout.md.j2"
DESIGN = "simulation"
"""The chapter is a simulation by design: every customer's true effect is known."""


@dataclass(frozen=True, kw_only=True)
class Config(StudyConfig):
    """Settings of the causal forest chapter.

    Attributes
    ----------
    n_customers : int
        Simulated customers (the report had 5,000).
    n_folds : int
        Cross-fitting folds, shared by every method and by the held-out calibration.
    n_trees, min_samples_leaf, max_samples : forest settings
    cost : float
        Cost of treating one customer in the policy comparison (dollars of revenue).
    tree_depth, tree_leaf : int
        Depth and minimum leaf size of the policy tree.
    n_boot : int
        Bootstrap replicates of the RATE intervals.
    coverage_reps, coverage_customers, coverage_trees : int
        The Monte Carlo check of the headline pipeline (learners chosen by cross-validated
        loss in every replication, the forest's settings but ``coverage_trees`` trees, the
        ATE from ``ate__inference``) on ``coverage_customers`` customers per replication;
        ``coverage_reps = 0`` skips it.
    bcf_gfr, bcf_mcmc : int
        Warm-start sweeps and retained posterior draws of the Bayesian causal forest.
    """

    seed: int = seed_field(20230301)
    n_customers: int = at_least(5000, 500, "a forest needs leaves of both arms in every fold")
    n_folds: int = folds(3)
    n_trees: int = at_least(400, 20, "a forest of fewer trees has no variance estimate")
    min_samples_leaf: int = at_least(10, 1, "a leaf holds at least one unit")
    max_samples: float = fraction(0.45)
    cost: float = non_negative(2.0)
    tree_depth: int = at_least(2, 1, "a policy tree splits at least once")
    tree_leaf: int = at_least(100, 10, "policy-tree leaves need customers")
    n_boot: int = at_least(200, 50, "a percentile interval needs replicates")
    coverage_reps: int = non_negative(100)
    coverage_customers: int = at_least(1000, 500, "a forest needs leaves in every fold")
    coverage_trees: int = at_least(100, 20, "a forest of fewer trees has no variance estimate")
    bcf_gfr: int = at_least(10, 1, "the BCF starts from grow-from-root sweeps")
    bcf_mcmc: int = at_least(500, 20, "a 95% credible interval needs posterior draws")

    def check(self) -> None:
        """Forests are built in sub-forests of four trees (for their variance estimate)."""
        for key in ("n_trees", "coverage_trees"):
            if getattr(self, key) % 4:
                raise ConfigError(f"{key} = {getattr(self, key)} is not a multiple of 4; the "
                                  "forest's variance estimate needs whole sub-forests of 4 "
                                  "trees. Use e.g. 100 or 400.")

    def forest_settings(self) -> dict:
        """The forest's settings for :func:`fit_cate`."""
        return {"n_estimators": self.n_trees, "min_samples_leaf": self.min_samples_leaf,
                "max_samples": self.max_samples}

    def coverage_settings(self) -> dict:
        """The forest's settings in the Monte Carlo check (fewer trees, for time)."""
        return {**self.forest_settings(), "n_estimators": self.coverage_trees}

    def method_settings(self) -> dict[str, dict]:
        """Extra settings of the other methods (the BCF's draws)."""
        return {"bcf": {"num_gfr": self.bcf_gfr, "num_mcmc": self.bcf_mcmc}}


def data_ref(config: Config, root: Path | None = None) -> DataRef:
    """The simulator's settings (both scenarios derive from them)."""
    return pricing_ref(n=config.n_customers, scenario="linear", seed=config.seed)


def run(config: Config, root: Path | None = None) -> StudyResult:
    """Estimate the price change's effects, their calibration and the best policy.

    Returns
    -------
    StudyResult
        Tables ``estimates`` (the forest's ATE), ``report_calls``, ``methods``,
        ``methods_nonlinear``, ``cate``, ``cate_nonlinear``, ``tuning``, ``blp``,
        ``gates``, ``rate``, ``toc``, ``policies``, ``tree``, ``importance``,
        ``nuisance``, ``coverage`` and ``coverage_reps`` (with ``coverage_reps > 0``),
        ``summary``, ``limitations``, ``checks``, ``headline``.
    """
    timer = Timer()
    data = simulate_pricing(n=config.n_customers, scenario="linear", seed=config.seed)
    nonlinear = simulate_pricing(n=config.n_customers, scenario="nonlinear", seed=config.seed)
    tables = analyse(data, config)
    tables.update(_nonlinear(nonlinear, config))
    reps = None
    if config.coverage_reps:
        reps, tables["coverage"] = parts.coverage_study(
            reps=config.coverage_reps, n=config.coverage_customers,
            forest_settings=config.coverage_settings(), n_folds=config.n_folds,
            seed=config.seed + 11)
        tables["coverage_reps"] = reps
    facts = facts_mod.facts(config, tables, data, nonlinear)
    tables["limitations"] = facts_mod.limitations(facts)
    tables["checks"] = checks_frame(
        parts.method_checks(tables["methods"], "linear")
        + parts.method_checks(tables["methods_nonlinear"], "non-linear")
        + (parts.coverage_rows(reps) if reps is not None else [])
        + [parts.naive_check(data)])
    tables["headline"] = facts_mod.headline(facts)
    return make_result(study=NAME, config=config, ref=data_ref(config, root),
                       rows=len(data.frame), tables=tables, facts=facts, timer=timer)


def analyse(data: PricingData, config: Config) -> dict[str, pd.DataFrame]:
    """Everything on the linear (the report's) scenario."""
    X, y, t = _arrays(data)
    forest = fit_cate(X, y, t, method="causal_forest", seed=config.seed,
                      n_folds=config.n_folds, **config.forest_settings())
    methods, fits = parts.compare_methods(X, y, t, data.tau, forest=forest, seed=config.seed,
                                          n_folds=config.n_folds, methods=METHODS,
                                          settings=config.method_settings())
    folds_ = make_folds(len(y), config.n_folds, seed=config.seed + 1)
    oof = out_of_fold_cate(X, y, t, methods=METHODS, nuisance=forest.nuisance, folds=folds_,
                           seed=config.seed, modifiers=[parts.MODIFIER],
                           settings={"causal_forest": config.forest_settings(),
                                     **config.method_settings()})
    selection = selection_table(oof, y, t, nuisance=forest.nuisance, tau=data.tau)
    chosen_method = str(selection.loc[selection["chosen"], "method"].iloc[0])
    cf = parts.cross_fitted(X, y, t, nuisance=forest.nuisance, tau_oof=oof[chosen_method],
                            folds=folds_, seed=config.seed, cost=config.cost,
                            depth=config.tree_depth, leaf=config.tree_leaf)
    toc, rate_summary = rate(cf["psi"], cf["tau_oof"], n_boot=config.n_boot, seed=config.seed)
    g = gates(cf["psi"], cf["tau_oof"])
    edges = np.quantile(cf["tau_oof"], np.linspace(0, 1, 6))
    group = np.clip(np.searchsorted(edges, cf["tau_oof"], side="right") - 1, 0, 4)
    truth = [float(data.tau[group == h].mean()) for h in range(5)]
    g["truth"] = truth + [truth[-1] - truth[0]]
    nu = forest.nuisance
    tables = {
        "estimates": forest.tidy().assign(truth=float(data.tau.mean())),
        "report_calls": parts.report_calls(forest, X),
        "methods": methods,
        "cate": parts.cate_table(data, fits),
        "blp": blp(cf["psi"], cf["tau_oof"]),
        "gates": g,
        "rate": rate_summary,
        "toc": toc,
        "policies": parts.policies(cf, data.tau, config.cost, chosen=chosen_method,
                                   forest_oof=oof["causal_forest"]),
        "selection": selection,
        "tree": cf["tree"],
        "importance": pd.DataFrame({"feature": FEATURES,
                                    "importance": forest.model.feature_importances_})
        .sort_values("importance", ascending=False).reset_index(drop=True),
        "nuisance": pd.concat([nu["t_losses"].assign(model="propensity"),
                               nu["y_losses"].assign(model="outcome")], ignore_index=True),
        "summary": _summary(data),
    }
    leaf, trees = config.min_samples_leaf, config.n_trees
    fewer = max(4, trees // 4 // 4 * 4)
    grid = [{"min_samples_leaf": 5, "n_estimators": trees},
            {"min_samples_leaf": 50, "n_estimators": trees},
            {"min_samples_leaf": leaf, "n_estimators": trees, "honest": False},
            {"min_samples_leaf": leaf, "n_estimators": fewer}]
    tuned = parts.tune_forest(X, y, t, data.tau, forest=forest, settings=grid,
                              seed=config.seed, n_folds=config.n_folds)
    chosen = methods.set_index("method").loc["causal_forest"]
    tables["tuning"] = pd.concat([pd.DataFrame([{
        "min_samples_leaf": leaf, "n_estimators": trees, "chosen": True,
        **{k: chosen[k] for k in ("sqrt_pehe", "coverage", "rank_corr", "mean_width")},
        "ate": chosen["estimate"], "ate_se": chosen["std_error"]}]),
        tuned.assign(chosen=False)], ignore_index=True)
    return tables


def _nonlinear(data: PricingData, config: Config) -> dict[str, pd.DataFrame]:
    """The second scenario: a step in two features."""
    X, y, t = _arrays(data)
    forest = fit_cate(X, y, t, method="causal_forest", seed=config.seed,
                      n_folds=config.n_folds, **config.forest_settings())
    methods, fits = parts.compare_methods(
        X, y, t, data.tau, forest=forest, seed=config.seed, n_folds=config.n_folds,
        methods=("causal_forest", "linear_dml", "dr_learner", "ols_interactions", "bcf"),
        settings=config.method_settings())
    return {"methods_nonlinear": methods, "cate_nonlinear": parts.cate_table(data, fits)}


def _arrays(data: PricingData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (data.X.to_numpy(), data.frame["revenue"].to_numpy(),
            data.frame["treated"].to_numpy())


def _summary(data: PricingData) -> pd.DataFrame:
    f = data.frame
    y1, y0 = f.loc[f["treated"] == 1, "revenue"], f.loc[f["treated"] == 0, "revenue"]
    rows = [("Customers", f"{len(f):,}"), ("Offered the new price", f"{f['treated'].mean():.1%}"),
            ("Mean 90-day revenue, new price ($)", f"{y1.mean():,.2f}"),
            ("Mean 90-day revenue, old price ($)", f"{y0.mean():,.2f}"),
            ("True average effect, this sample ($)", effect(data.tau.mean(), 2)),
            ("True effects, 5th to 95th percentile ($)",
             f"{effect(np.percentile(data.tau, 5), 2)} to "
             f"{effect(np.percentile(data.tau, 95), 2)}"),
            ("Customers the change truly helps", f"{np.mean(data.tau > 0):.1%}"),
            ("Propensity of the offer (true), range",
             f"{data.propensity.min():.2f} to {data.propensity.max():.2f}")]
    return pd.DataFrame(rows, columns=["measure", "value"])
