"""Double machine learning: the partially linear model (PLR) and the interactive model (IRM).

Layout follows pyfixest: the thin public function :func:`dml` first, then the
model classes, then internals.  Nuisance functions are cross-fitted with the one
helper :func:`analysis.estimators.crossfit.cross_fit`; the linear scores are
solved, with cluster-robust standard errors, by
:func:`analysis.estimators.inference.solve_score`.  Names follow Chernozhukov et
al. (2018) and DoubleML: ``psi_a``, ``psi_b``, ``m_hat``, ``g_hat``,
``g0_hat``, ``g1_hat``.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from analysis.errors import EstimationError, NotFittedError, OverlapError, OverlapWarning
from analysis.estimators.crossfit import cross_fit, make_folds
from analysis.estimators.inference import group_means, median_aggregate, score_se, solve_score
from analysis.result import tidy_frame, tidy_row

Model = Literal["plr", "irm"]
LearnerKind = Literal["regressor", "classifier"]


def dml(X: np.ndarray | pd.DataFrame, y: np.ndarray, d: np.ndarray, *, model: Model = "plr",
        clusters: np.ndarray | None = None, **params: object) -> PartiallyLinearDML | AIPW:
    """Fit a double machine learning model of the effect of ``d`` on ``y`` given ``X``.

    Parameters
    ----------
    X : array or DataFrame of shape (n, p)
        Controls; no missing values.
    y : array of shape (n,)
        Outcome.
    d : array of shape (n,)
        Treatment; ``model="irm"`` needs it binary (0/1).
    model : {"plr", "irm"}
        Partially linear model or interactive model (AIPW estimate of the ATE).
    clusters : array of shape (n,), optional
        Cluster labels (e.g. user ids): folds keep clusters whole and standard
        errors are cluster-robust.
    **params
        Keyword arguments of :class:`PartiallyLinearDML` / :class:`AIPW`.

    Returns
    -------
    PartiallyLinearDML or AIPW
        The fitted model; see its ``tidy()``.
    """
    cls = {"plr": PartiallyLinearDML, "irm": AIPW}.get(model)
    if cls is None:
        raise EstimationError(f"model={model!r} is unknown; use 'plr' or 'irm'.")
    return cls(**params).fit(X, y, d, clusters=clusters)


def default_learner(kind: LearnerKind, *, n_estimators: int = 300, learning_rate: float = 0.05,
                    num_leaves: int = 31, min_child_samples: int = 50, subsample: float = 0.8,
                    seed: int = 0) -> BaseEstimator:
    """The default LightGBM nuisance learner (single-threaded, silent).

    ``n_jobs=1`` matters: LightGBM with more threads than cores crawls.
    """
    from lightgbm import LGBMClassifier, LGBMRegressor

    cls = LGBMRegressor if kind == "regressor" else LGBMClassifier
    return cls(n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
               min_child_samples=min_child_samples, subsample=subsample, subsample_freq=1,
               colsample_bytree=0.8, max_bin=63, n_jobs=1, verbose=-1, random_state=seed)


class _CrossFittedScore(BaseEstimator):
    """Shared fitting loop: folds, nuisances, score, repeated cross-fitting."""

    _binary_only = False

    def fit(self, X: np.ndarray | pd.DataFrame, y: np.ndarray, d: np.ndarray, *,
            clusters: np.ndarray | None = None) -> _CrossFittedScore:
        """Cross-fit the nuisances ``n_rep`` times and solve the score.

        Returns
        -------
        self
        """
        Xa, ya, da, names = _check_inputs(X, y, d, clusters, binary=self._binary_only)
        self._check_learners(da)
        thetas, ses, ses_iid, psi_a, psi_b, nuis, folds_all = [], [], [], [], [], [], []
        for r in range(self.n_rep):
            folds = make_folds(len(ya), self.n_folds, clusters=clusters, seed=self.seed + r)
            a, b, eta = self._score(Xa, ya, da, folds)
            sol = solve_score(a, b, clusters)
            thetas.append(sol.theta)
            ses.append(sol.se)
            ses_iid.append(sol.se_iid)
            psi_a.append(a)
            psi_b.append(b)
            nuis.append(eta)
            folds_all.append(folds)
        self.thetas_, self.ses_ = np.array(thetas), np.array(ses)
        self.coef_, self.se_ = median_aggregate(self.thetas_, self.ses_)
        self.se_iid_ = median_aggregate(self.thetas_, np.array(ses_iid))[1]
        self.psi_a_, self.psi_b_ = np.vstack(psi_a), np.vstack(psi_b)
        self.nuisance_ = {k: np.vstack([e[k] for e in nuis]) for k in nuis[0]}
        self.folds_ = np.vstack(folds_all)
        self.n_obs_, self.n_clusters_ = len(ya), sol.n_clusters
        self.feature_names_in_ = np.array(names, dtype=object)
        self.clusters_ = None if clusters is None else np.asarray(clusters)
        return self

    def tidy(self, term: str = "treatment", *, clustered: bool = True) -> pd.DataFrame:
        """The estimate as a tidy row: term, estimate, std_error, ci_lower, ci_upper, p_value."""
        self._require_fit()
        se = self.se_ if clustered else self.se_iid_
        return tidy_frame([tidy_row(term, self.coef_, se, n_obs=self.n_obs_,
                                    n_clusters=self.n_clusters_ if clustered else self.n_obs_)])

    def std_error(self, clusters: np.ndarray | None = None,
                  second: np.ndarray | None = None) -> float:
        """The estimate's standard error under another dependence structure.

        Parameters
        ----------
        clusters : array of shape (n,), optional
            One-way cluster labels; None for iid.
        second : array of shape (n,), optional
            A second grouping for two-way clustering (e.g. movie besides user).

        Returns
        -------
        float
            Median-aggregated over repetitions, like ``se_``.

        Notes
        -----
        The folds stay those of ``fit``; only the variance of the score changes.
        """
        self._require_fit()
        ses = [score_se(a, b, theta, clusters, second)
               for a, b, theta in zip(self.psi_a_, self.psi_b_, self.thetas_, strict=True)]
        return median_aggregate(self.thetas_, np.array(ses))[1]

    def _require_fit(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet. "
                                 "Call fit() first.")

    def _learners(self, d: np.ndarray) -> tuple[BaseEstimator, BaseEstimator]:
        binary = _is_binary(d)
        ml_g = self.ml_g if self.ml_g is not None else default_learner("regressor",
                                                                        seed=self.seed)
        ml_m = self.ml_m if self.ml_m is not None else default_learner(
            "classifier" if binary else "regressor", seed=self.seed)
        return ml_g, ml_m


class PartiallyLinearDML(_CrossFittedScore):
    """Partially linear model :math:`Y = \\theta D + g_0(X) + \\zeta`, :math:`D = m_0(X) + V`.

    Parameters
    ----------
    ml_g : regressor, optional
        Learner of :math:`g(X) = E[Y\\mid X]` (LightGBM by default); cloned per fold.
    ml_m : estimator, optional
        Learner of :math:`m(X) = E[D\\mid X]`; for a binary treatment a classifier
        (its ``predict_proba`` is used), else a regressor.
    n_folds : int
        Folds of cross-fitting (default 3).
    n_rep : int
        Repetitions of cross-fitting with fresh folds, aggregated by the median.
    seed : int
        Seed of the folds (repetition ``r`` uses ``seed + r``) and default learners.

    Attributes
    ----------
    coef_, se_, se_iid_ : float
        Estimate, cluster-robust and iid standard errors (median-aggregated).
    thetas_, ses_ : ndarray (n_rep,)
    psi_a_, psi_b_ : ndarray (n_rep, n)
    nuisance_ : dict
        ``g_hat`` and ``m_hat``, each (n_rep, n).

    Notes
    -----
    The partialling-out score (Chernozhukov et al., 2018, eq. 4.4) is

    .. math::

        \\psi_a = -(D - \\hat m(X))^2, \\qquad
        \\psi_b = (Y - \\hat g(X))(D - \\hat m(X)),

    so :math:`\\hat\\theta = \\sum \\tilde Y\\tilde D / \\sum \\tilde D^2`.  Under
    heterogeneous effects it estimates a variance-weighted average effect,
    :math:`E[\\sigma^2_D(X)\\tau(X)]/E[\\sigma^2_D(X)]`, not the ATE.
    """

    def __init__(self, *, ml_g: BaseEstimator | None = None, ml_m: BaseEstimator | None = None,
                 n_folds: int = 3, n_rep: int = 1, seed: int = 0) -> None:
        self.ml_g = ml_g
        self.ml_m = ml_m
        self.n_folds = n_folds
        self.n_rep = n_rep
        self.seed = seed

    def _check_learners(self, d: np.ndarray) -> None:
        _check_common(self)

    def _score(self, X: np.ndarray, y: np.ndarray, d: np.ndarray,
               folds: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        ml_g, ml_m = self._learners(d)
        method = "predict_proba" if _is_binary(d) and hasattr(ml_m, "predict_proba") \
            else "predict"
        g_hat = cross_fit(ml_g, X, y, folds, name="ml_g")
        m_hat = cross_fit(ml_m, X, d, folds, method=method, name="ml_m")
        psi_a, psi_b = plr_score(y, d, g_hat, m_hat)
        if np.mean(psi_a) > -1e-12 * max(np.var(d), 1e-300):
            raise OverlapError("The treatment is (almost) perfectly predicted by the controls: "
                               "D - m_hat(X) is zero. Drop controls that determine the "
                               "treatment or restrict the sample to common support.")
        return psi_a, psi_b, {"g_hat": g_hat, "m_hat": m_hat}


class AIPW(_CrossFittedScore):
    """Interactive model for a binary treatment; the AIPW estimate of the ATE.

    :math:`Y = g_0(D, X) + U`, :math:`D = m_0(X) + V`, with
    :math:`\\theta = E[g_0(1,X) - g_0(0,X)]`.

    Parameters
    ----------
    ml_g : regressor, optional
        Learner of :math:`g(d, X) = E[Y\\mid D=d, X]`, fitted separately on each arm.
    ml_m : classifier, optional
        Learner of the propensity :math:`m(X) = P(D=1\\mid X)`; must have ``predict_proba``.
    n_folds, n_rep, seed : int
        As in :class:`PartiallyLinearDML`.
    trimming_threshold : float
        Propensities are clipped to ``[t, 1 - t]`` (default 0.01, as in DoubleML).
    overlap_tolerance : float
        A propensity within this distance of 0 or 1 counts as "no overlap" (default 0.001).
    max_no_overlap_share : float
        More than this share of such propensities raises :class:`OverlapError` (default 0.05).

    Attributes
    ----------
    coef_, se_, se_iid_, thetas_, ses_, psi_a_, psi_b_
        As in :class:`PartiallyLinearDML`.
    nuisance_ : dict
        ``g0_hat``, ``g1_hat`` and ``m_hat`` (untrimmed), each (n_rep, n).
    trimmed_share_ : float
        Share of propensities clipped by the trimming threshold (last repetition).

    Notes
    -----
    The efficient (AIPW) score for the ATE (Chernozhukov et al., 2018, eq. 5.3) is

    .. math::

        \\psi_a = -1, \\qquad
        \\psi_b = \\hat g_1 - \\hat g_0 + \\frac{D(Y-\\hat g_1)}{\\hat m}
                  - \\frac{(1-D)(Y-\\hat g_0)}{1-\\hat m},

    so :math:`\\hat\\theta` is the mean of :math:`\\psi_b`, which doubles as a
    pseudo-outcome whose mean over a subgroup is that subgroup's ATE.
    """

    _binary_only = True

    def __init__(self, *, ml_g: BaseEstimator | None = None, ml_m: BaseEstimator | None = None,
                 n_folds: int = 3, n_rep: int = 1, trimming_threshold: float = 0.01,
                 overlap_tolerance: float = 0.001, max_no_overlap_share: float = 0.05,
                 seed: int = 0) -> None:
        self.ml_g = ml_g
        self.ml_m = ml_m
        self.n_folds = n_folds
        self.n_rep = n_rep
        self.trimming_threshold = trimming_threshold
        self.overlap_tolerance = overlap_tolerance
        self.max_no_overlap_share = max_no_overlap_share
        self.seed = seed

    def _check_learners(self, d: np.ndarray) -> None:
        _check_common(self)
        if self.ml_m is not None and not hasattr(self.ml_m, "predict_proba"):
            raise EstimationError(
                f"ml_m = {type(self.ml_m).__name__} has no predict_proba(); the interactive "
                "model needs propensities P(D=1|X). Use a classifier instead, e.g. "
                "LGBMClassifier() or LogisticRegression().")

    def _score(self, X: np.ndarray, y: np.ndarray, d: np.ndarray,
               folds: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        ml_g, ml_m = self._learners(d)
        treated = d == 1
        m_raw = cross_fit(ml_m, X, d, folds, method="predict_proba", name="ml_m")
        m_hat = self._check_overlap(m_raw)  # fails fast, before the outcome models
        g0_hat = cross_fit(ml_g, X, y, folds, fit_mask=~treated, name="ml_g (untreated arm)")
        g1_hat = cross_fit(ml_g, X, y, folds, fit_mask=treated, name="ml_g (treated arm)")
        psi_a, psi_b = irm_score(y, d, g0_hat, g1_hat, m_hat)
        return psi_a, psi_b, {"g0_hat": g0_hat, "g1_hat": g1_hat, "m_hat": m_raw}

    def _check_overlap(self, m_hat: np.ndarray) -> np.ndarray:
        tol, t = self.overlap_tolerance, self.trimming_threshold
        none = float(np.mean((m_hat < tol) | (m_hat > 1 - tol)))
        if none > self.max_no_overlap_share:
            raise OverlapError(
                f"No overlap: {none:.1%} of estimated propensities are within {tol} of 0 or 1, "
                "so treated and untreated units are not comparable there and the ATE is not "
                "identified. Drop controls that determine the treatment (e.g. the movie's own "
                "genres or statistics), restrict the sample to common support, or use the "
                "partially linear model.")
        trimmed = (m_hat < t) | (m_hat > 1 - t)
        self.trimmed_share_ = float(np.mean(trimmed))
        if trimmed.any():
            warnings.warn(f"{trimmed.mean():.2%} of estimated propensities lie outside "
                          f"[{t}, {1 - t}] and were clipped to it; the estimate leans on "
                          "extrapolation for those observations.", OverlapWarning, stacklevel=4)
        return np.clip(m_hat, t, 1 - t)

    def group_ate(self, groups: np.ndarray, labels: list[str] | None = None, *,
                  second: np.ndarray | None = None) -> pd.DataFrame:
        """ATEs within groups (means of the pseudo-outcome :math:`\\psi_b`) and their difference.

        Parameters
        ----------
        groups : array of shape (n,)
            Two group labels, e.g. booleans; the difference is second minus first
            in sorted order (``True - False`` for booleans).
        labels : list of two str, optional
            Display names of the sorted groups.
        second : array of shape (n,), optional
            A second grouping (e.g. movies) for two-way cluster-robust errors.

        Returns
        -------
        DataFrame
            Tidy rows for each group and for the difference, cluster-robust, each
            aggregated over repetitions by the median; ``n_obs`` per row.
        """
        self._require_fit()
        codes, uniques = pd.factorize(np.asarray(groups), sort=True)
        if len(uniques) != 2 or len(codes) != self.n_obs_:
            raise EstimationError(f"group_ate needs exactly two groups over the {self.n_obs_} "
                                  f"fitted rows; got {len(uniques)} groups over {len(codes)}.")
        labels = labels or [str(u) for u in uniques]
        per = [group_means(b, codes, self.clusters_, second) for b in self.psi_b_]
        rows = []
        for h in range(2):
            est, se = median_aggregate([m[h] for m, _, _ in per],
                                       [np.sqrt(c[h, h]) for _, c, _ in per])
            rows.append(tidy_row(labels[h], est, se, n_obs=int(per[0][2][h])))
        diff = [m[1] - m[0] for m, _, _ in per]
        sd = [np.sqrt(c[0, 0] + c[1, 1] - 2 * c[0, 1]) for _, c, _ in per]
        est, se = median_aggregate(diff, sd)
        rows.append(tidy_row(f"{labels[1]} − {labels[0]}", est, se, n_obs=self.n_obs_))
        return tidy_frame(rows)


def plr_score(y: np.ndarray, d: np.ndarray, g_hat: np.ndarray,
              m_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Partialling-out score of the PLR.

    ``psi_a = -(d - m_hat)**2`` and ``psi_b = (y - g_hat) * (d - m_hat)``.
    """
    v = d - m_hat
    return -v * v, (y - g_hat) * v


def irm_score(y: np.ndarray, d: np.ndarray, g0_hat: np.ndarray, g1_hat: np.ndarray,
              m_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AIPW score of the ATE: ``psi_a = -1``, ``psi_b`` as in :class:`AIPW`."""
    psi_b = g1_hat - g0_hat + d * (y - g1_hat) / m_hat - (1 - d) * (y - g0_hat) / (1 - m_hat)
    return -np.ones_like(psi_b), psi_b


# --------------------------------------------------------------------------- internals


def _is_binary(d: np.ndarray) -> bool:
    return bool(np.isin(d, (0.0, 1.0)).all())


def _check_common(model: _CrossFittedScore) -> None:
    if not isinstance(model.n_rep, int | np.integer) or model.n_rep < 1:
        raise EstimationError(f"n_rep={model.n_rep!r}; use a positive integer such as 1 or 5.")
    for name in ("ml_g", "ml_m"):
        learner = getattr(model, name)
        if learner is not None and not hasattr(learner, "fit"):
            raise EstimationError(f"{name} = {learner!r} is not a scikit-learn estimator "
                                  "(no fit()). Pass e.g. LGBMRegressor() or Ridge().")
    if model.ml_g is not None and not hasattr(model.ml_g, "predict"):
        raise EstimationError("ml_g has no predict(); pass a regressor.")


def _check_inputs(X: np.ndarray | pd.DataFrame, y: np.ndarray, d: np.ndarray,
                  clusters: np.ndarray | None, *, binary: bool
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Validate and convert inputs; every error names the problem and the fix."""
    names = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
    Xa = X.to_numpy() if isinstance(X, pd.DataFrame) else np.asarray(X)
    if Xa.ndim != 2:
        raise EstimationError(f"X must be 2-D (n, p); got shape {Xa.shape}. "
                              "Use X.reshape(-1, 1) for a single control.")
    if Xa.dtype.kind not in "fc":
        Xa = Xa.astype(np.float64)
    names = names or [f"x{j}" for j in range(Xa.shape[1])]
    ya = np.asarray(y, dtype=np.float64).ravel()
    da = np.asarray(d, dtype=np.float64).ravel()
    n = Xa.shape[0]
    for label, arr in (("y", ya), ("d", da)) + ((("clusters", np.asarray(clusters)),)
                                                if clusters is not None else ()):
        if len(arr) != n:
            raise EstimationError(f"{label} has {len(arr)} rows but X has {n}; "
                                  "pass arrays aligned row by row.")
    bad = ~np.isfinite(Xa).all(axis=0)
    if bad.any():
        cols = [names[j] for j in np.flatnonzero(bad)]
        rows = int((~np.isfinite(Xa)).any(axis=1).sum())
        raise EstimationError(f"NaN or infinite values in features {cols[:5]} ({rows} rows). "
                              "Impute them (e.g. X.fillna(...)) or drop those rows first.")
    for label, arr in (("outcome y", ya), ("treatment d", da)):
        if not np.isfinite(arr).all():
            raise EstimationError(f"NaN or infinite values in the {label} "
                                  f"({int((~np.isfinite(arr)).sum())} rows). Drop those rows "
                                  "or impute them before fitting.")
    if np.ptp(da) == 0:
        raise EstimationError(f"The treatment d is constant (every value is {da[0]:g}); its "
                              "effect cannot be estimated without both treated and untreated "
                              "observations. Check the treatment definition or sample filter.")
    if binary and not _is_binary(da):
        raise EstimationError("The interactive model (IRM) needs a binary 0/1 treatment; got "
                              f"values such as {np.unique(da)[:5]}. Recode it as 0/1 or use "
                              "the partially linear model (model='plr').")
    return Xa, ya, da, names
