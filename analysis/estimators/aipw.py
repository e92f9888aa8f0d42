"""The interactive model for a binary treatment: the AIPW (doubly robust) estimate of the ATE.

A public estimator for any ``X, y, d`` (and optional clusters): cross-fitted
nuisances of any scikit-learn learner, chosen by cross-validated loss among
candidates when asked (:mod:`analysis.estimators.selection`), propensities clipped
with an overlap check, and an analytic cluster-robust standard error.  Its score
``psi_b`` is also the doubly robust pseudo-outcome that the heterogeneity tools of
:mod:`analysis.estimators.heterogeneity` and the bootstrap of
:mod:`analysis.estimators.bootstrap` work on.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from analysis.errors import EstimationError, OverlapError, OverlapWarning
from analysis.estimators.core import CrossFittedScore, check_common, default_learner, irm_score
from analysis.estimators.crossfit import Nuisance
from analysis.estimators.inference import group_means, median_aggregate, solve_score
from analysis.estimators.selection import (
    arms_out_of_fold,
    default_candidates,
    outcome_losses,
    propensity_losses,
)
from analysis.result import tidy_frame, tidy_row

Learner = BaseEstimator | Mapping[str, BaseEstimator] | str | None
"""A learner, a dict of named candidates, ``"auto"`` (the default candidates) or None."""


class AIPW(CrossFittedScore):
    """Interactive model for a binary treatment; the AIPW estimate of the ATE.

    :math:`Y = g_0(D, X) + U`, :math:`D = m_0(X) + V`, with
    :math:`\\theta = E[g_0(1,X) - g_0(0,X)]`.

    Parameters
    ----------
    ml_g : regressor, dict of regressors or "auto", optional
        Learner of :math:`g(d, X) = E[Y\\mid D=d, X]`, fitted separately on each arm.
        A dict of named candidates (or ``"auto"`` for
        :func:`~analysis.estimators.selection.default_candidates`) is scored by
        out-of-fold RMSE on the first repetition's folds and the best is used.
        Default: LightGBM (:func:`~analysis.estimators.core.default_learner`).
    ml_m : classifier, dict of classifiers or "auto", optional
        Learner of the propensity :math:`m(X) = P(D=1\\mid X)`; must have ``predict_proba``.
        Candidates are scored by out-of-fold log loss.
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
    selection_m_, selection_g_ : DataFrame or None
        With candidates: each candidate's out-of-fold loss (see
        :func:`~analysis.estimators.selection.propensity_losses` and
        :func:`~analysis.estimators.selection.outcome_losses`) and which was selected.
    candidates_ : dict
        With candidates: the first repetition's out-of-fold predictions of every
        candidate, under keys ``m_hat``, ``g0_hat``, ``g1_hat`` (name -> array), so the
        estimate under any other combination can be computed without refitting.

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

    def __init__(self, *, ml_g: Learner = None, ml_m: Learner = None,
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

    def fit(self, X: np.ndarray | pd.DataFrame, y: np.ndarray, d: np.ndarray, *,
            clusters: np.ndarray | None = None) -> AIPW:
        """Cross-fit the nuisances (choosing among candidates first, if given) and solve the
        AIPW score; see :meth:`CrossFittedScore.fit`.

        Returns
        -------
        self
        """
        self.selection_m_ = self.selection_g_ = None
        self.candidates_: dict[str, dict[str, np.ndarray]] = {}
        return super().fit(X, y, d, clusters=clusters)

    def _check_learners(self, d: np.ndarray) -> None:
        check_common(self, candidates=True)
        for name, kind in (("ml_m", "classifier"), ("ml_g", "regressor")):
            several = isinstance(getattr(self, name), Mapping | str)
            for key, learner in _candidates(getattr(self, name), kind, self.seed).items():
                if name == "ml_m" and not hasattr(learner, "predict_proba"):
                    raise EstimationError(
                        f"ml_m{f' candidate {key!r}' if several else ''} = "
                        f"{type(learner).__name__} has no predict_proba(); the interactive "
                        "model needs propensities P(D=1|X). Use a classifier instead, e.g. "
                        "LGBMClassifier() or LogisticRegression().")

    def _nuisances(self, X: np.ndarray, y: np.ndarray, d: np.ndarray,
                   folds_list: list[np.ndarray]) -> list[Nuisance]:
        """The chosen learners' nuisances; with candidates, every candidate is cross-fitted
        on the first repetition's folds first and the best ones fit the other repetitions."""
        m_c = _candidates(self.ml_m, "classifier", self.seed)
        g_c = _candidates(self.ml_g, "regressor", self.seed)
        m_key, g_key = next(iter(m_c)), next(iter(g_c))
        reps = None
        if len(m_c) > 1 or len(g_c) > 1:
            m_key, g_key = self._select(m_c, g_c, X, y, d, folds_list[0])
            reps = tuple(range(1, len(folds_list)))
        self.selected_ = {"ml_m": m_key, "ml_g": g_key}
        m, g = m_c[m_key], g_c[g_key]
        sfx = f" ({m_key})", f" ({g_key})"
        return [Nuisance("m_hat", m, "d", "predict_proba", reps=reps, label="ml_m" + sfx[0]),
                Nuisance("g0_hat", g, "y", "predict", "untreated", reps=reps,
                         label="ml_g (untreated arm)" + sfx[1]),
                Nuisance("g1_hat", g, "y", "predict", "treated", reps=reps,
                         label="ml_g (treated arm)" + sfx[1])]

    def _score(self, y: np.ndarray, d: np.ndarray, eta: dict[str, np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        m_raw, g0_hat, g1_hat = eta["m_hat"], eta["g0_hat"], eta["g1_hat"]
        m_hat = self._check_overlap(m_raw)
        psi_a, psi_b = irm_score(y, d, g0_hat, g1_hat, m_hat)
        return psi_a, psi_b, {"g0_hat": g0_hat, "g1_hat": g1_hat, "m_hat": m_raw}

    def _select(self, m_c: dict[str, BaseEstimator], g_c: dict[str, BaseEstimator],
                X: np.ndarray, y: np.ndarray, d: np.ndarray, folds: np.ndarray
                ) -> tuple[str, str]:
        """Out-of-fold predictions of every candidate (all fits as tasks at once); keep the
        ones with the lowest loss, their predictions standing for the first repetition."""
        m_oof, g0, g1 = arms_out_of_fold(m_c, g_c, X, y, d, folds)
        m_key, g_key = next(iter(m_c)), next(iter(g_c))
        if len(m_c) > 1:
            self.selection_m_ = propensity_losses(m_oof, d)
            m_key = str(self.selection_m_.loc[self.selection_m_["selected"], "learner"].iloc[0])
        self._overlap_error(m_oof[m_key])
        if len(g_c) > 1:
            self.selection_g_ = outcome_losses(g0, g1, y, d)
            g_key = str(self.selection_g_.loc[self.selection_g_["selected"], "learner"].iloc[0])
        self.candidates_ = {"m_hat": m_oof, "g0_hat": g0, "g1_hat": g1}
        self._fitted = {"m_hat": {0: m_oof[m_key]}, "g0_hat": {0: g0[g_key]},
                        "g1_hat": {0: g1[g_key]}}
        return m_key, g_key

    def _overlap_error(self, m_hat: np.ndarray) -> None:
        """Raise :class:`OverlapError` when too many propensities are at 0 or 1."""
        tol = self.overlap_tolerance
        extreme = (m_hat < tol) | (m_hat > 1 - tol)
        if extreme.mean() > self.max_no_overlap_share:
            raise OverlapError(
                f"No overlap: {int(extreme.sum()):,} of {len(m_hat):,} rows "
                f"({extreme.mean():.1%}) have an estimated propensity within {tol} of 0 or 1, "
                "beyond any clipping, so treated and untreated units are not comparable there "
                "and the ATE is not identified. Drop controls that determine the treatment, "
                "restrict the sample to common support (trim those rows), or use the "
                "partially linear model.")

    def _check_overlap(self, m_hat: np.ndarray) -> np.ndarray:
        """Check overlap, clip the propensities to the threshold and warn if any were."""
        self._overlap_error(m_hat)
        t = self.trimming_threshold
        trimmed = (m_hat < t) | (m_hat > 1 - t)
        self.trimmed_share_ = float(np.mean(trimmed))
        if trimmed.any():
            warnings.warn(f"{trimmed.mean():.2%} of estimated propensities lie outside "
                          f"[{t}, {1 - t}] and were clipped to it; the estimate leans on "
                          "extrapolation for those observations.", OverlapWarning, stacklevel=5)
        return np.clip(m_hat, t, 1 - t)

    def rescore(self, *, clip: float, trim: float | None = None,
                clusters: np.ndarray | None = None) -> dict[str, float]:
        """The estimate under another clipping or trimming rule, without refitting.

        Parameters
        ----------
        clip : float
            Propensities are clipped to ``[clip, 1 - clip]``.
        trim : float, optional
            Rows whose propensity lies outside ``[trim, 1 - trim]`` are dropped first
            (the estimand becomes the ATE of the rows that are kept).
        clusters : array, optional
            Cluster labels of the standard error (default: those of ``fit``).

        Returns
        -------
        dict
            ``estimate``, ``std_error``, ``n_used``, ``share_clipped`` (median over
            repetitions for the first two, as in ``fit``).
        """
        self._require_fit()
        clusters = self.clusters_ if clusters is None else clusters
        thetas, ses = [], []
        y, d = self.y_, self.d_
        for r in range(self.n_rep):
            m = self.nuisance_["m_hat"][r]
            keep = np.ones(len(m), bool) if trim is None else (m >= trim) & (m <= 1 - trim)
            _, b = irm_score(y[keep], d[keep], self.nuisance_["g0_hat"][r][keep],
                             self.nuisance_["g1_hat"][r][keep], np.clip(m[keep], clip, 1 - clip))
            sol = solve_score(-np.ones(int(keep.sum())), b,
                              None if clusters is None else np.asarray(clusters)[keep])
            thetas.append(sol.theta)
            ses.append(sol.se)
        est, se = median_aggregate(thetas, ses)
        m0 = self.nuisance_["m_hat"][0]
        keep0 = np.ones(len(m0), bool) if trim is None else (m0 >= trim) & (m0 <= 1 - trim)
        return {"estimate": est, "std_error": se, "n_used": int(keep0.sum()),
                "share_clipped": float(np.mean((m0[keep0] < clip) | (m0[keep0] > 1 - clip)))}

    def combination(self, m_key: str, g_key: str, *, clip: float | None = None,
                    trim: float | None = None) -> dict:
        """The estimate with another pair of candidate learners (first repetition's folds).

        Parameters
        ----------
        m_key, g_key : str
            Candidate names of the propensity and outcome learners.
        clip : float, optional
            Clip propensities to ``[clip, 1 - clip]`` (default: ``trimming_threshold``).
        trim : float, optional
            First drop rows whose propensity lies outside ``[trim, 1 - trim]``.

        Returns
        -------
        dict
            ``estimate``, ``std_error`` (cluster-robust as in ``fit``), ``psi_b``,
            ``n_used`` and ``share_clipped``.
        """
        self._require_fit()
        if not self.candidates_:
            raise EstimationError("No candidates were fitted: pass dicts of learners (or "
                                  "'auto') as ml_m and ml_g to compare combinations.")
        c = clip if clip is not None else self.trimming_threshold
        m = self.candidates_["m_hat"][m_key]
        keep = np.ones(len(m), bool) if trim is None else (m >= trim) & (m <= 1 - trim)
        _, b = irm_score(self.y_[keep], self.d_[keep], self.candidates_["g0_hat"][g_key][keep],
                         self.candidates_["g1_hat"][g_key][keep], np.clip(m[keep], c, 1 - c))
        sol = solve_score(-np.ones_like(b), b,
                          None if self.clusters_ is None else self.clusters_[keep])
        return {"estimate": sol.theta, "std_error": sol.se, "psi_b": b,
                "n_used": int(keep.sum()),
                "share_clipped": float(np.mean((m[keep] < c) | (m[keep] > 1 - c)))}

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


def _candidates(learner: Learner, kind: str, seed: int) -> dict[str, BaseEstimator]:
    """The candidates a learner argument stands for (one, unnamed, unless a dict or "auto")."""
    if learner is None:
        return {"lightgbm": default_learner(kind, seed=seed)}  # type: ignore[arg-type]
    if isinstance(learner, str):
        if learner != "auto":
            raise EstimationError(f"Learner {learner!r} is not a learner; pass an estimator, a "
                                  "dict of named candidates, or 'auto'.")
        return default_candidates(kind, seed=seed)  # type: ignore[arg-type]
    if isinstance(learner, Mapping):
        if not learner:
            raise EstimationError("An empty dict of candidate learners; pass at least one.")
        return dict(learner)
    return {type(learner).__name__: learner}
