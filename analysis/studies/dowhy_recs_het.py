"""The DoWhy chapter's heterogeneous-effect scenario: which estimators recover the ATE when
the effect varies with a confounder.

The constant-effect simulator makes recovery close to guaranteed: every weighted average
of one effect is that effect.  Here user :math:`i`'s effect is
:math:`\\tau + h(E_i^2 - 1)` (larger for very engaged and for disengaged users; mean
:math:`\\tau` because :math:`E_i \\sim N(0, 1)`), and engagement drives the treatment
more strongly (:math:`\\lambda = 1`), so estimators that target different averages give
different answers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.causal.pipeline import DoWhyPipeline
from analysis.data.music import CONTENT, ENGAGEMENT, OUTCOME, TREATMENT, simulate_music
from analysis.estimators.linear import design, ols
from analysis.result import check_row, tidy_frame, tidy_row

ROLES = {"naive": ("counterexample", "the difference in means (confounded)"),
         "backdoor.linear_regression": ("counterexample", "a variance-weighted average of "
                                        "the effects (one constant effect assumed)"),
         "interacted": ("counterexample", "the ATE if the effect is linear in the "
                        "covariates (here it is not)"),
         "backdoor.econml.dml.LinearDML": ("counterexample", "an overlap-weighted average "
                                           "of the effects"),
         "backdoor.propensity_score_weighting": ("method", "the ATE"),
         "econml.dr.LinearDRLearner": ("method", "the ATE (doubly robust, cross-fitted "
                                       "LightGBM)")}
"""Each estimator's role in the checks and the estimand it targets under heterogeneity."""


def interacted_regression(frame: pd.DataFrame) -> dict:
    """Regression with treatment-by-covariate interactions (Lin, 2013): the treatment's
    coefficient with centred covariates is the ATE when the effect is linear in them."""
    W, _ = design(frame, [ENGAGEMENT, CONTENT])
    Wc = W[:, 1:] - W[:, 1:].mean(axis=0)
    t = frame[TREATMENT].to_numpy(dtype=float)
    X = np.column_stack([np.ones(len(t)), t, Wc, t[:, None] * Wc])
    fit = ols(frame[OUTCOME].to_numpy(dtype=float), X,
              ["const", TREATMENT, *[f"x{i}" for i in range(2 * Wc.shape[1])]])
    return tidy_row("Regression with treatment interactions", fit.coef[1], fit.se_hc1[1],
                    method="interacted")


def dr_learner(frame: pd.DataFrame, model_y, model_t, *, folds: int, seed: int) -> dict:
    """EconML's LinearDRLearner with no effect modifiers: the mean of cross-fitted AIPW
    scores, the ATE."""
    from econml.dr import LinearDRLearner

    W, _ = design(frame, [ENGAGEMENT, CONTENT])
    est = LinearDRLearner(model_propensity=model_t(), model_regression=model_y(), cv=folds,
                          random_state=seed)
    est.fit(frame[OUTCOME].to_numpy(dtype=float), frame[TREATMENT].to_numpy(), X=None,
            W=W[:, 1:])
    inf = est.ate_inference()
    return tidy_row("Doubly robust learner (EconML LinearDRLearner)", float(inf.mean_point),
                    float(inf.stderr_mean), method="econml.dr.LinearDRLearner")


def heterogeneous(config, graph, model_y, model_t) -> tuple[pd.DataFrame, dict]:
    """Every estimator on the heterogeneous-effect app, beside the planted ATE.

    Returns
    -------
    (DataFrame, dict)
        The tidy table (with ``truth``, ``covers_truth``, ``role`` and ``targets``) and facts.
    """
    sim = simulate_music(**{**config.sim_params(), "heterogeneity": config.het_effect,
                            "confounding": config.het_confounding, "seed": config.seed + 7})
    pipe = DoWhyPipeline(sim.frame, graph, treatment=TREATMENT, outcome=OUTCOME,
                         seed=config.seed)
    rows = [pipe.naive(), pipe.backdoor_linear()[0], interacted_regression(sim.frame),
            pipe.propensity_weighting(n_bootstrap=config.bootstrap)[0],
            pipe.double_ml(model_y=model_y, model_t=model_t, folds=config.dml_folds)[0],
            dr_learner(sim.frame, model_y, model_t, folds=config.dml_folds, seed=config.seed)]
    t = tidy_frame(rows)
    truth = sim.truth["ate"]
    t["truth"] = truth
    t["covers_truth"] = (t["ci_lower"] <= truth) & (truth <= t["ci_upper"])
    t["role"] = t["method"].map(lambda m: ROLES[m][0])
    t["targets"] = t["method"].map(lambda m: ROLES[m][1])
    recover = t.loc[t["covers_truth"] & (t["method"] != "naive"), "term"].tolist()
    facts = {"het_ate": truth, "het_att": sim.truth["att"], "het_effect": config.het_effect,
             "het_confounding": config.het_confounding,
             "het_recover": ", ".join(recover) if recover else "none",
             "het_n_recover": len(recover),
             "het_lr": float(t.loc[t["method"] == "backdoor.linear_regression",
                                   "estimate"].iloc[0])}
    return t, facts


def checks(t: pd.DataFrame) -> list[dict]:
    """Known-answer rows: each estimator against the planted ATE, with its designed role."""
    return [check_row(f"Heterogeneous effect: {r.term} vs the planted ATE", "planted truth",
                      r.estimate, r.ci_lower, r.ci_upper, r.truth, "planted ATE", role=r.role,
                      detail=f"targets {r.targets}") for r in t.itertuples()]
