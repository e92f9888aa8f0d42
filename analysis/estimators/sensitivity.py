"""How strong would an omitted confounder have to be?  Bounds in the style of "Long story short".

Chernozhukov, Cinelli, Newey, Sharma & Syrgkanis (2022) bound the bias that an
unobserved confounder :math:`A` leaves in a debiased machine-learning estimate by
two partial :math:`R^2`-type quantities and one correlation:

* ``cf_y`` — the share of the outcome's *residual* variation that :math:`A` explains,
* ``cf_d`` — the relative gain in the variation of the Riesz representer that
  :math:`A` brings (for a binary treatment: how much :math:`A` sharpens the
  propensity),
* ``rho`` — the correlation of the two approximation errors (1 is the adversarial case).

The functions here work on any fitted :class:`~analysis.estimators.dml.PartiallyLinearDML`
(PLR, partialling-out score) or :class:`~analysis.estimators.aipw.AIPW` (ATE) and follow
the formulas of DoubleML's ``sensitivity_analysis`` (checked against it in
``tests/test_sensitivity.py``), with this package's cluster-robust variance.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.stats import norm
from sklearn.base import clone

from analysis.errors import AnalysisWarning, EstimationError
from analysis.estimators.inference import (
    cluster_codes,
    cluster_variance,
    split_ways,
    twoway_variance,
)
from analysis.result import tidy_row

FIT = "fit"
"""Default of ``clusters``: the clusters the model was fitted with."""


@dataclass(frozen=True)
class SensitivityElements:
    """The pieces of the bias bound, one row per repetition of cross-fitting.

    Attributes
    ----------
    thetas : ndarray (R,)
    sigma2, nu2 : ndarray (R,)
        :math:`\\sigma^2 = E[(Y-g(D,X))^2]` and :math:`\\nu^2 = E[\\alpha(D,X)^2]`.
    psi_sigma2, psi_nu2 : ndarray (R, n)
        Their (centred) influence functions.
    riesz : ndarray (R, n)
        The Riesz representer :math:`\\hat\\alpha` at each observation.
    psi_scaled : ndarray (R, n)
        The score divided by its Jacobian, :math:`\\hat\\psi/J`.
    """

    thetas: np.ndarray
    sigma2: np.ndarray
    nu2: np.ndarray
    psi_sigma2: np.ndarray
    psi_nu2: np.ndarray
    riesz: np.ndarray
    psi_scaled: np.ndarray

    @property
    def max_bias(self) -> np.ndarray:
        """:math:`S = \\sqrt{\\sigma^2\\nu^2}` per repetition."""
        return np.sqrt(self.sigma2 * self.nu2)

    @property
    def psi_max_bias(self) -> np.ndarray:
        """Influence function of :math:`S`: :math:`(\\sigma^2\\psi_{\\nu^2} +
        \\nu^2\\psi_{\\sigma^2}) / (2S)` (delta method)."""
        s = self.max_bias[:, None]
        return (self.sigma2[:, None] * self.psi_nu2 + self.nu2[:, None] * self.psi_sigma2) / (2 * s)


def sensitivity_elements(model: object) -> SensitivityElements:
    """The bias-bound pieces of a fitted PLR or AIPW model.

    Parameters
    ----------
    model : PartiallyLinearDML or AIPW
        Fitted.

    Returns
    -------
    SensitivityElements

    Notes
    -----
    PLR (partialling out), with :math:`\\tilde D = D - \\hat m(X)`:
    :math:`\\sigma^2 = E[(Y - \\hat\\ell(X) - \\theta\\tilde D)^2]`,
    :math:`\\nu^2 = 1/E[\\tilde D^2]`, :math:`\\alpha = \\nu^2\\tilde D` and
    :math:`\\psi_{\\nu^2} = \\nu^2 - \\tilde D^2\\nu^4`.

    AIPW (ATE), with clipped propensity :math:`\\hat m`:
    :math:`\\sigma^2 = E[(Y - D\\hat g_1 - (1-D)\\hat g_0)^2]`,
    :math:`\\alpha = D/\\hat m - (1-D)/(1-\\hat m)` and
    :math:`\\nu^2 = E[2(1/\\hat m + 1/(1-\\hat m)) - \\alpha^2]`, the orthogonal form of
    :math:`E[\\alpha^2]`.  If that is not positive the plain :math:`E[\\alpha^2]` is used,
    with a warning (as DoubleML does).
    """
    if not hasattr(model, "coef_"):
        raise EstimationError(f"This {type(model).__name__} is not fitted yet. Call fit() "
                              "before a sensitivity analysis.")
    nu = model.nuisance_
    y, d = model.y_, model.d_
    rows: dict[str, list] = {k: [] for k in ("sigma2", "nu2", "psi_sigma2", "psi_nu2", "riesz")}
    for r, theta in enumerate(model.thetas_):
        if "g_hat" in nu:  # PLR, partialling out
            v = d - nu["m_hat"][r]
            e_sigma = (y - nu["g_hat"][r] - theta * v) ** 2
            nu2 = 1.0 / np.mean(v * v)
            psi_nu2 = nu2 - v * v * nu2**2
            rr = v * nu2
        elif "g0_hat" in nu:  # AIPW
            t = model.trimming_threshold
            m = np.clip(nu["m_hat"][r], t, 1 - t)
            e_sigma = (y - d * nu["g1_hat"][r] - (1 - d) * nu["g0_hat"][r]) ** 2
            rr = d / m - (1 - d) / (1 - m)
            e_nu = 2 * (1 / m + 1 / (1 - m)) - rr**2
            nu2 = float(np.mean(e_nu))
            psi_nu2 = e_nu - nu2
        else:
            raise EstimationError(f"{type(model).__name__} has no PLR or AIPW nuisances; the "
                                  "sensitivity analysis needs PartiallyLinearDML or AIPW.")
        if nu2 <= 0:
            warnings.warn("The estimated nu2 is not positive; it is re-estimated as the mean "
                          "squared Riesz representer (not orthogonal).", AnalysisWarning,
                          stacklevel=2)
            psi_nu2 = rr**2
            nu2 = float(np.mean(psi_nu2))
        sigma2 = float(np.mean(e_sigma))
        for k, val in (("sigma2", sigma2), ("nu2", float(nu2)), ("psi_sigma2", e_sigma - sigma2),
                       ("psi_nu2", psi_nu2), ("riesz", rr)):
            rows[k].append(val)
    psi = model.psi_a_ * model.thetas_[:, None] + model.psi_b_
    scaled = psi / model.psi_a_.mean(axis=1, keepdims=True)
    return SensitivityElements(thetas=np.asarray(model.thetas_, float),
                               psi_scaled=scaled, **{k: np.asarray(v) for k, v in rows.items()})


def _check_params(cf_y: float, cf_d: float, rho: float, level: float) -> None:
    for name, v in (("cf_y", cf_y), ("cf_d", cf_d)):
        if not 0 <= v < 1:
            raise EstimationError(f"{name}={v!r} must lie in [0, 1): it is a share of "
                                  "variation explained by the confounder. Use e.g. 0.03.")
    if not -1 <= rho <= 1:
        raise EstimationError(f"rho={rho!r} is a correlation; use a value in [-1, 1] "
                              "(1 is the worst case).")
    if not 0 < level < 1:
        raise EstimationError(f"level={level!r}; use a confidence level in (0, 1) such as 0.95.")


def _variance(psi: np.ndarray, clusters: np.ndarray | None, second: np.ndarray | None) -> float:
    n = len(psi)
    clusters, second = split_ways(clusters, second)
    if second is not None:
        return twoway_variance(psi, clusters if clusters is not None else np.arange(n), second)
    if clusters is None:
        return float(np.mean(psi**2) / n)
    codes, g = cluster_codes(clusters, n)
    return cluster_variance(psi, codes, g)


def _bounds(el: SensitivityElements, cf_y: float, cf_d: float, rho: float, level: float,
            clusters: np.ndarray | None, second: np.ndarray | None, *,
            with_se: bool = True) -> dict[str, float]:
    """Bounds on theta and their one-sided confidence bounds, median over repetitions
    (``with_se=False``: the bounds on theta only, the rest NaN)."""
    strength = abs(rho) * np.sqrt(cf_y * cf_d / (1 - cf_d))
    q = float(norm.ppf(level))
    out: dict[str, list] = {k: [] for k in ("theta_lower", "theta_upper", "se_lower",
                                            "se_upper", "ci_lower", "ci_upper")}
    pmb = el.psi_max_bias
    for r in range(len(el.thetas)):
        for side, sign in (("lower", -1.0), ("upper", 1.0)):
            th = el.thetas[r] + sign * strength * el.max_bias[r]
            se = np.sqrt(_variance(el.psi_scaled[r] + sign * strength * pmb[r], clusters,
                                   second)) if with_se else np.nan
            out[f"theta_{side}"].append(th)
            out[f"se_{side}"].append(se)
            out[f"ci_{side}"].append(th + sign * q * se)
    return {k: float(np.median(v)) for k, v in out.items()}


def _resolve(model: object, clusters: object) -> np.ndarray | None:
    if isinstance(clusters, str):
        if clusters != FIT:
            raise EstimationError(f"clusters={clusters!r}; pass cluster labels, None (iid) "
                                  "or 'fit' (those of the fitted model).")
        return model.clusters_
    return None if clusters is None else np.asarray(clusters)


def robustness_value(model: object, *, null_hypothesis: float = 0.0, rho: float = 1.0,
                     level: float = 0.95, clusters: object = FIT,
                     second: np.ndarray | None = None) -> tuple[float, float]:
    """Robustness values RV and RVa (Chernozhukov et al., 2022).

    Parameters
    ----------
    model : fitted PartiallyLinearDML or AIPW
    null_hypothesis : float
        The value the confounder would have to push the estimate (or its bound) to.
    rho, level, clusters, second
        As in :func:`sensitivity_bounds`.

    Returns
    -------
    rv, rva : float
        The smallest equal strength ``cf_y = cf_d`` at which the bound on theta
        (RV), or its one-sided confidence bound (RVa), reaches ``null_hypothesis``;
        0 when it already does without confounding, 1 if never.

    Notes
    -----
    With one repetition and :math:`a = \\big((\\hat\\theta - \\theta_0)/(|\\rho| S)\\big)^2`
    the bound reaches :math:`\\theta_0` where :math:`v^2/(1-v) = a`, so
    :math:`\\mathrm{RV} = (\\sqrt{a^2 + 4a} - a)/2`.  Both values are found by root
    finding on the median-aggregated bounds (which also covers several repetitions).
    """
    _check_params(0.0, 0.0, rho, level)
    return _robustness(sensitivity_elements(model), null_hypothesis, rho, level,
                       _resolve(model, clusters), second)


def _robustness(el: SensitivityElements, null: float, rho: float, level: float,
                cl: np.ndarray | None, second: np.ndarray | None) -> tuple[float, float]:
    side = "upper" if null > float(np.median(el.thetas)) else "lower"
    sign = 1.0 if side == "lower" else -1.0  # positive gap: the bound has not reached null
    top = 1 - 1e-9

    def gap(v: float, key: str) -> float:
        return sign * (_bounds(el, v, v, rho, level, cl, second)[f"{key}_{side}"] - null)

    def solve(key: str) -> float:
        if gap(0.0, key) <= 0:
            return 0.0
        if gap(top, key) > 0:
            return 1.0
        return float(brentq(gap, 0.0, top, args=(key,), xtol=1e-12))

    return solve("theta"), solve("ci")


def sensitivity_bounds(model: object, cf_y: float = 0.03, cf_d: float = 0.03, rho: float = 1.0,
                       level: float = 0.95, *, null_hypothesis: float = 0.0,
                       clusters: object = FIT, second: np.ndarray | None = None,
                       term: str = "treatment") -> pd.DataFrame:
    """Bounds on the estimate under an omitted confounder of given strength.

    Parameters
    ----------
    model : fitted PartiallyLinearDML or AIPW
    cf_y : float in [0, 1)
        Share of the outcome's residual variation explained by the confounder.
    cf_d : float in [0, 1)
        Relative gain in the Riesz representer's variation due to the confounder.
    rho : float in [-1, 1]
        Correlation of the two approximation errors (``1``: adversarial).
    level : float
        Confidence level of the one-sided confidence bounds (as DoubleML:
        :math:`z_{\\text{level}}`, not :math:`z_{(1+\\text{level})/2}`).
    null_hypothesis : float
        Reference value of the robustness values.
    clusters : array, None or "fit"
        Cluster labels of the variance (default: those of ``fit``; None for iid).
    second : array, optional
        A second grouping for two-way cluster-robust variance.
    term : str
        Name of the row.

    Returns
    -------
    DataFrame
        One tidy row: ``term, estimate, std_error, ci_lower, ci_upper, p_value`` of the
        unadjusted estimate (two-sided, same clustering), then ``cf_y, cf_d, rho,
        level, theta_lower, theta_upper, se_lower, se_upper, ci_bound_lower,
        ci_bound_upper, rv, rva, null_hypothesis``.

    Notes
    -----
    With :math:`S = \\sqrt{\\sigma^2\\nu^2}` and confounding strength
    :math:`C = |\\rho|\\sqrt{c_Y c_D/(1-c_D)}`, the bias is at most :math:`CS`:
    :math:`\\theta_\\pm = \\hat\\theta \\pm C S`.  The standard error of each bound uses
    the influence function :math:`\\hat\\psi/J \\pm C\\,\\psi_S`; its confidence bound is
    :math:`\\theta_- - z\\,se_-` (and :math:`\\theta_+ + z\\,se_+`).  Repetitions are
    aggregated by the median.
    """
    _check_params(cf_y, cf_d, rho, level)
    el = sensitivity_elements(model)
    cl = _resolve(model, clusters)
    b = _bounds(el, cf_y, cf_d, rho, level, cl, second)
    b0 = _bounds(el, 0.0, 0.0, rho, 0.5 + level / 2, cl, second)
    se = float(np.median([np.sqrt(_variance(p, cl, second)) for p in el.psi_scaled]))
    rv, rva = _robustness(el, null_hypothesis, rho, level, cl, second)
    row = tidy_row(term, float(np.median(el.thetas)), se, level=level)
    row.update({"ci_lower": b0["ci_lower"], "ci_upper": b0["ci_upper"], "cf_y": cf_y,
                "cf_d": cf_d, "rho": rho, "level": level,
                "theta_lower": b["theta_lower"], "theta_upper": b["theta_upper"],
                "se_lower": b["se_lower"], "se_upper": b["se_upper"],
                "ci_bound_lower": b["ci_lower"], "ci_bound_upper": b["ci_upper"],
                "rv": rv, "rva": rva, "null_hypothesis": null_hypothesis})
    return pd.DataFrame([row])


def sensitivity_grid(model: object, *, max_cf: tuple[float, float] = (0.15, 0.15),
                     size: int = 31, rho: float = 1.0, level: float = 0.95,
                     clusters: object = FIT, second: np.ndarray | None = None,
                     with_ci: bool = True) -> pd.DataFrame:
    """Bounds over a grid of ``cf_d`` × ``cf_y``, for a contour figure.

    Parameters
    ----------
    model : fitted PartiallyLinearDML or AIPW
    max_cf : (float, float)
        Largest ``cf_d`` and ``cf_y`` of the grid.
    size : int
        Points per axis.
    rho, level, clusters, second
        As in :func:`sensitivity_bounds`.
    with_ci : bool
        Also compute the confidence bounds (one variance per point and side); without,
        those columns are NaN and the grid is nearly free.

    Returns
    -------
    DataFrame
        Long format: ``cf_d, cf_y, theta_lower, theta_upper, ci_lower, ci_upper``
        (``size**2`` rows; the CI columns are the one-sided confidence bounds).
    """
    if size < 2 or not all(0 < c < 1 for c in max_cf):
        raise EstimationError(f"size={size}, max_cf={max_cf}: use size >= 2 and grid limits "
                              "in (0, 1), e.g. (0.15, 0.15).")
    el = sensitivity_elements(model)
    cl = _resolve(model, clusters)
    rows = []
    for cd in np.linspace(0, max_cf[0], size):
        for cy in np.linspace(0, max_cf[1], size):
            b = _bounds(el, float(cy), float(cd), rho, level, cl, second, with_se=with_ci)
            rows.append({"cf_d": float(cd), "cf_y": float(cy), **b})
    return pd.DataFrame(rows)[["cf_d", "cf_y", "theta_lower", "theta_upper", "ci_lower",
                               "ci_upper"]]


def sensitivity_benchmark(model: object, X: np.ndarray | pd.DataFrame, y: np.ndarray,
                          d: np.ndarray, cols: list, *, clusters: np.ndarray | None = None,
                          name: str | None = None) -> pd.DataFrame:
    """Calibrate ``cf_y``, ``cf_d`` and ``rho`` by leaving observed covariates out.

    The model is refitted (same settings and seed, so the same folds) without
    ``cols``; how much they explain is a yardstick for an unobserved confounder
    "as strong as" them.

    Parameters
    ----------
    model : fitted PartiallyLinearDML or AIPW
        The long model, fitted on ``X, y, d`` (and ``clusters``).
    X, y, d : the data of that fit
    cols : list
        Column names (DataFrame ``X``) or indices (array ``X``) to leave out.
    clusters : array, optional
        The clusters of that fit.
    name : str, optional
        Label of the benchmark row (default: the columns joined by ", ").

    Returns
    -------
    DataFrame
        One row: ``benchmark, cf_y, cf_d, rho, delta_theta``.

    Notes
    -----
    Per repetition, with :math:`R^2_Y = 1 - \\sigma^2/\\operatorname{Var}(Y)`,
    :math:`c_Y = (R^2_{Y,long} - R^2_{Y,short})/(1 - R^2_{Y,long})`,
    :math:`c_D = (1 - \\nu^2_{short}/\\nu^2_{long})/(\\nu^2_{short}/\\nu^2_{long})`, both
    clipped to [0, 1], and :math:`\\rho = \\Delta\\theta/\\sqrt{(\\sigma^2_{short} -
    \\sigma^2_{long})(\\nu^2_{long}-\\nu^2_{short})}` clipped to [-1, 1]; the median over
    repetitions is reported (DoubleML's ``gain_statistics``).
    """
    if not cols:
        raise EstimationError("cols is empty; name the covariates to leave out, e.g. "
                              "['user_prior_mean'].")
    if isinstance(X, pd.DataFrame):
        missing = [c for c in cols if c not in X.columns]
        if missing:
            raise EstimationError(f"Benchmark columns {missing} are not in X; use some of "
                                  f"{list(X.columns)[:8]}.")
        Xs = X.drop(columns=list(cols))
    else:
        Xa = np.asarray(X)
        Xs = np.delete(Xa, list(cols), axis=1)
    if Xs.shape[1] == 0:
        raise EstimationError("Leaving out every covariate leaves nothing to fit; "
                              "benchmark a subset of the columns.")
    long = sensitivity_elements(model)
    short_model = clone(model).fit(Xs, y, d, clusters=clusters)
    short = sensitivity_elements(short_model)
    var_y = float(np.var(np.asarray(y, float)))
    r2_long, r2_short = 1 - long.sigma2 / var_y, 1 - short.sigma2 / var_y
    cf_y = np.clip((r2_long - r2_short) / (1 - r2_long), 0, 1)
    ratio = short.nu2 / long.nu2
    cf_d = np.clip((1 - ratio) / ratio, 0, 1)
    delta = short.thetas - long.thetas
    var_g, var_a = short.sigma2 - long.sigma2, long.nu2 - short.nu2
    ok = (var_g > 0) & (var_a > 0)
    denom = np.sqrt(np.where(ok, var_g * var_a, 1.0))
    rho = np.where(ok & (denom != 0), np.sign(delta) * np.clip(np.abs(delta) / denom, 0, 1),
                   np.sign(delta))
    label = name or ", ".join(str(c) for c in cols)
    return pd.DataFrame([{"benchmark": label, "cf_y": float(np.median(cf_y)),
                          "cf_d": float(np.median(cf_d)), "rho": float(np.median(rho)),
                          "delta_theta": float(np.median(delta))}])
