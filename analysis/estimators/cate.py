"""Conditional average treatment effects (CATE): one thin function, seven methods, one result.

:func:`fit_cate` fits any of the methods on any ``X, y, t`` (binary ``t``) and returns a
:class:`CATEFit` whose ``tidy()`` is the ATE with its interval and whose
``cate_frame()`` holds every unit's CATE (with an interval where the method has one).

``causal_forest``
    EconML's ``CausalForestDML`` (honest generalised random forest on residuals).  Its
    ATE is the doubly robust one, ``ate__inference()``, *not* ``ate_interval(X)``: the
    latter is a conservative interval for the mean of the CATE predictions, and the
    first customer's ``effect_interval`` is one customer's interval.
``linear_dml``
    EconML's ``LinearDML`` with the chosen effect modifiers (correctly specified when
    the truth is linear in them); the other features are controls.
``dr_learner``
    EconML's ``DRLearner`` with a small LightGBM final model (no unit intervals).
``t_learner``, ``s_learner``
    EconML's meta-learners with LightGBM (no intervals at all).
``ols_interactions``
    OLS of ``y`` on ``t``, ``X`` and ``t`` times centred ``X`` (Lin, 2013), HC1 errors;
    the coefficient of ``t`` is the ATE and unit intervals come from the delta method.
``bcf``
    The Bayesian causal forest (Hahn, Murray & Carvalho, 2020) of ``stochtree``: the
    posterior mean CATE, per-unit 95% credible intervals (2.5% and 97.5% posterior
    quantiles) and the ATE as the posterior of the sample's mean CATE.  The propensity
    is the cross-fitted one of the chosen nuisance learner, passed to the sampler.

Nuisance learners of the DML methods are chosen by cross-validated loss among
:func:`~analysis.estimators.selection.default_candidates`, on folds shared by every
method.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import EstimationError, OverlapError
from analysis.estimators.crossfit import make_folds
from analysis.estimators.linear import ols
from analysis.estimators.selection import (
    arms_out_of_fold,
    default_candidates,
    outcome_losses,
    propensity_losses,
)
from analysis.result import tidy_frame, tidy_row

Method = Literal["causal_forest", "linear_dml", "dr_learner", "t_learner", "s_learner",
                 "ols_interactions", "bcf"]
METHODS: tuple[str, ...] = ("causal_forest", "linear_dml", "dr_learner", "t_learner",
                            "s_learner", "ols_interactions", "bcf")
LABELS = {"causal_forest": "Causal forest (CausalForestDML)",
          "linear_dml": "LinearDML (effect modifiers)", "dr_learner": "DR-learner (LightGBM)",
          "t_learner": "T-learner (LightGBM)", "s_learner": "S-learner (LightGBM)",
          "ols_interactions": "OLS with interactions",
          "bcf": "Bayesian causal forest (stochtree)"}
SHORT = {"causal_forest": "Causal forest", "linear_dml": "LinearDML", "dr_learner": "DR-learner",
         "t_learner": "T-learner", "s_learner": "S-learner", "ols_interactions": "OLS × X",
         "bcf": "BCF"}
"""Short names of the methods, for figures and prose."""
FOREST_DEFAULTS = {"n_estimators": 400, "min_samples_leaf": 10, "max_samples": 0.45,
                   "honest": True, "subforest_size": 4, "inference": True}
"""The forest's settings (justified on the simulator in the chapter)."""
BCF_DEFAULTS = {"num_gfr": 10, "num_burnin": 0, "num_mcmc": 500, "num_chains": 4,
                "num_trees_mu": 250, "num_trees_tau": 100, "adaptive_coding": True,
                "sample_sigma2_leaf_tau": True}
"""The Bayesian causal forest's settings: stochtree's forest sizes; 10 grow-from-root
warm-start sweeps, from which 4 chains start, retaining 500 MCMC draws in all; the
adaptive coding of the treatment of Hahn, Murray & Carvalho (2020); and a sampled leaf
scale of the effect forest.  On IHDP the last three raise the per-unit coverage of the
credible intervals (about 73% with stochtree's defaults in a 10-realization trial, about
88% with these; see the IHDP appendix for the full benchmark)."""


@dataclass
class CATEFit:
    """A fitted CATE method.

    Attributes
    ----------
    method : str
    model : object
        The fitted EconML estimator (or the OLS fit).
    ate : dict
        ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper`` (NaN without inference).
    cate : DataFrame
        ``estimate``, ``lower``, ``upper`` per unit (NaN bounds without intervals).
    nuisance : dict
        The chosen nuisance learners' names and their out-of-fold loss tables.
    info : dict
        What :meth:`effect` needs besides the model (effect modifiers, feature means).
    """

    method: str
    model: object
    ate: dict
    cate: pd.DataFrame
    nuisance: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def __getstate__(self) -> dict:
        """Pickle without the BCF's sampler: stochtree's C++ forests cannot be pickled, so
        a BCF fit sent to or from a worker process keeps its effects, ATE and nuisances but
        not ``model`` (``effect`` then asks to predict where the fit was made)."""
        state = dict(self.__dict__)
        if self.method == "bcf":
            state["model"] = None
        return state

    def effect(self, X: np.ndarray, propensity: np.ndarray | None = None) -> np.ndarray:
        """The fitted CATE function at new units ``X`` (point estimates).

        ``propensity`` (the new units' propensities) is needed by ``bcf`` only, whose
        sampler was given the training propensities.
        """
        X = np.asarray(X, dtype=np.float64)
        if self.method == "linear_dml":
            return np.ravel(self.model.effect(X[:, self.info["modifiers"]]))
        if self.method == "ols_interactions":
            p = X.shape[1]
            return self.model.coef[1] + (X - self.info["x_mean"]) @ self.model.coef[2 + p:]
        if self.method == "bcf":
            if self.model is None:
                raise EstimationError("This BCF fit crossed processes without its sampler "
                                      "(stochtree's forests cannot be pickled); call "
                                      "effect() in the process that fitted it.")
            if propensity is None:
                raise EstimationError("bcf needs the new units' propensities: pass "
                                      "propensity= (e.g. out-of-fold ones).")
            e = np.clip(np.asarray(propensity, dtype=np.float64), 1e-3, 1 - 1e-3)
            return np.ravel(self.model.predict(X, np.ones(len(X)), propensity=e,
                                               type="mean", terms="cate"))
        return np.ravel(self.model.effect(X))

    def tidy(self) -> pd.DataFrame:
        """The ATE as a tidy row."""
        row = tidy_row(LABELS.get(self.method, self.method), self.ate["estimate"],
                       self.ate["std_error"], method=self.method)
        if np.isfinite(self.ate.get("ci_lower", np.nan)):
            row.update(ci_lower=self.ate["ci_lower"], ci_upper=self.ate["ci_upper"])
        return tidy_frame([row])

    def cate_frame(self) -> pd.DataFrame:
        """Every unit's CATE and interval."""
        return self.cate.copy()


def fit_cate(X: np.ndarray | pd.DataFrame, y: np.ndarray, t: np.ndarray, *,
             method: Method = "causal_forest", modifiers: list[int] | None = None,
             n_folds: int = 3, seed: int = 0, nuisance: Literal["auto"] | dict = "auto",
             min_propensity: float = 0.01, max_no_overlap_share: float = 0.05,
             **params: object) -> CATEFit:
    """Fit a CATE method of the effect of a binary ``t`` on ``y`` given ``X``.

    Parameters
    ----------
    X : array or DataFrame (n, p)
        Features; every method uses all of them (``linear_dml`` uses ``modifiers`` as
        effect modifiers and the rest as controls).
    y, t : arrays (n,)
        Outcome and binary (0/1) treatment.
    method : str
        One of :data:`METHODS`.
    modifiers : list of int, optional
        Column indices of the effect modifiers of ``linear_dml`` (default: all).
    n_folds : int
        Cross-fitting folds shared by every method.
    seed : int
    nuisance : "auto" or dict
        ``"auto"`` chooses the propensity and outcome learners by out-of-fold loss;
        a dict ``{"model_t": ..., "model_y": ...}`` fixes them; the ``nuisance``
        attribute of an earlier fit on the same data (and ``n_folds``, ``seed``) is reused
        as it is, so several methods share one choice.
    min_propensity, max_no_overlap_share : float
        More than ``max_no_overlap_share`` of out-of-fold propensities below
        ``min_propensity`` or above ``1 - min_propensity`` raises :class:`OverlapError`.
    **params
        Settings of the method (for the forest, those of ``CausalForestDML``; defaults
        :data:`FOREST_DEFAULTS`; for ``bcf``, the keys of :data:`BCF_DEFAULTS`).

    Returns
    -------
    CATEFit
    """
    if method not in METHODS:
        raise EstimationError(f"method={method!r} is unknown; use one of {', '.join(METHODS)}.")
    Xa, ya, ta = check_cate_inputs(X, y, t, method=method, n_folds=n_folds,
                                   min_leaf=int(params.get("min_samples_leaf",
                                                           FOREST_DEFAULTS["min_samples_leaf"])))
    if method == "bcf":
        bcf_settings(params)  # fail before the nuisances are fitted
    folds = make_folds(len(ya), n_folds, seed=seed)
    splits = [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(n_folds)]
    if isinstance(nuisance, dict) and "t_losses" in nuisance:
        chosen = nuisance  # already chosen on these data and folds
    else:
        chosen = choose_nuisances(Xa, ya, ta, folds, seed=seed, fixed=nuisance,
                                  min_propensity=min_propensity,
                                  max_no_overlap_share=max_no_overlap_share)
    fit = _FITTERS[method](Xa, ya, ta, splits, chosen, seed, modifiers, params)
    fit.nuisance = chosen
    return fit


def check_cate_inputs(X: np.ndarray | pd.DataFrame, y: np.ndarray, t: np.ndarray, *,
                      method: str, n_folds: int, min_leaf: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the inputs; every error names the problem and the fix."""
    Xa = np.asarray(X.to_numpy() if isinstance(X, pd.DataFrame) else X, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64).ravel()
    ta = np.asarray(t, dtype=np.float64).ravel()
    if Xa.ndim != 2:
        raise EstimationError(f"X must be 2-D (n, p); got shape {Xa.shape}.")
    for name, arr in (("y", ya), ("t", ta)):
        if len(arr) != len(Xa):
            raise EstimationError(f"{name} has {len(arr)} rows but X has {len(Xa)}; pass "
                                  "arrays aligned row by row.")
    if not np.isfinite(Xa).all():
        cols = np.flatnonzero(~np.isfinite(Xa).all(axis=0)).tolist()
        raise EstimationError(f"NaN or infinite values in X (columns {cols[:5]}, "
                              f"{int((~np.isfinite(Xa)).any(axis=1).sum())} rows). Impute or "
                              "drop them first.")
    if not np.isfinite(ya).all():
        raise EstimationError("NaN or infinite values in y; drop or impute those rows.")
    values = np.unique(ta)
    if len(values) < 2:
        raise EstimationError(f"The treatment is constant (every value is {values[0]:g}); a "
                              "CATE needs treated and untreated units.")
    if not np.isin(values, (0.0, 1.0)).all():
        raise EstimationError(f"{method} needs a binary 0/1 treatment; got values such as "
                              f"{values[:5]}. Recode it as 0/1.")
    need = 2 * min_leaf * n_folds
    if method == "causal_forest" and len(ya) < need:
        raise EstimationError(f"Only {len(ya)} rows: the causal forest needs at least "
                              f"{need} (a leaf of {min_leaf} per arm in each of {n_folds} "
                              "folds). Use more data, a smaller min_samples_leaf or fewer "
                              "folds.")
    return Xa, ya, ta


def choose_nuisances(X: np.ndarray, y: np.ndarray, t: np.ndarray, folds: np.ndarray, *,
                     seed: int, fixed: Literal["auto"] | dict = "auto",
                     min_propensity: float = 0.01,
                     max_no_overlap_share: float = 0.05) -> dict:
    """Choose the propensity and outcome learners by out-of-fold loss and check overlap.

    Returns
    -------
    dict
        ``model_t``, ``model_y`` (unfitted learners), ``t_name``, ``y_name``,
        ``t_losses``, ``y_losses`` (tables), ``m_hat`` (out-of-fold propensities of the
        chosen model), ``g0_hat``, ``g1_hat`` (out-of-fold arm-wise outcome predictions).
    """
    if isinstance(fixed, dict):
        t_cands, y_cands = {"fixed": fixed["model_t"]}, {"fixed": fixed["model_y"]}
    else:
        t_cands = default_candidates("classifier", seed=seed)
        y_cands = default_candidates("regressor", seed=seed)
    # every candidate's fit of every fold is a task, all at once (overlap is checked after)
    m, g0, g1 = arms_out_of_fold(t_cands, y_cands, X, y, t, folds, m_name="model_t",
                                 g_name="model_y")
    t_loss = propensity_losses(m, t)
    t_name = str(t_loss.loc[t_loss["selected"], "learner"].iloc[0])
    extreme = (m[t_name] < min_propensity) | (m[t_name] > 1 - min_propensity)
    if extreme.mean() > max_no_overlap_share:
        raise OverlapError(f"No overlap: {int(extreme.sum()):,} of {len(t):,} units "
                           f"({extreme.mean():.1%} of the sample) have an estimated propensity "
                           f"below {min_propensity} or above {1 - min_propensity}: some "
                           "regions of X are (almost) all treated or all untreated, so their "
                           "effect is not identified. Restrict the sample to where both arms "
                           "occur, or drop features that determine the treatment.")
    y_loss = outcome_losses(g0, g1, y, t)
    y_name = str(y_loss.loc[y_loss["selected"], "learner"].iloc[0])
    return {"model_t": t_cands[t_name], "model_y": y_cands[y_name], "t_name": t_name,
            "y_name": y_name, "t_losses": t_loss, "y_losses": y_loss, "m_hat": m[t_name],
            "g0_hat": g0[y_name], "g1_hat": g1[y_name]}


# --------------------------------------------------------------------------- methods


def _quiet():
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore")
    return ctx


def _forest(X, y, t, splits, chosen, seed, modifiers, params) -> CATEFit:
    from econml.dml import CausalForestDML

    settings = {**FOREST_DEFAULTS, **params}
    if settings["n_estimators"] % settings["subforest_size"]:
        raise EstimationError(f"n_estimators={settings['n_estimators']} is not a multiple of "
                              f"subforest_size={settings['subforest_size']}: the forest's "
                              "variance estimate needs whole sub-forests. Use e.g. "
                              f"{settings['subforest_size'] * 25} trees.")
    est = CausalForestDML(model_y=chosen["model_y"], model_t=chosen["model_t"],
                          discrete_treatment=True, cv=splits, random_state=seed, n_jobs=1,
                          **settings)
    ctx = _quiet()
    try:
        est.fit(y, t, X=X)
        ate = est.ate__inference()
        lo, hi = ate.conf_int()
        point = est.effect(X)
        if settings.get("inference", True):
            clo, chi = est.effect_interval(X, alpha=0.05)
        else:
            clo = chi = np.full(len(y), np.nan)
    finally:
        ctx.__exit__(None, None, None)
    return CATEFit("causal_forest", est,
                   {"estimate": float(np.ravel(ate.point_estimate)[0]),
                    "std_error": float(np.ravel(ate.stderr)[0]),
                    "ci_lower": float(np.ravel(lo)[0]), "ci_upper": float(np.ravel(hi)[0])},
                   _frame(point, clo, chi))


def _linear_dml(X, y, t, splits, chosen, seed, modifiers, params) -> CATEFit:
    from econml.dml import LinearDML

    mods = list(range(X.shape[1])) if modifiers is None else list(modifiers)
    controls = [j for j in range(X.shape[1]) if j not in mods]
    Xm, W = X[:, mods], (X[:, controls] if controls else None)
    est = LinearDML(model_y=chosen["model_y"], model_t=chosen["model_t"],
                    discrete_treatment=True, cv=splits, random_state=seed)
    ctx = _quiet()
    try:
        est.fit(y, t, X=Xm, W=W)
        inf = est.ate_inference(Xm)
        clo, chi = est.effect_interval(Xm, alpha=0.05)
        point = est.effect(Xm)
    finally:
        ctx.__exit__(None, None, None)
    lo, hi = inf.conf_int_mean()
    return CATEFit("linear_dml", est, {"estimate": float(inf.mean_point),
                                       "std_error": float(inf.stderr_mean),
                                       "ci_lower": float(lo), "ci_upper": float(hi)},
                   _frame(point, clo, chi), info={"modifiers": mods})


def _dr_learner(X, y, t, splits, chosen, seed, modifiers, params) -> CATEFit:
    from econml.dr import DRLearner

    final = default_candidates("regressor", seed=seed)["lgbm-small"]
    est = DRLearner(model_propensity=chosen["model_t"], model_regression=chosen["model_y"],
                    model_final=final, cv=splits, random_state=seed)
    ctx = _quiet()
    try:
        est.fit(y, t, X=X)
        point = est.effect(X)
    finally:
        ctx.__exit__(None, None, None)
    return CATEFit("dr_learner", est, _mean_only(point), _frame(point))


def _meta(kind: str):
    def fit(X, y, t, splits, chosen, seed, modifiers, params) -> CATEFit:
        from econml.metalearners import SLearner, TLearner

        learner = default_candidates("regressor", seed=seed)["lgbm-small"]
        est = TLearner(models=learner) if kind == "t_learner" else SLearner(overall_model=learner)
        ctx = _quiet()
        try:
            est.fit(y, t, X=X)
            point = est.effect(X)
        finally:
            ctx.__exit__(None, None, None)
        return CATEFit(kind, est, _mean_only(point), _frame(point))
    return fit


def _ols(X, y, t, splits, chosen, seed, modifiers, params) -> CATEFit:
    Xc = X - X.mean(axis=0)
    design = np.column_stack([np.ones(len(y)), t, X, t[:, None] * Xc])
    names = ["const", "t"] + [f"x{j}" for j in range(X.shape[1])] + \
        [f"t:x{j}" for j in range(X.shape[1])]
    fit = ols(y, design, names)
    p = X.shape[1]
    a = np.zeros((len(y), design.shape[1]))
    a[:, 1] = 1.0
    a[:, 2 + p:] = Xc
    point = a @ fit.coef
    cov = _hc1_cov(design, fit.resid)
    se = np.sqrt(np.einsum("ij,jk,ik->i", a, cov, a))
    z = stats.norm.ppf(0.975)
    return CATEFit("ols_interactions", fit,
                   {"estimate": float(fit.coef[1]), "std_error": float(fit.se_hc1[1]),
                    "ci_lower": float(fit.coef[1] - z * fit.se_hc1[1]),
                    "ci_upper": float(fit.coef[1] + z * fit.se_hc1[1])},
                   _frame(point, point - z * se, point + z * se),
                   info={"x_mean": X.mean(axis=0)})


def bcf_settings(params: dict) -> dict:
    """The BCF's settings (:data:`BCF_DEFAULTS` updated by ``params``), validated."""
    unknown = sorted(set(params) - set(BCF_DEFAULTS))
    if unknown:
        raise EstimationError(f"bcf does not know the settings {unknown}; use "
                              f"{', '.join(BCF_DEFAULTS)}.")
    s = {**BCF_DEFAULTS, **params}
    if int(s["num_mcmc"]) < 20:
        raise EstimationError(f"num_mcmc={s['num_mcmc']} posterior draws are too few for a "
                              "95% credible interval; keep at least 20 (default 500).")
    if not 1 <= int(s["num_chains"]) <= int(s["num_gfr"]):
        raise EstimationError(f"num_chains={s['num_chains']} chains need as many "
                              f"grow-from-root sweeps to start from (num_gfr={s['num_gfr']}); "
                              "raise num_gfr or use fewer chains.")
    return s


def _bcf(X, y, t, splits, chosen, seed, modifiers, params) -> CATEFit:
    """Bayesian causal forest; the ATE's posterior is that of the sample's mean CATE."""
    import stochtree

    s = bcf_settings(params)
    m_hat = np.clip(np.asarray(chosen["m_hat"], dtype=np.float64), 1e-3, 1 - 1e-3)
    model = stochtree.BCFModel()
    ctx = _quiet()
    try:
        model.sample(X_train=X, Z_train=t, y_train=y, propensity_train=m_hat,
                     num_gfr=int(s["num_gfr"]), num_burnin=int(s["num_burnin"]),
                     num_mcmc=-(-int(s["num_mcmc"]) // int(s["num_chains"])),  # per chain
                     general_params={"random_seed": int(seed) % (2**31 - 1),  # C++ int
                                     "num_threads": 1, "num_chains": int(s["num_chains"]),
                                     "adaptive_coding": bool(s["adaptive_coding"])},
                     prognostic_forest_params={"num_trees": int(s["num_trees_mu"])},
                     treatment_effect_forest_params={
                         "num_trees": int(s["num_trees_tau"]),
                         "sample_sigma2_leaf": bool(s["sample_sigma2_leaf_tau"])})
    finally:
        ctx.__exit__(None, None, None)
    draws = np.asarray(model.tau_hat_train, dtype=np.float64).reshape(len(y), -1)
    point = draws.mean(axis=1)
    lo, hi = np.quantile(draws, [0.025, 0.975], axis=1)
    ate_draws = draws.mean(axis=0)
    a_lo, a_hi = np.quantile(ate_draws, [0.025, 0.975])
    return CATEFit("bcf", model, {"estimate": float(ate_draws.mean()),
                                  "std_error": float(ate_draws.std(ddof=1)),
                                  "ci_lower": float(a_lo), "ci_upper": float(a_hi)},
                   _frame(point, lo, hi))


_FITTERS = {"causal_forest": _forest, "linear_dml": _linear_dml, "dr_learner": _dr_learner,
            "t_learner": _meta("t_learner"), "s_learner": _meta("s_learner"),
            "ols_interactions": _ols, "bcf": _bcf}


def _hc1_cov(design: np.ndarray, resid: np.ndarray) -> np.ndarray:
    n, k = design.shape
    bread = np.linalg.pinv(design.T @ design)
    meat = (design * resid[:, None] ** 2).T @ design
    return bread @ meat @ bread * n / (n - k)


def _mean_only(point: np.ndarray) -> dict:
    """The plug-in ATE (mean CATE) of a method without inference."""
    return {"estimate": float(np.mean(point)), "std_error": np.nan, "ci_lower": np.nan,
            "ci_upper": np.nan}


def _frame(point: np.ndarray, lower: np.ndarray | None = None,
           upper: np.ndarray | None = None) -> pd.DataFrame:
    n = len(np.ravel(point))
    nan = np.full(n, np.nan)
    return pd.DataFrame({"estimate": np.ravel(point),
                         "lower": nan if lower is None else np.ravel(lower),
                         "upper": nan if upper is None else np.ravel(upper)})


def score_cate(cate: pd.DataFrame, tau: np.ndarray) -> dict[str, float]:
    """How well a method's CATE recovers the true effects.

    Returns
    -------
    dict
        ``sqrt_pehe`` (root mean squared error of the CATE), ``coverage`` (share of units
        whose true effect lies in their interval; NaN without intervals), ``rank_corr``
        (Spearman), ``mean_width`` of the intervals.
    """
    est = cate["estimate"].to_numpy()
    out = {"sqrt_pehe": float(np.sqrt(np.mean((est - tau) ** 2))),
           "rank_corr": float(stats.spearmanr(est, tau).statistic) if np.ptp(est) > 0
           else float("nan")}
    if cate["lower"].notna().all():
        lo, hi = cate["lower"].to_numpy(), cate["upper"].to_numpy()
        out["coverage"] = float(np.mean((lo <= tau) & (tau <= hi)))
        out["mean_width"] = float(np.mean(hi - lo))
    else:
        out["coverage"] = out["mean_width"] = float("nan")
    return out
