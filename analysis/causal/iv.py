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


@dataclass(frozen=True)
class ARConfidenceSet:
    """Anderson-Rubin confidence set for the effect of one treatment with one instrument.

    Attributes
    ----------
    kind : {"interval", "two rays", "real line", "empty"}
        The shape of the set: a bounded interval when the instrument is strong enough to
        be significant in the first stage at the set's level, otherwise the complement of
        an interval (two rays) or every value.
    lower, upper : float
        The interval's ends for ``"interval"``; for ``"two rays"`` the set is
        :math:`(-\\infty, \\text{lower}] \\cup [\\text{upper}, \\infty)`; ``-inf``/``inf`` for
        ``"real line"``; NaN for ``"empty"``.
    level : float
    bounded : bool
    """

    kind: str
    lower: float
    upper: float
    level: float

    @property
    def bounded(self) -> bool:
        """Whether the set is a bounded interval."""
        return self.kind == "interval"

    def contains(self, beta: float | np.ndarray) -> np.ndarray | bool:
        """Whether each value lies in the set."""
        b = np.asarray(beta, dtype=np.float64)
        if self.kind == "interval":
            out = (b >= self.lower) & (b <= self.upper)
        elif self.kind == "two rays":
            out = (b <= self.lower) | (b >= self.upper)
        else:
            out = np.full(b.shape, self.kind == "real line")
        return bool(out) if out.ndim == 0 else out


def anderson_rubin(data: pd.DataFrame, *, outcome: str, treatment: str, instrument: str,
                   covariates: Sequence[str] = (), level: float = 0.95) -> ARConfidenceSet:
    """Weak-instrument-robust Anderson-Rubin confidence set (HC1-robust, one instrument).

    Parameters
    ----------
    data : DataFrame
        Not modified.
    outcome, treatment, instrument : str
    covariates : sequence of str
        Exogenous controls, included in every regression.
    level : float
        Confidence level.

    Returns
    -------
    ARConfidenceSet

    Raises
    ------
    DataError
        If a column is missing.
    EstimationError
        If the instrument does not vary or ``level`` is not in (0, 1).

    Notes
    -----
    The set collects every :math:`\\beta_0` that the Anderson-Rubin test does not reject:
    regress :math:`Y - \\beta_0 T` on :math:`Z` and :math:`W` and test that :math:`Z`'s
    coefficient is zero.  That coefficient is :math:`\\hat\\pi_y - \\beta_0\\hat\\pi_t`,
    the reduced-form minus :math:`\\beta_0` times the first-stage coefficient, so with
    their joint HC1 covariance :math:`V` the robust Wald statistic is

    .. math::

        AR(\\beta_0) = \\frac{(\\hat\\pi_y - \\beta_0\\hat\\pi_t)^2}
        {V_{yy} - 2\\beta_0 V_{yt} + \\beta_0^2 V_{tt}},

    and :math:`AR(\\beta_0) \\le c = \\chi^2_{1, \\text{level}}` is the quadratic inequality
    :math:`a\\beta_0^2 + b\\beta_0 + d \\le 0` with :math:`a = \\hat\\pi_t^2 - cV_{tt}`,
    :math:`b = -2(\\hat\\pi_y\\hat\\pi_t - cV_{yt})`, :math:`d = \\hat\\pi_y^2 - cV_{yy}`.
    Its size does not depend on the instrument's strength (Anderson & Rubin, 1949;
    Andrews, Stock & Sun, 2019): when the first stage is significant (:math:`a > 0`) the
    set is an interval close to the Wald interval of 2SLS; when it is not, the set is
    unbounded, as it must be when the data cannot rule out an irrelevant instrument.
    """
    if not 0 < level < 1:
        raise EstimationError(f"level={level}; use a confidence level between 0 and 1, "
                              "e.g. 0.95.")
    check_columns(data, [outcome, treatment, instrument, *covariates])
    df = data[[outcome, treatment, instrument, *covariates]].dropna()
    if df[instrument].nunique() < 2:
        raise EstimationError(f"The instrument '{instrument}' takes a single value, so it "
                              "cannot move the treatment. Use a variable that varies.")
    W, _ = design(df, covariates)
    X = np.column_stack([df[instrument].to_numpy(dtype=float), W])
    Y = np.column_stack([df[outcome].to_numpy(dtype=float), df[treatment].to_numpy(dtype=float)])
    n, k = X.shape
    bread = np.linalg.pinv(X.T @ X)
    coef = bread @ X.T @ Y
    resid = Y - X @ coef
    # HC1 covariance of (pi_y, pi_t), the instrument's coefficients in both regressions
    score = (X @ bread[:, 0])[:, None] * resid
    V = score.T @ score * n / (n - k)
    pi_y, pi_t = coef[0]
    c = float(stats.chi2.ppf(level, 1))
    a = pi_t**2 - c * V[1, 1]
    b = -2 * (pi_y * pi_t - c * V[0, 1])
    d = pi_y**2 - c * V[0, 0]
    disc = b**2 - 4 * a * d
    if a > 0:
        if disc < 0:
            return ARConfidenceSet("empty", np.nan, np.nan, level)
        r = np.sqrt(disc)
        return ARConfidenceSet("interval", (-b - r) / (2 * a), (-b + r) / (2 * a), level)
    if disc > 0 and a < 0:
        r = np.sqrt(disc)
        lo, hi = sorted(((-b - r) / (2 * a), (-b + r) / (2 * a)))
        return ARConfidenceSet("two rays", lo, hi, level)
    return ARConfidenceSet("real line", -np.inf, np.inf, level)
