"""Sensitivity to an unobserved confounder: bias sweeps, Cinelli-Hazlett, E-values.

Three complementary views of "how strong would a hidden confounder have to be":

* :func:`confounder_sweep` -- in natural units, the omitted-variable bias of a
  linear regression adjustment over a grid of (imbalance of the confounder
  between treated and untreated) x (its effect on the outcome);
* :func:`robustness_value`, :func:`adjusted_estimate` and
  :func:`benchmark_bounds` -- the partial-R² parametrisation of Cinelli & Hazlett
  (2020, JRSS-B), with bounds benchmarked on an observed covariate;
* :func:`e_value` -- VanderWeele & Ding's (2017) E-value for a difference in means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis.causal.graph import check_columns
from analysis.estimators.linear import design, ols


def confounder_sweep(estimate: float, imbalance: np.ndarray,
                     outcome_effect: np.ndarray) -> pd.DataFrame:
    """Bias-adjusted estimates over a grid of hypothetical confounders.

    Parameters
    ----------
    estimate : float
        The covariate-adjusted regression estimate.
    imbalance : array
        :math:`\\delta`: how much higher (in SD) the confounder is among treated
        than among comparable untreated units.
    outcome_effect : array
        :math:`\\gamma`: the confounder's effect on the outcome per SD.

    Returns
    -------
    DataFrame
        Columns ``imbalance``, ``outcome_effect``, ``adjusted`` (one row per pair).

    Notes
    -----
    By the omitted-variable-bias identity of least squares, adding a confounder
    :math:`U` (uncorrelated with the observed covariates given the treatment) to
    the regression changes the treatment coefficient by exactly
    :math:`-\\gamma\\delta`, where :math:`\\delta` is the coefficient of the
    treatment in the regression of :math:`U` on the treatment and covariates and
    :math:`\\gamma` the coefficient of :math:`U` in the outcome regression.  So
    the estimate adjusted for :math:`U` is :math:`\\hat\\tau - \\gamma\\delta` and it
    crosses zero on the hyperbola :math:`\\gamma\\delta = \\hat\\tau`.
    """
    d, g = np.meshgrid(np.asarray(imbalance, float), np.asarray(outcome_effect, float),
                       indexing="ij")
    return pd.DataFrame({"imbalance": d.ravel(), "outcome_effect": g.ravel(),
                         "adjusted": estimate - d.ravel() * g.ravel()})


@dataclass(frozen=True)
class CovariateStrength:
    """How strongly an observed covariate confounds, in both parametrisations.

    Attributes
    ----------
    name : str
    imbalance : float
        :math:`\\delta_j`: treated-minus-untreated difference in the standardised
        covariate, holding the other covariates fixed.
    outcome_effect : float
        :math:`\\gamma_j`: effect on the outcome of one SD of the covariate.
    r2_treatment : float
        Partial R² of the covariate with the treatment given the other covariates.
    r2_outcome : float
        Partial R² of the covariate with the outcome given treatment and the others.
    """

    name: str
    imbalance: float
    outcome_effect: float
    r2_treatment: float
    r2_outcome: float


def covariate_strength(data: pd.DataFrame, *, outcome: str, treatment: str,
                       covariates: Sequence[str], benchmark: str) -> CovariateStrength:
    """Measure an observed, numeric covariate as a benchmark confounder.

    Raises
    ------
    DataError
        If a column is missing.
    """
    check_columns(data, [outcome, treatment, benchmark, *covariates])
    others = [c for c in covariates if c != benchmark]
    z = data[benchmark].astype(float)
    df = data.assign(**{benchmark: (z - z.mean()) / z.std()})
    X, names = design(df, [treatment, benchmark, *others])
    out = ols(df[outcome].to_numpy(float), X, names)
    Xd, dnames = design(df, [treatment, *others])
    imb = ols(df[benchmark].to_numpy(float), Xd, dnames)
    Xt, tnames = design(df, [benchmark, *others])
    trt = ols(df[treatment].to_numpy(float), Xt, tnames)
    return CovariateStrength(
        name=benchmark, imbalance=float(imb.coef[imb.index(treatment)]),
        outcome_effect=float(out.coef[out.index(benchmark)]),
        r2_treatment=partial_r2(trt.t_classical(benchmark), trt.dof),
        r2_outcome=partial_r2(out.t_classical(benchmark), out.dof))


def partial_r2(t: float, dof: int) -> float:
    """Partial R² of a regressor from its t statistic: :math:`t^2/(t^2 + \\text{dof})`."""
    return float(t**2 / (t**2 + dof))


def robustness_value(t: float, dof: int, *, q: float = 1.0, alpha: float | None = None) -> float:
    """Cinelli-Hazlett robustness value :math:`RV_{q,\\alpha}`.

    The minimum strength of association (the same partial R² with the treatment
    and with the outcome) a confounder needs to reduce the estimate by
    ``100 q`` percent (``alpha=None``) or to make the reduced estimate no longer
    significant at level ``alpha``.

    Notes
    -----
    With :math:`f_q = q|t|/\\sqrt{\\text{dof}}` and, for significance,
    :math:`f = f_q - t^*_{1-\\alpha/2,\\,\\text{dof}-1}/\\sqrt{\\text{dof}-1}`,
    :math:`RV = \\tfrac12\\left(\\sqrt{f^4 + 4f^2} - f^2\\right)` (0 when
    :math:`f \\le 0`).
    """
    f = q * abs(t) / np.sqrt(dof)
    if alpha is not None:
        f -= stats.t.ppf(1 - alpha / 2, dof - 1) / np.sqrt(dof - 1)
    if f <= 0:
        return 0.0
    return float(0.5 * (np.sqrt(f**4 + 4 * f**2) - f**2))


def adjusted_estimate(estimate: float, se: float, dof: int, r2_treatment: np.ndarray,
                      r2_outcome: np.ndarray) -> np.ndarray:
    """The estimate after removing the largest bias a confounder of given strength allows.

    Notes
    -----
    :math:`|\\text{bias}| = se\\cdot\\sqrt{\\text{dof}}\\cdot
    \\sqrt{R^2_{Y\\sim U|T,X}\\,R^2_{T\\sim U|X}/(1-R^2_{T\\sim U|X})}`, subtracted in the
    direction that moves the estimate towards zero (Cinelli & Hazlett, eq. 11).
    """
    r2d = np.asarray(r2_treatment, float)
    r2y = np.asarray(r2_outcome, float)
    bias = se * np.sqrt(dof) * np.sqrt(r2y * r2d / (1 - r2d))
    return estimate - np.sign(estimate) * bias


def benchmark_bounds(r2_treatment_j: float, r2_outcome_j: float,
                     multiples: Sequence[float]) -> pd.DataFrame:
    """Partial-R² bounds of a confounder ``k`` times as strong as covariate ``j``.

    Notes
    -----
    Cinelli & Hazlett (2020), section 6: with :math:`k_D = k_Y = k`,
    :math:`R^2_{D\\sim Z|X} = k\\,R^2_{D\\sim X_j|X_{-j}}/(1-R^2_{D\\sim X_j|X_{-j}})` and
    :math:`R^2_{Y\\sim Z|D,X} \\le \\eta^2 R^2_{Y\\sim X_j|D,X_{-j}}/(1-R^2_{Y\\sim X_j|D,X_{-j}})`,
    :math:`\\eta = (\\sqrt{k} + \\sqrt{\\rho})/\\sqrt{1-\\rho}`,
    :math:`\\rho = k R^2_{D\\sim X_j}{}^2/((1-kR^2_{D\\sim X_j})(1-R^2_{D\\sim X_j}))`,
    both capped at 1 (as in ``sensemakr``).
    """
    k = np.asarray(multiples, float)
    r2d = k * r2_treatment_j / (1 - r2_treatment_j)
    rho = k * r2_treatment_j**2 / ((1 - k * r2_treatment_j) * (1 - r2_treatment_j))
    eta = (np.sqrt(k) + np.sqrt(rho)) / np.sqrt(1 - rho)
    r2y = eta**2 * r2_outcome_j / (1 - r2_outcome_j)
    return pd.DataFrame({"multiple": k, "r2_treatment": np.minimum(r2d, 1.0),
                         "r2_outcome": np.minimum(r2y, 1.0)})


def e_value(estimate: float, ci_lower: float, ci_upper: float,
            outcome_sd: float) -> tuple[float, float]:
    """E-values of a difference in means and of its confidence limit closest to zero.

    Returns
    -------
    (float, float)
        The E-value of the point estimate and of the confidence interval (1 when
        the interval contains zero).

    Notes
    -----
    VanderWeele & Ding (2017): the standardised difference
    :math:`d = \\hat\\tau/\\sigma_Y` is mapped to an approximate risk ratio
    :math:`RR = e^{0.91 d}`; with :math:`RR^* = \\max(RR, 1/RR)`,
    :math:`E = RR^* + \\sqrt{RR^*(RR^*-1)}`.  It is the minimum risk ratio a
    confounder must have with both treatment and outcome to explain the
    estimate away.
    """
    def ev(x: float) -> float:
        rr = np.exp(0.91 * x / outcome_sd)
        rr = max(rr, 1 / rr)
        return float(rr + np.sqrt(rr * (rr - 1)))

    if ci_lower <= 0 <= ci_upper:
        return ev(estimate), 1.0
    closest = ci_lower if estimate > 0 else ci_upper
    return ev(estimate), ev(closest)
