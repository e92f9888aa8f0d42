"""The two experimental designs, their potential outcomes and the exact oracle estimands.

Design 1, *slate randomisation* (the source report's design): in every user's sessions,
half of the slates (rounded half up) are promoted, at random.

Design 2, *two-stage randomisation* (Hudgens & Halloran, 2008): users are the groups;
half of them, at random, get the high promotion saturation :math:`\\psi_h` and the others
the low one :math:`\\psi_l`; then exactly :math:`\\mathrm{round}(\\psi n_i)` of user
:math:`i`'s :math:`n_i` sessions are promoted, at random.

With complete randomisation inside a user, the share of a session's *other* sessions that
are promoted depends only on the session's own promotion and the saturation
(:math:`(m - z)/(n - 1)` with :math:`m` promoted of :math:`n`): the interference is
stratified, as Hudgens and Halloran assume, and every potential outcome is one evaluation
of the click model with common random numbers.  The oracle value of every estimand is
the exact *expected* number of clicks of the slates with and without promotion (over
session lengths and click noise; :func:`~analysis.interference.clicks.expected_clicks`),
so it is known exactly, not simulated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.errors import EstimationError
from analysis.interference.clicks import (
    ClickModel,
    Draws,
    click_probability,
    draw_uniforms,
    expected_clicks,
)
from analysis.interference.slates import Slates

SPILLOVERS = {
    "all": "All non-focal items",
    "same_cluster": "Same-cluster competitors",
    "displaced": "Displaced items (pushed down one position)",
    "same_cluster_displaced": "Same-cluster displaced substitutes",
    "near_displaced": "Near-position displaced items (now 2nd or 3rd)",
}
"""The five spillover definitions: which non-focal items of a slate count."""


def spillover_masks(slates: Slates) -> dict[str, np.ndarray]:
    """Boolean (S, K) masks of the items each spillover definition counts."""
    S, K = slates.n_slates, slates.size
    pos = np.broadcast_to(np.arange(K), (S, K))
    focal = pos == slates.focal[:, None]
    same = slates.cluster == slates.focal_cluster()[:, None]
    displaced = pos < slates.focal[:, None]
    return {"all": ~focal, "same_cluster": same & ~focal, "displaced": displaced,
            "same_cluster_displaced": displaced & same, "near_displaced": displaced & (pos <= 1)}


def promoted_count(share: np.ndarray | float, n: np.ndarray | int) -> np.ndarray:
    """Sessions promoted of a user with ``n`` sessions at saturation ``share``: ``share * n``
    rounded to the nearest whole session (ties to even, so saturations ``psi`` and
    ``1 - psi`` promote complementary counts).  With 10 sessions, 0.25 promotes 2."""
    return np.rint(np.asarray(share, dtype=np.float64) * n).astype(np.int64)


def blocked_assignment(user: np.ndarray, share: np.ndarray | float,
                       rng: np.random.Generator) -> np.ndarray:
    """Complete randomisation inside each user: :func:`promoted_count` of its sessions promoted.

    ``share`` may be one number or one per session (constant within a user).
    """
    S = len(user)
    share = np.broadcast_to(np.asarray(share, dtype=np.float64), (S,))
    order = np.lexsort((rng.random(S), user))  # sessions of a user, in random order
    _, codes, n = np.unique(user, return_inverse=True, return_counts=True)
    first = np.r_[0, np.cumsum(n)[:-1]]
    rank = np.empty(S, dtype=np.int64)
    rank[order] = np.arange(S) - first[codes[order]]
    return (rank < promoted_count(share, n[codes])).astype(np.int8)


@dataclass
class Experiment:
    """One run of a design: the assignment, the observed clicks and every potential outcome.

    Attributes
    ----------
    design : {"slate", "two_stage"}
    slates : Slates
    promoted : ndarray (S,) of 0/1
    saturation : ndarray (S,)
        The saturation of the slate's user (0.5 in design 1).
    y : ndarray (S, K)
        Observed clicks.
    y1, y0 : ndarray (S, K)
        Clicks with and without promoting this slate, at its user's saturation.
    p1, p0 : ndarray (S, K)
        Expected clicks with and without promoting this slate (the oracle).
    p_sat : dict
        Design 2 only: ``{(z, psi): expected clicks (S, K)}`` for both saturations, the
        expected potential outcomes of Hudgens and Halloran's estimands.
    """

    design: str
    slates: Slates
    promoted: np.ndarray
    saturation: np.ndarray
    y: np.ndarray
    y1: np.ndarray
    y0: np.ndarray
    p1: np.ndarray
    p0: np.ndarray
    p_sat: dict

    def slate_effects(self) -> np.ndarray:
        """Each slate's exact expected effect of promotion on each of its items (S, K)."""
        return self.p1 - self.p0

    def oracle_slate(self) -> dict[str, float]:
        """Exact design-1 estimands per promoted slate (expected clicks): direct, five
        spillovers, total."""
        d = self.slate_effects()
        S = self.slates.n_slates
        out = {"direct": float(d[np.arange(S), self.slates.focal].mean()),
               "total": float(d.sum(axis=1).mean())}
        for key, mask in spillover_masks(self.slates).items():
            out[key] = float((d * mask).sum(axis=1).mean())
        return out


def _probabilities(slates: Slates, model: ClickModel, draws: Draws | None, share: np.ndarray,
                   z: int) -> np.ndarray:
    """Click probabilities when every slate has promotion ``z`` and its user's saturation is
    ``share`` (the slate's own promotion is excluded from the share of its other sessions):
    in the drawn sessions, or expected over session lengths when ``draws`` is None."""
    _, codes = np.unique(slates.user, return_inverse=True)
    n = np.bincount(codes)[codes]
    other = (promoted_count(share, n) - z) / np.maximum(n - 1, 1)
    promoted = np.full(slates.n_slates, z)
    if draws is None:
        return expected_clicks(click_probability(slates, model, promoted, other),
                               model.session_sd)
    return click_probability(slates, model, promoted, other, draws.session)


def run_design(slates: Slates, model: ClickModel, *, design: str = "slate",
               saturations: tuple[float, float] = (0.25, 0.75), seed: int = 0) -> Experiment:
    """Assign promotions under a design and compute the observed and potential clicks.

    Parameters
    ----------
    slates : Slates
    model : ClickModel
    design : {"slate", "two_stage"}
    saturations : (low, high)
        Design 2's saturations.
    seed : int
        Seeds the assignment and the click uniforms.

    Raises
    ------
    EstimationError
        If a user has a single session (no within-user randomisation is possible) or,
        in design 2, fewer than two users per saturation.
    """
    if design not in ("slate", "two_stage"):
        raise EstimationError(f"design={design!r}; use 'slate' or 'two_stage'.")
    _, counts = np.unique(slates.user, return_counts=True)
    if counts.min() < 2:
        raise EstimationError("A user has a single session: promotions are randomised within "
                              "users, so every user needs at least two. Use sessions >= 2.")
    rng = np.random.default_rng(seed)
    draws = draw_uniforms(slates, seed + 1)
    if design == "slate":
        share = np.full(slates.n_slates, 0.5)
        p_sat: dict = {}
    else:
        users = np.unique(slates.user)
        if len(users) < 4:
            raise EstimationError(f"Only {len(users)} users (groups): a two-stage design needs "
                                  "at least two groups per saturation.")
        high = rng.permutation(len(users)) < len(users) // 2
        share = np.where(high, saturations[1], saturations[0])[
            np.searchsorted(users, slates.user)]
        p_sat = {(z, psi): _probabilities(slates, model, None,
                                          np.full(slates.n_slates, psi), z)
                 for z in (0, 1) for psi in saturations}
    promoted = blocked_assignment(slates.user, share, rng)
    y1 = (draws.uniforms < _probabilities(slates, model, draws, share, 1)).astype(np.int8)
    y0 = (draws.uniforms < _probabilities(slates, model, draws, share, 0)).astype(np.int8)
    p1 = _probabilities(slates, model, None, share, 1)
    p0 = _probabilities(slates, model, None, share, 0)
    y = np.where(promoted[:, None] == 1, y1, y0)
    return Experiment(design=design, slates=slates, promoted=promoted, saturation=share, y=y,
                      y1=y1, y0=y0, p1=p1, p0=p0, p_sat=p_sat)
