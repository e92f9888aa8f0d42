"""When promoting one item costs the others: interference in recommendation slates.

Items in a slate compete for limited attention, so promoting one takes clicks from the
rest: the stable-unit assumption fails, and an item-level A/B test overstates what a
promotion is worth.  Slates are built from MovieLens ratings with a low-rank
recommender; a documented click model keeps every slate's clicks with and without
promotion (common random numbers), so every estimand has an exact oracle value.  Two
designs are run: the source report's slate-level randomisation, and a two-stage
design that identifies Hudgens and Halloran's direct, indirect, total and overall
effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.config import at_least, folds, fraction, non_negative, positive, seed_field
from analysis.data.common import DataRef
from analysis.errors import ConfigError
from analysis.interference.clicks import ClickModel
from analysis.interference.designs import promoted_count, run_design
from analysis.interference.slates import build_slates
from analysis.parallel import task_seeds
from analysis.result import StudyResult, checks_frame
from analysis.studies import interference_facts as facts_mod
from analysis.studies import interference_parts as parts
from analysis.studies.base import Timer, make_result
from analysis.studies.movielens import MovieLensConfig, load_movielens_for, movielens_data_ref

NAME = "interference_slates"
TITLE = "When promoting one item costs the others: interference in slates"
CHAPTER = "chapters/interference.qmd"
SUMMARY_TEMPLATE = "studies/interference_slates.md.j2"
RECOMMENDATION_TEMPLATE = "studies/interference_slates_recommendation.md.j2"


@dataclass(frozen=True, kw_only=True)
class Config(MovieLensConfig):
    """Settings of the interference chapter.

    Attributes
    ----------
    slate_size, sessions : int
        Items per slate and slates (sessions) per user.
    n_factors : int
        Factors of the recommender.
    intensity, attention, substitution : float
        The click model's promotion intensity, attention budget and within-cluster
        substitution (see :mod:`analysis.interference.clicks`).
    saturation_low, saturation_high : float
        The two-stage design's saturations: the share of a user's sessions promoted,
        rounded to whole sessions (:func:`~analysis.interference.designs.promoted_count`).
    n_folds : int
        Cross-fitting folds (grouped by user).
    coverage_reps : int
        Monte Carlo re-randomisations (0 skips the check).
    """

    seed: int = seed_field(20080601)
    slate_size: int = at_least(10, 4, "a lower-ranked focal item needs items above it")
    sessions: int = at_least(10, 4, "half of a user's sessions are promoted, at random")
    n_factors: int = at_least(20, 2, "a factorisation needs factors")
    intensity: float = positive(0.5)
    attention: float = non_negative(0.35)
    substitution: float = non_negative(1.5)
    saturation_low: float = fraction(0.3)
    saturation_high: float = fraction(0.7)
    n_folds: int = folds(3)
    coverage_reps: int = non_negative(200)

    def check(self) -> None:
        """The high saturation must exceed the low one."""
        super().check()
        if self.saturation_low >= self.saturation_high:
            raise ConfigError(f"saturation_low = {self.saturation_low} must be below "
                              f"saturation_high = {self.saturation_high}.")
        for name in ("saturation_low", "saturation_high"):
            m = int(promoted_count(getattr(self, name), self.sessions))
            if not 2 <= m <= self.sessions - 2:
                raise ConfigError(
                    f"{name} = {getattr(self, name)} promotes {m} of a user's {self.sessions} "
                    "sessions; the Hudgens-Halloran variances need at least two promoted and "
                    "two unpromoted sessions per user. Move it towards 0.5 or raise sessions.")

    def click_model(self) -> ClickModel:
        """The click model with this study's settings."""
        return ClickModel(intensity=self.intensity, attention=self.attention,
                          substitution=self.substitution)

    @property
    def levels(self) -> tuple[float, float]:
        """The two saturations, low first."""
        return (self.saturation_low, self.saturation_high)


def data_ref(config: Config, root: Path | None = None) -> DataRef:
    """The MovieLens data the slates are built from."""
    return movielens_data_ref(config, root)


def run(config: Config, root: Path | None = None) -> StudyResult:
    """Build slates, run both designs, estimate every effect beside its oracle.

    Returns
    -------
    StudyResult
        Tables ``estimates`` (design 1, every estimand and estimator), ``decomposition``,
        ``naive``, ``hh`` (design 2), ``by_cluster``, ``by_position``, ``policies``,
        ``sensitivity``, ``coverage`` and ``coverage_reps`` (with ``coverage_reps > 0``),
        ``summary``, ``report``, ``limitations``, ``checks``, ``headline``.
    """
    timer = Timer()
    # independent streams for the slates, each design, the learners and the checks
    seed = dict(zip(("slates", "design", "two_stage", "learners", "sensitivity", "coverage"),
                    task_seeds(config.seed, 6), strict=True))
    data = load_movielens_for(config, root)
    slates = build_slates(data, slate_size=config.slate_size, sessions=config.sessions,
                          seed=seed["slates"], n_factors=config.n_factors)
    model = config.click_model()
    activity = np.log1p(data.ratings.groupby("user").size().sort_index().to_numpy())
    X = parts.slate_covariates(slates, activity)
    exp = run_design(slates, model, seed=seed["design"])
    two = run_design(slates, model, design="two_stage", saturations=config.levels,
                     seed=seed["two_stage"])
    est, total_model = parts.estimates(exp, X, seed=seed["learners"], n_folds=config.n_folds)
    positions = slates.focal - slates.size // 2
    tables = {
        "estimates": est,
        "decomposition": parts.decomposition(est),
        "naive": parts.naive_item_level(exp),
        "hh": parts.hh_table(two, config.levels),
        "by_cluster": parts.by_group(exp, slates.focal_cluster(), slates.cluster_names,
                                     min_slates=30, kind="cluster"),
        "by_position": parts.by_group(exp, positions, [f"position {p + 1}" for p in
                                                       range(slates.size // 2, slates.size)],
                                      min_slates=30, kind="position"),
        "policies": parts.targeting(exp, X, total_model, seed=seed["learners"],
                                    n_folds=config.n_folds, click_model=model),
        "sensitivity": parts.sensitivity(
            {k: slates if k == config.slate_size else
             build_slates(data, slate_size=k, sessions=config.sessions, seed=seed["slates"],
                          n_factors=config.n_factors) for k in (5, config.slate_size, 20)},
            model, seed=seed["sensitivity"], base_size=config.slate_size),
        "summary": _summary(slates, exp, data),
        "report": pd.DataFrame([{"quantity": k, "value": v, "unit": parts.REPORT_UNITS[k]}
                                for k, v in parts.REPORT.items()]),
    }
    reps = None
    if config.coverage_reps:
        reps, tables["coverage"] = parts.coverage_study(slates, model, config.levels,
                                                        reps=config.coverage_reps,
                                                        seed=seed["coverage"])
        tables["coverage_reps"] = reps
    facts = facts_mod.facts(config, tables, slates)
    tables["limitations"] = facts_mod.limitations(facts)
    tables["checks"] = checks_frame(facts_mod.checks(tables)
                                    + (parts.coverage_rows(reps, tables["coverage"])
                                       if reps is not None else []))
    tables["headline"] = facts_mod.headline(facts)
    return make_result(study=NAME, config=config, ref=data_ref(config, root),
                       rows=slates.n_slates, tables=tables, facts=facts, timer=timer)


def _summary(slates, exp, data) -> pd.DataFrame:
    y0 = exp.y0.sum(axis=1)
    rows = [("Users", f"{len(np.unique(slates.user)):,}"),
            ("Slates (sessions)", f"{slates.n_slates:,}"),
            ("Items per slate", f"{slates.size}"),
            ("Distinct movies shown", f"{len(np.unique(slates.items)):,}"),
            ("Substitute clusters (primary genres)", f"{len(slates.cluster_names)}"),
            ("Clicks per slate without promotion", f"{y0.mean():.3f}"),
            ("Slates promoted (design 1)", f"{exp.promoted.mean():.1%}"),
            ("Ratings the recommender was fitted on", f"{len(data.ratings):,}")]
    return pd.DataFrame(rows, columns=["measure", "value"])
