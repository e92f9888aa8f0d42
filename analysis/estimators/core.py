"""What every cross-fitted estimator of :mod:`analysis.estimators` shares.

The fitting loop over repetitions of cross-fitting (:class:`CrossFittedScore`), the
default LightGBM nuisance learner, the two orthogonal scores (:func:`plr_score`,
:func:`irm_score`) and the input checks whose errors say how to fix the input.
Names follow Chernozhukov et al. (2018) and DoubleML: ``psi_a``, ``psi_b``,
``m_hat``, ``g_hat``, ``g0_hat``, ``g1_hat``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from analysis.errors import EstimationError, NotFittedError
from analysis.estimators.crossfit import cross_fit_all, make_folds
from analysis.estimators.inference import median_aggregate, score_se, solve_score
from analysis.parallel import task_seeds
from analysis.result import tidy_frame, tidy_row

LearnerKind = Literal["regressor", "classifier"]


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


def targets_of(y: np.ndarray, d: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays a model's :class:`~analysis.estimators.crossfit.Nuisance` specs may name:
    ``y``, ``d`` and, for a binary treatment, the arm masks ``treated`` and ``untreated``."""
    out = {"y": y, "d": d}
    if is_binary(d):
        out.update(treated=d == 1, untreated=d == 0)
    return out


class CrossFittedScore(BaseEstimator):
    """Shared fitting loop: folds, nuisances, score, repeated cross-fitting.

    A model says which nuisances to cross-fit (``_nuisances(X, y, d, folds_list)``, a
    list of :class:`~analysis.estimators.crossfit.Nuisance`) and how to score their
    out-of-fold predictions (``_score(y, d, eta)``, returning ``psi_a``, ``psi_b`` and
    the nuisances to keep); every fit of every fold of every repetition is a task of
    :func:`~analysis.estimators.crossfit.cross_fit_all`.  Repetition :math:`r` draws its
    folds from the :math:`r`-th child of ``np.random.SeedSequence(seed)``.
    """

    _binary_only = False

    def fit(self, X: np.ndarray | pd.DataFrame, y: np.ndarray, d: np.ndarray, *,
            clusters: np.ndarray | None = None) -> CrossFittedScore:
        """Cross-fit the nuisances ``n_rep`` times and solve the score.

        Returns
        -------
        self
        """
        Xa, ya, da, names = check_inputs(X, y, d, clusters, binary=self._binary_only)
        self._check_learners(da)
        folds_list = [make_folds(len(ya), self.n_folds, clusters=clusters, seed=s)
                      for s in task_seeds(self.seed, self.n_rep)]
        self._fitted: dict[str, dict[int, np.ndarray]] = {}
        specs = self._nuisances(Xa, ya, da, folds_list)
        eta_all = cross_fit_all(specs, Xa, targets_of(ya, da), folds_list)
        for name, rows in self._fitted.items():  # fitted already (while choosing learners)
            for r, row in rows.items():
                eta_all[name][r] = row
        del self._fitted
        reps = []
        for r in range(self.n_rep):
            a, b, eta = self._score(ya, da, {k: v[r] for k, v in eta_all.items()})
            reps.append({"a": a, "b": b, "eta": eta, "sol": solve_score(a, b, clusters)})
        thetas = [r["sol"].theta for r in reps]
        ses = [r["sol"].se for r in reps]
        ses_iid = [r["sol"].se_iid for r in reps]
        psi_a, psi_b = [r["a"] for r in reps], [r["b"] for r in reps]
        nuis = [r["eta"] for r in reps]
        sol = reps[-1]["sol"]
        self.thetas_, self.ses_ = np.array(thetas), np.array(ses)
        self.coef_, self.se_ = median_aggregate(self.thetas_, self.ses_)
        self.se_iid_ = median_aggregate(self.thetas_, np.array(ses_iid))[1]
        self.psi_a_, self.psi_b_ = np.vstack(psi_a), np.vstack(psi_b)
        self.nuisance_ = {k: np.vstack([e[k] for e in nuis]) for k in nuis[0]}
        self.folds_ = np.stack(folds_list)  # (n_rep, n) or (n_rep, n, ways)
        self.n_obs_, self.n_clusters_ = len(ya), sol.n_clusters
        self.y_, self.d_ = ya, da
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
        binary = is_binary(d)
        ml_g = self.ml_g if self.ml_g is not None else default_learner("regressor",
                                                                        seed=self.seed)
        ml_m = self.ml_m if self.ml_m is not None else default_learner(
            "classifier" if binary else "regressor", seed=self.seed)
        return ml_g, ml_m



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


# --------------------------------------------------------------------------- checks


def is_binary(d: np.ndarray) -> bool:
    return bool(np.isin(d, (0.0, 1.0)).all())


def check_common(model: CrossFittedScore, *, candidates: bool = False) -> None:
    """Check ``n_rep`` and the learners (with ``candidates``, dicts of them or "auto" too)."""
    if not isinstance(model.n_rep, int | np.integer) or model.n_rep < 1:
        raise EstimationError(f"n_rep={model.n_rep!r}; use a positive integer such as 1 or 5.")
    for name in ("ml_g", "ml_m"):
        learner = getattr(model, name)
        if candidates and isinstance(learner, str):
            continue  # "auto" and other strings are resolved (and checked) by the model
        items = learner.items() if candidates and isinstance(learner, Mapping) else \
            [("", learner)]
        for key, est in items:
            label = f"{name}[{key!r}]" if key else name
            if est is not None and not hasattr(est, "fit"):
                raise EstimationError(f"{label} = {est!r} is not a scikit-learn estimator "
                                      "(no fit()). Pass e.g. LGBMRegressor() or Ridge().")
            if name == "ml_g" and est is not None and not hasattr(est, "predict"):
                raise EstimationError(f"{label} has no predict(); pass a regressor.")


def check_inputs(X: np.ndarray | pd.DataFrame, y: np.ndarray, d: np.ndarray,
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
    if binary and not is_binary(da):
        raise EstimationError("The interactive model (IRM) needs a binary 0/1 treatment; got "
                              f"values such as {np.unique(da)[:5]}. Recode it as 0/1 or use "
                              "the partially linear model (model='plr').")
    return Xa, ya, da, names
