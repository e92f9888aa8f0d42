"""Instrumental variables: first-stage strength and two-stage least squares.

A weak instrument is not an error: :func:`two_stage_least_squares` returns its
estimate and emits :class:`~analysis.errors.WeakInstrumentWarning`, which the
study runner turns into a diagnostic shown in the chapter.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis.causal.graph import check_columns
from analysis.errors import EstimationError, WeakInstrumentWarning
from analysis.estimators.linear import design, ols, two_stage
from analysis.result import tidy_row

WEAK_F = 10.0
"""The Staiger-Stock rule of thumb: a first-stage F below 10 signals a weak instrument."""


@dataclass(frozen=True)
class IVResult:
    """A 2SLS estimate with its first stage.

    Attributes
    ----------
    estimate, std_error : float
        2SLS coefficient of the treatment and its HC1-robust standard error.
    first_stage_coef, first_stage_se : float
        The instrument's coefficient in the first stage and its robust SE.
    first_stage_f : float
        Classical F statistic of the excluded instrument in the first stage
        (what the rule of thumb and Stock-Yogo tables refer to).
    first_stage_f_robust : float
        The heteroskedasticity-robust Wald version, :math:`(\\hat\\pi/se_{HC1})^2`.
    weak : bool
        ``first_stage_f < 10``.
    n : int
    """

    estimate: float
    std_error: float
    first_stage_coef: float
    first_stage_se: float
    first_stage_f: float
    first_stage_f_robust: float
    weak: bool
    n: int

    def tidy(self, term: str, **extra) -> dict:
        """One estimates-table row (normal reference, as Stata's ``ivregress``)."""
        return tidy_row(term, self.estimate, self.std_error, first_stage_f=self.first_stage_f,
                        **extra)


def two_stage_least_squares(data: pd.DataFrame, *, outcome: str, treatment: str,
                            instrument: str, covariates: Sequence[str] = (),
                            weak_threshold: float = WEAK_F) -> IVResult:
    """Estimate the effect of ``treatment`` on ``outcome`` using one instrument.

    Parameters
    ----------
    data : DataFrame
        Not modified.
    outcome, treatment, instrument : str
    covariates : sequence of str
        Exogenous controls, included in both stages.
    weak_threshold : float
        First-stage F below which :class:`WeakInstrumentWarning` is emitted.

    Returns
    -------
    IVResult

    Raises
    ------
    DataError
        If a column is missing.
    EstimationError
        If the instrument does not vary.

    Warns
    -----
    WeakInstrumentWarning
        If the first-stage F is below ``weak_threshold``; the estimate is then
        biased towards OLS and its confidence interval is unreliable.

    Notes
    -----
    First stage :math:`T = \\pi Z + W'\\delta + v`; second stage
    :math:`Y = \\beta T + W'\\gamma + u` with :math:`T` replaced by its first-stage fit.
    With a single instrument :math:`\\hat\\beta` equals the ratio of the reduced-form
    and first-stage coefficients (the Wald estimand).
    """
    check_columns(data, [outcome, treatment, instrument, *covariates])
    df = data[[outcome, treatment, instrument, *covariates]].dropna()
    if df[instrument].nunique() < 2:
        raise EstimationError(f"The instrument '{instrument}' takes a single value, so it "
                              "cannot move the treatment. Use a variable that varies.")
    W, w_names = design(df, covariates)
    y = df[outcome].to_numpy(dtype=float)
    t = df[treatment].to_numpy(dtype=float)
    z = df[instrument].to_numpy(dtype=float)
    first = ols(t, np.column_stack([z, W]), [instrument, *w_names])
    X = np.column_stack([t, W])
    second = two_stage(y, X, np.column_stack([z, W]), [treatment, *w_names])
    f_stat = first.t_classical(instrument) ** 2
    f_robust = float((first.coef[0] / first.se_hc1[0]) ** 2)
    weak = bool(f_stat < weak_threshold)
    if weak:
        warnings.warn(
            f"Weak instrument: '{instrument}' barely predicts '{treatment}' (first-stage "
            f"F = {f_stat:.1f}, below {weak_threshold:.0f}). The IV estimate is biased "
            "towards OLS and its confidence interval understates the uncertainty; do not "
            "rely on it.", WeakInstrumentWarning, stacklevel=2)
    return IVResult(estimate=float(second.coef[0]), std_error=float(second.se_hc1[0]),
                    first_stage_coef=float(first.coef[0]),
                    first_stage_se=float(first.se_hc1[0]), first_stage_f=float(f_stat),
                    first_stage_f_robust=f_robust, weak=weak, n=len(df))


def first_stage_p(result: IVResult) -> float:
    """p-value of the instrument's first-stage coefficient (robust, normal reference)."""
    return float(2 * stats.norm.sf(abs(result.first_stage_coef / result.first_stage_se)))
