"""A simulated music app: personalized recommendations and listening hours.

The source report studied whether **personalized recommendations** raise the
**hours of content** users consume, with five variables.  This module
simulates them with a known, planted effect so that every estimate in the
DoWhy chapter can be checked against the truth.

=========================  ===========  =======================================
Variable                   Type         Role
=========================  ===========  =======================================
``UserEngagementLevel``    float        confounder (z-score of past activity)
``PreferredContentType``   categorical  confounder (music, podcasts, audiobooks)
``NewFeatureExposure``     int 0/1      instrument (randomised feature rollout)
``PersonalizedRecommendation``  int 0/1  treatment
``HoursOfContentConsumed`` float        outcome (hours per week)
=========================  ===========  =======================================

Notes
-----
For user :math:`i`, with engagement :math:`E_i \\sim N(0, 1)`, content type
:math:`C_i` (music 50%, podcasts 30%, audiobooks 20%) and feature exposure
:math:`Z_i \\sim \\text{Bernoulli}(1/2)` assigned at random,

.. math::

    P(T_i = 1 \\mid E, C, Z) &= \\operatorname{logit}^{-1}\\bigl(-0.6
        + \\lambda\\,(E_i + \\alpha_{C_i}) + \\pi Z_i\\bigr), \\\\
    Y_i &= 8 + \\tau T_i + 1.5\\,E_i + \\beta_{C_i} + \\varepsilon_i,
        \\qquad \\varepsilon_i \\sim N(0, 2^2),

with :math:`\\alpha = (0, 0.5, -0.5)` and :math:`\\beta = (0, -0.5, 1)` for
(music, podcasts, audiobooks), true effect :math:`\\tau` (default 1 hour per
week), instrument strength :math:`\\pi` (default 1.2 on the log-odds scale) and
confounding strength :math:`\\lambda`.  Engaged users listen much more (1.5 hours
per SD) and are somewhat more likely to have recommendations switched on, so
the naive comparison :math:`E[Y \\mid T=1] - E[Y \\mid T=0]` overstates
:math:`\\tau`.  The default :math:`\\lambda = 0.125` is chosen so that this bias
is about +0.15 hours, i.e. +15% of :math:`\\tau = 1`, the size the source report
found (naive 1.1475); the bias grows roughly linearly with :math:`\\lambda`
(0 removes it).  Because :math:`Z` is randomised and enters :math:`Y` only through
:math:`T`, it is a valid instrument.  The effect is the same for every user, so
the ATE, the ATT and the partially linear (DML) estimand all equal :math:`\\tau`.
Hours are not clipped at zero (clipping would bend the linear outcome model);
with these settings about 0.05% of simulated weeks are negative.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.data.common import DataRef, params_fingerprint

TREATMENT = "PersonalizedRecommendation"
OUTCOME = "HoursOfContentConsumed"
ENGAGEMENT = "UserEngagementLevel"
CONTENT = "PreferredContentType"
INSTRUMENT = "NewFeatureExposure"
CONTENT_TYPES = ("music", "podcasts", "audiobooks")

ROLES: dict[str, str] = {
    ENGAGEMENT: "confounder", CONTENT: "confounder", INSTRUMENT: "instrument",
    TREATMENT: "treatment", OUTCOME: "outcome",
}
"""The causal role of each simulated variable."""

DESCRIPTIONS: dict[str, str] = {
    ENGAGEMENT: "Past activity, standardised (mean 0, SD 1)",
    CONTENT: "Music, podcasts or audiobooks",
    INSTRUMENT: "Randomly exposed to the new feature (0/1)",
    TREATMENT: "Personalized recommendations switched on (0/1)",
    OUTCOME: "Hours of content consumed per week",
}
TYPES: dict[str, str] = {ENGAGEMENT: "continuous", CONTENT: "categorical (3 levels)",
                         INSTRUMENT: "binary 0/1", TREATMENT: "binary 0/1",
                         OUTCOME: "continuous"}

NAME = "synthetic-music-app"
CONFOUNDING_FOR_15_PERCENT = 0.125
"""Confounding scale :math:`\\lambda` giving a naive bias of about +0.15 hours."""


@dataclass(frozen=True)
class MusicData:
    """A simulated music-app dataset and its planted truth.

    Attributes
    ----------
    frame : DataFrame
        One row per user with the five variables (treatment stored as int 0/1).
    truth : dict
        ``ate`` (the planted effect), ``instrument_strength``, ``confounding``.
    name, fingerprint : str
    """

    frame: pd.DataFrame
    truth: dict[str, float]
    name: str = NAME
    fingerprint: str = ""
    roles: dict[str, str] = field(default_factory=lambda: dict(ROLES))


def music_params(*, n: int, effect: float, instrument_strength: float, confounding: float,
                 seed: int, heterogeneity: float = 0.0) -> dict[str, float | int]:
    """The simulator's settings as a dict (the fingerprint hashes it; ``heterogeneity``
    only when it is not 0, so constant-effect data keep their fingerprints)."""
    out = {"n": n, "effect": effect, "instrument_strength": instrument_strength,
           "confounding": confounding, "seed": seed}
    if heterogeneity:
        out["heterogeneity"] = heterogeneity
    return out


def music_ref(**params: float | int) -> DataRef:
    """The :class:`DataRef` of a simulated dataset, without simulating it."""
    return DataRef(name=NAME, source="synthetic",
                   fingerprint=params_fingerprint("music-app-v1", music_params(**params)))


def simulate_music(*, n: int = 10_000, effect: float = 1.0, instrument_strength: float = 1.2,
                   confounding: float = CONFOUNDING_FOR_15_PERCENT,
                   seed: int = 0, heterogeneity: float = 0.0) -> MusicData:
    """Simulate the music app (see the module notes for the equations).

    Parameters
    ----------
    n : int
        Number of users.
    effect : float
        True effect :math:`\\tau` of recommendations on weekly hours.
    instrument_strength : float
        :math:`\\pi`, log-odds shift of switching recommendations on when exposed
        to the new feature; 0 makes the instrument irrelevant.
    confounding : float
        :math:`\\lambda`, how strongly the confounders drive the treatment (0: none).
    seed : int
    heterogeneity : float
        :math:`h`: user :math:`i`'s effect is :math:`\\tau + h E_i`, so it grows with
        engagement; the population ATE stays :math:`\\tau` (:math:`E_i` has mean 0) while
        the ATT and any variance-weighted average of the effects differ from it when
        engagement also drives the treatment.  ``truth`` then also holds ``sate`` and
        ``att``, the sample's average effect over all users and over the treated.

    Returns
    -------
    MusicData
    """
    if n < 10:
        raise ValueError(f"n must be at least 10 users, got {n}.")
    rng = np.random.default_rng(seed)
    engagement = rng.standard_normal(n)
    content = rng.choice(len(CONTENT_TYPES), size=n, p=[0.5, 0.3, 0.2])
    exposure = rng.integers(0, 2, size=n)
    alpha = np.array([0.0, 0.5, -0.5])[content]
    beta = np.array([0.0, -0.5, 1.0])[content]
    logit = -0.6 + confounding * (engagement + alpha) + instrument_strength * exposure
    treated = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    tau = effect + heterogeneity * (engagement**2 - 1)
    hours = 8.0 + tau * treated + 1.5 * engagement + beta + rng.normal(0.0, 2.0, size=n)
    frame = pd.DataFrame({
        ENGAGEMENT: engagement,
        CONTENT: pd.Categorical.from_codes(content, categories=list(CONTENT_TYPES)),
        INSTRUMENT: exposure.astype(np.int64),
        TREATMENT: treated,
        OUTCOME: hours,
    })
    params = music_params(n=n, effect=effect, instrument_strength=instrument_strength,
                          confounding=confounding, seed=seed, heterogeneity=heterogeneity)
    truth = {"ate": float(effect), "instrument_strength": instrument_strength,
             "confounding": confounding}
    if heterogeneity:
        truth.update(heterogeneity=heterogeneity, sate=float(tau.mean()),
                     att=float(tau[treated == 1].mean()))
    return MusicData(frame=frame, truth=truth,
                     fingerprint=music_ref(**params).fingerprint)


def variable_table() -> pd.DataFrame:
    """Each simulated variable with its type, role and meaning (for the chapter)."""
    order = [TREATMENT, OUTCOME, ENGAGEMENT, CONTENT, INSTRUMENT]
    return pd.DataFrame({"variable": order, "type": [TYPES[v] for v in order],
                         "role": [ROLES[v] for v in order],
                         "meaning": [DESCRIPTIONS[v] for v in order]})
