"""The click model: position bias, attractiveness, a limited attention budget, substitution.

Notes
-----
Movie :math:`j` of a slate, shown at position :math:`k_j` (0 is the top), is clicked with
probability

.. math::

    p_j = \\frac{\\theta_{k_j} a_j}{1 + \\lambda \\sum_{i \\ne j} w_{ij} \\theta_{k_i} a_i},
    \\quad \\theta_k = (k + 1)^{-\\eta},
    \\quad a_j = \\Lambda(\\alpha + \\beta s_j)(1 - \\kappa f),
    \\quad w_{ij} = 1 + \\omega\\, 1[c_i = c_j],

with :math:`s_j` the recommender's standardised score, :math:`c_j` the movie's substitute
cluster, :math:`\\lambda` the tightness of the attention budget (every other movie's pull
lowers the click probability), :math:`\\omega` the extra substitution within a cluster and
:math:`f` the share of the user's *other* sessions that were promoted (promotion fatigue
lowers every movie's appeal by :math:`\\kappa f`).  A session's length scales all of its
probabilities by :math:`r = \\exp(\\sigma_r \\varepsilon - \\sigma_r^2/2)`,
:math:`\\varepsilon \\sim N(0, 1)` (mean 1; capped at 0.99): a browsing session clicks more
of everything, a hurried one less, so the clicks of one slate are correlated.

Promoting a slate moves its focal movie to the top (the movies above it move down one
position) and raises its appeal to :math:`\\min(0.95, a_{\\text{focal}}(1 + \\gamma(1 - \\rho f)))`:
promotion intensity :math:`\\gamma`, dulled by fatigue :math:`\\rho f`.  So a promotion helps
the focal movie and takes attention from the others, most from its own cluster and
from the movies it pushed down.  (Movies below the focal one can gain a little: the
strong movies pushed down one position draw less attention than before.)

A click is :math:`Y_j = 1[U_j < p_j]` with one uniform :math:`U_j` per slate and movie
and one session effect per slate, shared by every counterfactual (common random
numbers), so every slate's clicks with and
without promotion, under any share of promoted sessions, are known exactly: the oracle
value of every estimand.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from analysis.interference.slates import Slates


@dataclass(frozen=True)
class ClickModel:
    """Parameters of the click model (see the module notes)."""

    alpha: float = -1.0
    beta: float = 2.0
    eta: float = 1.2
    attention: float = 0.35
    substitution: float = 1.5
    intensity: float = 0.5
    fatigue: float = 0.15
    fatigue_promotion: float = 0.5
    session_sd: float = 1.0

    def with_(self, **changes: float) -> ClickModel:
        """A copy with some parameters changed."""
        return replace(self, **changes)


def promoted_positions(slates: Slates) -> np.ndarray:
    """Each movie's position in the promoted slate (focal at the top, movies above it down one)."""
    K = slates.size
    pos = np.broadcast_to(np.arange(K), (slates.n_slates, K)).copy()
    f = slates.focal[:, None]
    pos = np.where(pos < f, pos + 1, pos)
    pos[np.arange(slates.n_slates), slates.focal] = 0
    return pos


def click_probability(slates: Slates, model: ClickModel, promoted: np.ndarray,
                      other_share: np.ndarray, session: np.ndarray | None = None) -> np.ndarray:
    """Click probabilities of every movie (S, K), columns in the original slate order.

    Parameters
    ----------
    slates : Slates
    model : ClickModel
    promoted : array (S,) of 0/1
        Whether each slate is promoted.
    other_share : array (S,)
        Share of the user's other sessions that are promoted (fatigue).
    session : array (S,), optional
        Standard-normal session effects: the session's length multiplies every click
        probability by :math:`\\exp(\\sigma_r\\varepsilon - \\sigma_r^2/2)`.
    """
    S, K = slates.n_slates, slates.size
    z = np.asarray(promoted, dtype=bool)[:, None]
    f = np.asarray(other_share, dtype=np.float64)[:, None]
    pos = np.where(z, promoted_positions(slates), np.arange(K))
    theta = (pos + 1.0) ** -model.eta
    a = 1 / (1 + np.exp(-(model.alpha + model.beta * slates.score))) * (1 - model.fatigue * f)
    focal = np.zeros((S, K), dtype=bool)
    focal[np.arange(S), slates.focal] = True
    boost = np.minimum(0.95, a * (1 + model.intensity * (1 - model.fatigue_promotion * f)))
    a = np.where(focal & z, boost, a)
    pull = theta * a                                                      # (S, K)
    same = slates.cluster[:, :, None] == slates.cluster[:, None, :]       # (S, K, K)
    w = 1 + model.substitution * same
    others = np.einsum("sij,sj->si", w, pull) - w[:, np.arange(K), np.arange(K)] * pull
    p = pull / (1 + model.attention * others)
    if session is None:
        return p
    sd = model.session_sd
    length = np.exp(sd * np.asarray(session)[:, None] - sd**2 / 2)  # mean 1
    return np.minimum(p * length, 0.99)


def expected_clicks(p: np.ndarray, sd: float, cap: float = 0.99) -> np.ndarray:
    """:math:`E[\\min(p\\,r, c)]` over a session length :math:`r` with
    :math:`\\log r \\sim N(-\\sigma^2/2, \\sigma^2)`: the expected click of a movie whose
    click probability in an average session is ``p``.

    Notes
    -----
    With :math:`k = c/p`,
    :math:`E[\\min(p r, c)] = p\\,\\Phi\\big(\\frac{\\log k - \\sigma^2/2}{\\sigma}\\big)
    + c\\,\\big(1 - \\Phi\\big(\\frac{\\log k + \\sigma^2/2}{\\sigma}\\big)\\big)`.
    """
    from scipy.stats import norm

    if sd == 0:
        return np.minimum(p, cap)
    logk = np.log(cap / np.maximum(p, 1e-300))
    return p * norm.cdf((logk - sd**2 / 2) / sd) + cap * norm.sf((logk + sd**2 / 2) / sd)


@dataclass(frozen=True)
class Draws:
    """The common random numbers of every counterfactual: one uniform per slate and movie,
    and one standard-normal session effect per slate."""

    uniforms: np.ndarray
    session: np.ndarray


def draw_uniforms(slates: Slates, seed: int) -> Draws:
    """The common random numbers of every counterfactual of one experiment."""
    rng = np.random.default_rng(seed)
    return Draws(uniforms=rng.random((slates.n_slates, slates.size)),
                 session=rng.standard_normal(slates.n_slates))


def other_share(promoted: np.ndarray, user: np.ndarray) -> np.ndarray:
    """Share of each session's user's *other* sessions that are promoted."""
    _, codes = np.unique(user, return_inverse=True)
    n = np.bincount(codes)
    total = np.bincount(codes, weights=np.asarray(promoted, dtype=np.float64))
    return (total[codes] - promoted) / np.maximum(n[codes] - 1, 1)
