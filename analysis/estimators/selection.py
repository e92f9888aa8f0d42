"""Nuisance learners chosen by cross-validated loss, not fixed defaults.

A flexible learner is not always the better nuisance model: on a few thousand rows
a large LightGBM propensity model over-fits, puts propensities near 0 and 1, and
the inverse-propensity weights of the AIPW score then explode its standard error.
So the candidates below are scored on out-of-fold predictions (the same folds as
cross-fitting, grouped by cluster) and the one with the lowest loss is used:
log loss for the propensity (with the Brier score and the calibration error
reported beside it) and root mean squared error for the outcome.

The candidate set is small and documented (:func:`default_candidates`):

``linear``
    Logistic regression / ridge regression on standardised features (L2, C = 1 /
    alpha = 1): stable, well calibrated, cannot over-fit much.
``lgbm-small``
    LightGBM with 150 trees of 7 leaves, at least 100 rows a leaf, learning rate 0.05.
``lgbm-large``
    LightGBM with 500 trees of 63 leaves, at least 5 rows a leaf, learning rate 0.1:
    the kind of default that over-fits a small sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from analysis.estimators.crossfit import Nuisance, cross_fit_all

Kind = Literal["classifier", "regressor"]
EPS = 1e-12


def default_candidates(kind: Kind, *, seed: int = 0) -> dict[str, BaseEstimator]:
    """The documented candidate learners (see the module docstring)."""
    from lightgbm import LGBMClassifier, LGBMRegressor

    lgbm = LGBMClassifier if kind == "classifier" else LGBMRegressor
    common = {"n_jobs": 1, "verbose": -1, "random_state": seed, "subsample": 0.8,
              "subsample_freq": 1, "colsample_bytree": 0.8}
    linear = (make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
              if kind == "classifier" else make_pipeline(StandardScaler(), Ridge(alpha=1.0)))
    return {
        "linear": linear,
        "lgbm-small": lgbm(n_estimators=150, num_leaves=7, min_child_samples=100,
                           learning_rate=0.05, **common),
        "lgbm-large": lgbm(n_estimators=500, num_leaves=63, min_child_samples=5,
                           learning_rate=0.1, **common),
    }


def out_of_fold(candidates: Mapping[str, BaseEstimator], X: np.ndarray, y: np.ndarray,
                folds: np.ndarray, *, method: str, fit_mask: np.ndarray | None = None,
                name: str = "learner") -> dict[str, np.ndarray]:
    """Cross-fitted predictions of every candidate (each cloned per fold); every
    candidate's fit of every fold is a task of
    :func:`~analysis.estimators.crossfit.cross_fit_all`."""
    targets = {"y": np.asarray(y)}
    if fit_mask is not None:
        targets["mask"] = np.asarray(fit_mask, dtype=bool)
    specs = [Nuisance(key, est, "y", method, None if fit_mask is None else "mask",  # type: ignore[arg-type]
                      label=f"{name} ({key})") for key, est in candidates.items()]
    out = cross_fit_all(specs, X, targets, [folds])
    return {key: out[key][0] for key in candidates}


def arms_out_of_fold(m_candidates: Mapping[str, BaseEstimator],
                     g_candidates: Mapping[str, BaseEstimator], X: np.ndarray, y: np.ndarray,
                     d: np.ndarray, folds: np.ndarray, *, m_name: str = "ml_m",
                     g_name: str = "ml_g"
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray],
                                dict[str, np.ndarray]]:
    """Out-of-fold propensities of every propensity candidate and arm-wise outcome
    predictions (:math:`g_0` fitted on the untreated, :math:`g_1` on the treated) of every
    outcome candidate, all fits as the tasks of one
    :func:`~analysis.estimators.crossfit.cross_fit_all` call.

    Returns
    -------
    m_hat, g0_hat, g1_hat : dict of candidate name to array (n,)
    """
    targets = {"y": np.asarray(y), "d": np.asarray(d), "treated": np.asarray(d) == 1,
               "untreated": np.asarray(d) == 0}
    specs = [Nuisance(f"m/{k}", est, "d", "predict_proba", label=f"{m_name} ({k})")
             for k, est in m_candidates.items()]
    for arm, where, text in (("g0", "untreated", "untreated arm"), ("g1", "treated",
                                                                     "treated arm")):
        specs += [Nuisance(f"{arm}/{k}", est, "y", "predict", where,
                           label=f"{g_name} ({text}) ({k})") for k, est in g_candidates.items()]
    out = cross_fit_all(specs, X, targets, [folds])
    return ({k: out[f"m/{k}"][0] for k in m_candidates},
            {k: out[f"g0/{k}"][0] for k in g_candidates},
            {k: out[f"g1/{k}"][0] for k in g_candidates})


def propensity_losses(oof: Mapping[str, np.ndarray], d: np.ndarray) -> pd.DataFrame:
    """Out-of-fold log loss, Brier score, calibration error and weight range per candidate.

    Notes
    -----
    The expected calibration error is :math:`\\sum_b \\frac{n_b}{n}|\\bar d_b - \\bar m_b|`
    over ten equal-width bins of the predicted propensity :math:`\\hat m`; ``max_weight``
    is the largest :math:`1/\\hat m` or :math:`1/(1-\\hat m)` a unit would get unclipped.
    """
    rows = []
    for key, m in oof.items():
        mc = np.clip(m, EPS, 1 - EPS)
        rows.append({"learner": key,
                     "log_loss": float(-np.mean(d * np.log(mc) + (1 - d) * np.log(1 - mc))),
                     "brier": float(np.mean((d - m) ** 2)),
                     "ece": expected_calibration_error(m, d),
                     "min_propensity": float(m.min()), "max_propensity": float(m.max()),
                     "max_weight": float(np.max(np.where(d == 1, 1 / mc, 1 / (1 - mc))))})
    out = pd.DataFrame(rows)
    out["selected"] = out["log_loss"] == out["log_loss"].min()
    return out


def outcome_losses(oof_g0: Mapping[str, np.ndarray], oof_g1: Mapping[str, np.ndarray],
                   y: np.ndarray, d: np.ndarray) -> pd.DataFrame:
    """Out-of-fold RMSE of each outcome candidate on the arm each unit was observed in."""
    rows = []
    for key in oof_g0:
        pred = np.where(d == 1, oof_g1[key], oof_g0[key])
        rows.append({"learner": key, "rmse": float(np.sqrt(np.mean((y - pred) ** 2))),
                     "rmse_treated": float(np.sqrt(np.mean((y - pred)[d == 1] ** 2))),
                     "rmse_untreated": float(np.sqrt(np.mean((y - pred)[d == 0] ** 2)))})
    out = pd.DataFrame(rows)
    out["selected"] = out["rmse"] == out["rmse"].min()
    return out


def expected_calibration_error(m: np.ndarray, d: np.ndarray, bins: int = 10) -> float:
    """Bin-weighted mean absolute gap between predicted and observed treatment rates."""
    t = calibration_curve(m, d, bins)
    return float(np.sum(t["n"] * (t["observed"] - t["predicted"]).abs()) / t["n"].sum())


def calibration_curve(m: np.ndarray, d: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted and observed treatment rate in equal-width bins of the propensity."""
    idx = np.minimum((np.asarray(m) * bins).astype(int), bins - 1)
    n = np.bincount(idx, minlength=bins)
    keep = n > 0
    pred = np.bincount(idx, weights=m, minlength=bins)[keep] / n[keep]
    obs = np.bincount(idx, weights=d, minlength=bins)[keep] / n[keep]
    lower = np.arange(bins)[keep] / bins
    return pd.DataFrame({"lower": lower, "upper": lower + 1 / bins, "n": n[keep],
                         "predicted": pred, "observed": obs})
