"""Interference in recommendation slates: slates built from ratings, a click model with an
attention budget and substitution, slate-level and two-stage designs with exact oracle
values, and estimators of direct, spillover, total and overall effects."""

from analysis.interference.clicks import ClickModel, click_probability, expected_clicks
from analysis.interference.designs import SPILLOVERS, Experiment, run_design, spillover_masks
from analysis.interference.estimators import (
    difference_in_means,
    hudgens_halloran,
    item_level_naive,
    lin_adjustment,
)
from analysis.interference.frame import SlateEffects, experiment_frame, slate_effects
from analysis.interference.slates import Slates, build_slates

__all__ = ["SPILLOVERS", "ClickModel", "Experiment", "SlateEffects", "Slates", "build_slates",
           "click_probability", "difference_in_means", "expected_clicks", "experiment_frame",
           "hudgens_halloran", "item_level_naive", "lin_adjustment", "run_design",
           "slate_effects", "spillover_masks"]
