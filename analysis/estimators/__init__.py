"""Causal estimators: double machine learning with cross-fitting and cluster-robust SEs."""

from analysis.estimators.crossfit import cross_fit, make_folds
from analysis.estimators.dml import AIPW, PartiallyLinearDML, default_learner, dml
from analysis.estimators.inference import median_aggregate, solve_score

__all__ = ["AIPW", "PartiallyLinearDML", "cross_fit", "default_learner", "dml", "make_folds",
           "median_aggregate", "solve_score"]
