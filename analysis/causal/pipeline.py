"""The DoWhy pipeline: model, identify, estimate.

:class:`DoWhyPipeline` wraps :class:`dowhy.CausalModel` for one treatment and
one outcome.  It validates the graph and the data first (clear
:class:`~analysis.errors.GraphError` / :class:`~analysis.errors.DataError` /
:class:`~analysis.errors.EstimationError` messages instead of DoWhy's), works on
its own copy of the data (DoWhy adds columns to the frame it is given), stores
the treatment as int 0/1 (DoWhy's refuters fail on bool treatments under
pandas 3), keeps DoWhy's and EconML's logging off the page, and returns each
estimate as a tidy row with a confidence interval.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import networkx as nx
import numpy as np
import pandas as pd

from analysis.causal.graph import backdoor_latex, check_columns, iv_latex, make_graph
from analysis.errors import EstimationError, OverlapWarning
from analysis.estimators.linear import ols
from analysis.result import tidy_row

NOISY_LOGGERS = ("dowhy", "econml", "lightgbm", "causalml")
Target = Literal["ate", "att"]


@contextlib.contextmanager
def quiet_dowhy() -> Iterator[None]:
    """Silence DoWhy / EconML logging and their library warnings for a block.

    Only library chatter is silenced: :class:`~analysis.errors.AnalysisWarning` s
    raised by this package are emitted outside such blocks.
    """
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@dataclass(frozen=True)
class Identification:
    """What the graph identifies.

    Attributes
    ----------
    adjustment_set : list of str
        DoWhy's backdoor adjustment set.
    instruments : list of str
        Instruments DoWhy found in the graph.
    backdoor_latex, iv_latex : str
        The estimands as LaTeX (``iv_latex`` empty without an instrument).
    assumption : str
        The unconfoundedness assumption in words.
    """

    adjustment_set: list[str]
    instruments: list[str]
    backdoor_latex: str
    iv_latex: str
    assumption: str


class DoWhyPipeline:
    """Model, identify and estimate one effect with DoWhy.

    Parameters
    ----------
    data : DataFrame
        One row per unit; not modified.
    graph : DiGraph or iterable of edges
        The causal graph over column names.
    treatment, outcome : str
    seed : int

    Raises
    ------
    GraphError
        If the graph is cyclic or lacks the treatment or outcome.
    DataError
        If a node of the graph is not a column of ``data``.
    """

    def __init__(self, data: pd.DataFrame, graph: nx.DiGraph, *, treatment: str, outcome: str,
                 seed: int = 0) -> None:
        self.graph = make_graph(graph, treatment=treatment, outcome=outcome)
        check_columns(data, self.graph.nodes)
        df = data[list(self.graph.nodes)].copy()
        if pd.api.types.is_bool_dtype(df[treatment]):
            df[treatment] = df[treatment].astype(np.int64)
        self.data = df
        self.treatment, self.outcome, self.seed = treatment, outcome, seed
        with quiet_dowhy():
            self._estimand = _sorted_estimand(
                self._model(df).identify_effect(proceed_when_unidentifiable=True))

    # --- model and identification -------------------------------------------------
    def _model(self, data: pd.DataFrame):
        from dowhy import CausalModel

        with quiet_dowhy():
            return CausalModel(data=data, treatment=self.treatment, outcome=self.outcome,
                               graph=self.graph)

    def estimand(self):
        """A fresh copy of DoWhy's identified estimand (estimation mutates it).

        Its variable lists are sorted (:func:`_sorted_estimand`), so every estimator
        sees the covariates in the same order in every process.
        """
        return copy.deepcopy(self._estimand)

    def identify(self) -> Identification:
        """The backdoor adjustment set, the instruments and the estimands."""
        e = self._estimand
        adj = list(e.get_adjustment_set() or [])
        ivs = list(e.instrumental_variables or [])
        return Identification(
            adjustment_set=adj, instruments=ivs,
            backdoor_latex=backdoor_latex(self.treatment, self.outcome, adj),
            iv_latex=iv_latex(self.treatment, self.outcome, ivs[0]) if ivs else "",
            assumption=(f"No unobserved variable affects both {self.treatment} and "
                        f"{self.outcome} once {', '.join(adj) or 'nothing'} is held fixed."))

    # --- estimators ----------------------------------------------------------------
    def require_binary(self, purpose: str) -> None:
        """Raise :class:`EstimationError` unless the treatment is 0/1."""
        values = set(pd.unique(self.data[self.treatment].dropna()))
        if not values <= {0, 1}:
            shown = sorted(values)[:5]
            raise EstimationError(
                f"{purpose} needs a binary 0/1 treatment, but '{self.treatment}' takes values "
                f"such as {shown}. Recode it to 0/1, or use backdoor linear regression "
                "(method 'backdoor.linear_regression'), which accepts a continuous treatment.")

    def naive(self) -> dict:
        """Regression of the outcome on the treatment alone (difference in means if binary)."""
        y = self.data[self.outcome].to_numpy(float)
        t = self.data[self.treatment].to_numpy(float)
        fit = ols(y, np.column_stack([np.ones_like(t), t]), ["const", self.treatment])
        return tidy_row("Naive regression (no adjustment)", fit.coef[1], fit.se_hc1[1],
                        method="naive")

    def backdoor_linear(self):
        """DoWhy's backdoor linear regression; returns (row, CausalEstimate)."""
        with quiet_dowhy():
            est = self._model(self.data.copy()).estimate_effect(
                self.estimand(), method_name="backdoor.linear_regression",
                confidence_intervals=True, test_significance=True)
            se = float(np.ravel(est.get_standard_error())[0])
            lo, hi = np.ravel(est.get_confidence_intervals())
        row = tidy_row("Backdoor linear regression", est.value, se,
                       method="backdoor.linear_regression")
        row.update(ci_lower=float(lo), ci_upper=float(hi))  # DoWhy's (Student-t) interval
        return row, est

    def propensity_weighting(self, *, target: Target = "ate", n_bootstrap: int = 100,
                             clip: float = 0.01) -> tuple[dict, np.ndarray]:
        """DoWhy's propensity-score weighting (Hajek), with a bootstrap CI.

        Returns
        -------
        (dict, ndarray)
            The tidy row (bootstrap SE and percentile interval) and the fitted
            propensity scores.

        Raises
        ------
        EstimationError
            If the treatment is not binary.

        Warns
        -----
        OverlapWarning
            If more than 1% of units have a propensity beyond the clipping bounds.

        Notes
        -----
        The propensity model is a logistic regression on standardised covariates
        (refitted in every bootstrap resample, so its estimation error is part of
        the interval); scores are clipped to ``[clip, 1 - clip]`` for the ATE and
        only from above for the ATT (an untreated unit with a tiny propensity
        simply gets a tiny weight :math:`e/(1-e)`; raising it to ``clip`` would
        give irrelevant controls weight).
        """
        self.require_binary("Propensity-score weighting")
        value, scores = self._psw_once(self.data, target, clip)
        rng = np.random.default_rng(self.seed)
        idx = rng.integers(0, len(self.data), size=(n_bootstrap, len(self.data)))
        boots = np.array([self._psw_once(self.data.iloc[i].reset_index(drop=True), target,
                                         clip)[0] for i in idx])
        self._check_overlap(scores, target, clip)
        lo, hi = np.quantile(boots, [0.025, 0.975])
        row = tidy_row(f"Propensity-score weighting ({target.upper()})", value,
                       float(boots.std(ddof=1)), method="backdoor.propensity_score_weighting")
        row.update(ci_lower=float(lo), ci_upper=float(hi))
        return row, scores

    def _check_overlap(self, scores: np.ndarray, target: Target, clip: float) -> None:
        treated = self.data[self.treatment].to_numpy() == 1
        if target == "att":  # only treated units without comparable controls matter
            extreme, who = float(np.mean(scores[treated] > 1 - clip)), "treated units"
        else:
            extreme, who = float(np.mean((scores < clip) | (scores > 1 - clip))), "units"
        if extreme > 0.01:
            warnings.warn(f"Limited overlap: {extreme:.1%} of {who} have a propensity score "
                          f"beyond [{clip}, {1 - clip}] and were clipped; the weighting "
                          "estimate leans on few comparable units.", OverlapWarning,
                          stacklevel=3)

    def _psw_once(self, data: pd.DataFrame, target: Target,
                  clip: float) -> tuple[float, np.ndarray]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(StandardScaler(), LogisticRegression(C=1e4, max_iter=2000))
        df = data.copy()
        with quiet_dowhy():
            est = self._model(df).estimate_effect(
                self.estimand(), method_name="backdoor.propensity_score_weighting",
                target_units=target,
                method_params={"weighting_scheme": "ips_normalized_weight",
                               "propensity_score_model": model,
                               "min_ps_score": 1e-12 if target == "att" else clip,
                               "max_ps_score": 1 - clip})
        raw = model.predict_proba(est.estimator._observed_common_causes)[:, 1]
        return float(est.value), raw

    def double_ml(self, *, model_y: Callable[[], object], model_t: Callable[[], object],
                  folds: int = 5) -> tuple[dict, object]:
        """EconML's LinearDML through DoWhy (partially linear model, cross-fitted).

        Parameters
        ----------
        model_y, model_t : callable
            Factories of the outcome regressor and the treatment classifier.
        folds : int
            Cross-fitting folds.

        Returns
        -------
        (dict, econml estimator)
            The tidy row with EconML's analytic standard error, and the fitted model.

        Raises
        ------
        EstimationError
            If the treatment is not binary.

        Notes
        -----
        With no effect modifiers the final stage estimates one coefficient
        :math:`\\theta` in :math:`Y - \\hat m(W) = \\theta\\,(T - \\hat e(W)) + \\varepsilon`,
        an overlap-weighted average effect; with a constant effect it is the ATE.
        """
        self.require_binary("Double ML with a discrete treatment")
        with quiet_dowhy():
            est = self._model(self.data.copy()).estimate_effect(
                self.estimand(), method_name="backdoor.econml.dml.LinearDML",
                method_params={"init_params": {"model_y": model_y(), "model_t": model_t(),
                                               "discrete_treatment": True, "cv": folds,
                                               "random_state": self.seed},
                               "fit_params": {}})
            fitted = est._estimator_object
            inf = fitted.ate_inference()
        return tidy_row("Double ML (EconML LinearDML)", est.value, float(inf.stderr_mean),
                        method="backdoor.econml.dml.LinearDML"), fitted


def _sorted_estimand(estimand):
    """Sort every variable list of a DoWhy estimand in place and return it.

    DoWhy builds adjustment sets and instrument lists from Python sets, whose order
    depends on ``PYTHONHASHSEED``; the covariates' order then changes the design
    matrices and, through learners that sample columns, the estimates.  Sorted
    lists make every run of the book give the same numbers.
    """
    for attr in ("backdoor_variables", "general_adjustment_variables"):
        table = getattr(estimand, attr, None) or {}
        for key in list(table):
            if table[key] is not None:
                table[key] = sorted(table[key])
    for attr in ("instrumental_variables", "frontdoor_variables", "mediator_variables"):
        value = getattr(estimand, attr, None)
        if value is not None:
            setattr(estimand, attr, sorted(value))
    return estimand
