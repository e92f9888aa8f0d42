"""Double machine learning: the public entry point :func:`dml` and the partially linear model.

Layout follows pyfixest: the thin public function :func:`dml` first, then the
model class; the shared fitting loop and scores are in
:mod:`analysis.estimators.core`, and the interactive model (the AIPW estimate of the
ATE) in :mod:`analysis.estimators.aipw`.  Nuisance functions are cross-fitted with
the one helper :func:`analysis.estimators.crossfit.cross_fit_all` (every fold's fit a
task); the linear scores are solved, with cluster-robust standard errors, by
:func:`analysis.estimators.inference.solve_score`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from analysis.errors import EstimationError, OverlapError
from analysis.estimators.aipw import AIPW
from analysis.estimators.core import (
    CrossFittedScore,
    check_common,
    default_learner,
    irm_score,
    is_binary,
    plr_score,
)
from analysis.estimators.crossfit import Nuisance

__all__ = ["AIPW", "PartiallyLinearDML", "default_learner", "dml", "irm_score", "plr_score"]

Model = Literal["plr", "irm"]


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


class PartiallyLinearDML(CrossFittedScore):
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
        Seed of the folds (repetition ``r`` uses the ``r``-th child of
        ``np.random.SeedSequence(seed)``) and of the default learners.

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
        check_common(self)

    def _nuisances(self, X: np.ndarray, y: np.ndarray, d: np.ndarray,
                   folds_list: list[np.ndarray]) -> list[Nuisance]:
        ml_g, ml_m = self._learners(d)
        kind = "predict_proba" if is_binary(d) and hasattr(ml_m, "predict_proba") \
            else "predict"
        return [Nuisance("g_hat", ml_g, "y", label="ml_g"),
                Nuisance("m_hat", ml_m, "d", kind, label="ml_m")]

    def _score(self, y: np.ndarray, d: np.ndarray, eta: dict[str, np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        g_hat, m_hat = eta["g_hat"], eta["m_hat"]
        psi_a, psi_b = plr_score(y, d, g_hat, m_hat)
        if np.mean(psi_a) > -1e-12 * max(np.var(d), 1e-300):
            raise OverlapError("The treatment is (almost) perfectly predicted by the controls: "
                               "D - m_hat(X) is zero. Drop controls that determine the "
                               "treatment or restrict the sample to common support.")
        return psi_a, psi_b, {"g_hat": g_hat, "m_hat": m_hat}
