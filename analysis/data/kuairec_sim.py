"""A simulator of the raw KuaiRec interaction log, with a planted effect of a high-watch day.

It writes plays in KuaiRec's own format (user, video, durations, day, watch ratio),
so the panel-building code of :mod:`analysis.features.panel` runs on simulated and
real logs alike.  What makes the question hard is planted on purpose.

Notes
-----
User :math:`i` has a latent engagement :math:`e_{it}` that evolves day by day,

.. math::

    e_{i,t+1} = \\mu_i + \\rho\\,(e_{it} - \\mu_i) + \\beta_{it} D_{it}
                + \\sigma\\varepsilon_{i,t+1},

and plays :math:`n_{it} = 1 + \\text{Poisson}(\\exp(a + e_{it}))` videos on day :math:`t`.
The platform decides each day whether to serve *high-watch* content from what it
has seen (the user's plays yesterday, their share of high-watch days over the last
three days, and the weekend):

.. math::

    P(D_{it} = 1 \\mid \\text{history}) = \\Lambda\\big(\\alpha_0 + \\alpha_1 z_{it} +
    \\alpha_2 (h_{it} - \\tfrac12) + \\alpha_3 w_t\\big),

with :math:`z_{it}` the standardised log plays of day :math:`t-1` and :math:`h_{it}`
the high-watch share of :math:`t-3..t-1`.  On a high-watch day at least half of the
plays are watched far through (watch ratio of 1 or more), on other days fewer than
half, so the panel's treatment, computed from the log, is exactly :math:`D_{it}`.

Engagement drives yesterday's plays, which drive today's exposure, and it drives
future plays: that is time-varying confounding, and the naive comparison of
high-watch and other days is biased upward.  Exposure depends on the past only
through what the platform observed, so adjusting for the panel's covariates
identifies the effect.  The effect of a high-watch day on engagement,
:math:`\\beta_{it} = \\beta_0 + \\beta_1 s_{it}` with :math:`s_{it}` the standardised log
plays of the three prior days, is larger for users who were less active lately.

The truth is an intervention on one day's exposure with every later day following
its natural course: for every user-day, the days :math:`t+1..t+H` are simulated
twice from the observed history, with :math:`D_{it}` set to 1 and to 0 and the same
random numbers for everything else (common random numbers), and the individual
effect is the difference in plays over the window.  The branch with the observed
:math:`D_{it}` reproduces the observed log exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.data.common import DataRef, params_fingerprint
from analysis.data.kuairec import KuaiRecLog

START = np.datetime64("2020-07-05")
"""KuaiRec's small matrix starts on 5 July 2020; the simulated log starts there too."""
FAR = 1.0
"""Watch ratio from which a play counts as watched far through (the panel's default)."""


@dataclass(frozen=True)
class PanelParams:
    """Parameters of the engagement model (see the module notes)."""

    a: float = np.log(8.0)
    rho: float = 0.7
    sigma: float = 0.25
    mu_sd: float = 0.5
    beta0: float = 0.08
    beta1: float = -0.06
    alpha0: float = -0.2
    alpha1: float = 0.5
    alpha2: float = 0.8
    alpha3: float = 0.4


def kuairec_sim_params(*, n_users: int, n_days: int, horizon: int, seed: int) -> dict:
    """The settings that define a simulated log (its fingerprint)."""
    return {"n_users": n_users, "n_days": n_days, "horizon": horizon, "seed": seed,
            "model": PanelParams().__dict__}


def simulated_kuairec_ref(**params) -> DataRef:
    """A :class:`DataRef` for a simulated log (fingerprint of its settings)."""
    return DataRef(name="synthetic-kuairec", source="synthetic",
                   fingerprint=params_fingerprint("kuairec-sim-v1",
                                                  kuairec_sim_params(**params)))


@dataclass
class _Draws:
    """Every random number of a simulation, drawn once (common to both branches)."""

    eps: np.ndarray      # (N, T) engagement shocks
    u_plays: np.ndarray  # (N, T) uniforms of the play counts
    u_treat: np.ndarray  # (N, T) uniforms of the platform's decision


class _Model:
    """The day-by-day dynamics, vectorised over users."""

    def __init__(self, p: PanelParams, mu: np.ndarray, weekend: np.ndarray,
                 draws: _Draws) -> None:
        self.p, self.mu, self.weekend, self.draws = p, mu, weekend, draws

    def plays(self, e: np.ndarray, t: int) -> np.ndarray:
        return 1 + poisson_quantile(self.draws.u_plays[:, t], np.exp(self.p.a + e))

    def propensity(self, lag_plays: np.ndarray, prior_high: np.ndarray, t: int) -> np.ndarray:
        z = (np.log1p(lag_plays) - (self.p.a + 0.1)) / 0.6
        lin = (self.p.alpha0 + self.p.alpha1 * z + self.p.alpha2 * (prior_high - 0.5)
               + self.p.alpha3 * self.weekend[t])
        return 1 / (1 + np.exp(-lin))

    def beta(self, prior_plays: np.ndarray) -> np.ndarray:
        s = (np.log1p(prior_plays) - (self.p.a + 0.1)) / 0.5
        return self.p.beta0 + self.p.beta1 * np.clip(s, -2.5, 2.5)

    def step(self, e: np.ndarray, d: np.ndarray, prior_plays: np.ndarray,
             t: int) -> np.ndarray:
        """Engagement on day t+1 from day t."""
        p = self.p
        return (self.mu + p.rho * (e - self.mu) + self.beta(prior_plays) * d
                + p.sigma * self.draws.eps[:, t + 1])


def simulate_kuairec(*, n_users: int = 1400, n_days: int = 60, horizon: int = 7,
                     seed: int = 0, with_effects: bool = True) -> KuaiRecLog:
    """Simulate a KuaiRec-format log with a planted effect of a high-watch day.

    Parameters
    ----------
    n_users, n_days : int
        Users and days of the log.
    horizon : int
        The outcome window whose effect the truth measures (7 days).
    seed : int
    with_effects : bool
        Compute every user-day's individual effect (two extra simulations of each
        window); a Monte Carlo study that uses the design's known ATE can skip it.

    Returns
    -------
    KuaiRecLog
        ``truth`` holds ``effects``, a DataFrame with one row per user-day
        (``user``, ``t``, ``effect`` = :math:`Y(1) - Y(0)` over the window, ``y0``,
        ``y1``), for every day with a full window after it, and ``exposure``, the
        platform's decision :math:`D_{it}` for every user-day.
    """
    p = PanelParams()
    rng = np.random.default_rng(seed)
    N, T = n_users, n_days
    mu = p.mu_sd * rng.standard_normal(N)
    draws = _Draws(eps=rng.standard_normal((N, T)), u_plays=rng.random((N, T)),
                   u_treat=rng.random((N, T)))
    days = START + np.arange(T)
    weekend = (((days.view("int64") - 4) % 7) >= 5).astype(float)
    model = _Model(p, mu, weekend, draws)
    e = np.empty((N, T))
    n = np.zeros((N, T), dtype=np.int64)
    d = np.zeros((N, T), dtype=np.int64)
    e[:, 0] = mu + p.sigma / np.sqrt(1 - p.rho**2) * draws.eps[:, 0]
    for t in range(T):
        n[:, t] = model.plays(e[:, t], t)
        lag, high, prior = _history(n, d, t)
        d[:, t] = (draws.u_treat[:, t] < model.propensity(lag, high, t)).astype(np.int64)
        if t + 1 < T:
            e[:, t + 1] = model.step(e[:, t], d[:, t], prior, t)
    effects = _effects(model, e, n, d, horizon) if with_effects else None
    log = _write_log(n, d, days, rng)
    exposure = pd.DataFrame({"user": np.repeat(np.arange(N), T), "t": np.tile(np.arange(T), N),
                             "treated": d.ravel()})
    truth = {"exposure": exposure, "params": p.__dict__}
    if effects is not None:
        truth["effects"] = effects
    return KuaiRecLog(log=log, name="synthetic-kuairec", source="synthetic",
                      fingerprint=simulated_kuairec_ref(n_users=N, n_days=T, horizon=horizon,
                                                        seed=seed).fingerprint, truth=truth)


def poisson_quantile(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """The Poisson(``lam``) quantile of ``u``: the smallest k with :math:`F(k) \\ge u`.

    Inverting the CDF of given uniforms is what makes common random numbers work: the
    same uniform gives the count in both branches, whatever their rates.
    """
    k = np.zeros(u.shape, dtype=np.int64)
    p = np.exp(-lam)
    cdf = p.copy()
    j = 0
    while True:
        more = u > cdf
        if not more.any():
            return k
        j += 1
        k += more
        p = p * lam / j
        cdf = cdf + p


def _history(n: np.ndarray, d: np.ndarray, t: int) -> tuple[np.ndarray, ...]:
    """Plays on day t-1, high-watch share and mean plays of t-3..t-1 (what is known on t);
    on the first day, typical values."""
    if t == 0:
        typical = np.full(n.shape[0], 8.0)
        return typical, np.full(n.shape[0], 0.5), typical
    lo = max(0, t - 3)
    return n[:, t - 1].astype(float), d[:, lo:t].mean(axis=1), n[:, lo:t].mean(axis=1)


def _effects(model: _Model, e: np.ndarray, n: np.ndarray, d: np.ndarray,
             horizon: int) -> pd.DataFrame:
    """Y(1) - Y(0) over days t+1..t+horizon for every day t, by common random numbers."""
    N, T = n.shape
    rows = []
    for t in range(T - horizon):
        totals = []
        for arm in (0, 1):
            nn, dd = n.copy(), d.copy()
            dd[:, t] = arm
            _, _, prior = _history(nn, dd, t)
            et = model.step(e[:, t], dd[:, t], prior, t)
            total = np.zeros(N)
            for s in range(t + 1, t + horizon + 1):
                nn[:, s] = model.plays(et, s)
                total += nn[:, s]
                lag, high, prior = _history(nn, dd, s)
                dd[:, s] = (model.draws.u_treat[:, s] < model.propensity(lag, high, s))
                if s + 1 < T:
                    et = model.step(et, dd[:, s], prior, s)
            totals.append(total)
        rows.append(pd.DataFrame({"user": np.arange(N), "t": t, "effect": totals[1] - totals[0],
                                  "y0": totals[0], "y1": totals[1]}))
    return pd.concat(rows, ignore_index=True)


def _write_log(n: np.ndarray, d: np.ndarray, days: np.ndarray,
               rng: np.random.Generator) -> pd.DataFrame:
    """One row per play in the canonical schema, with watch ratios consistent with D."""
    N, T = n.shape
    counts = n.ravel()
    user = np.repeat(np.repeat(np.arange(N), T), counts)
    day_idx = np.repeat(np.tile(np.arange(T), N), counts)
    total = len(user)
    # Far-through plays per day: Binomial(n, 0.8) on high-watch days, Binomial(n, 0.25)
    # otherwise, then forced to the right side of one half so the log implies D exactly.
    high = d.ravel() == 1
    k = np.where(high, rng.binomial(counts, 0.8), rng.binomial(counts, 0.25))
    half = (counts + 1) // 2  # ceil(n/2): a share of at least one half
    k = np.where(high, np.maximum(k, half), np.minimum(k, half - 1))
    start = np.repeat(np.cumsum(counts) - counts, counts)
    rank = np.arange(total) - start  # position of the play within its day
    far = rank < np.repeat(k, counts)
    ratio = np.where(far, rng.uniform(1.0, 2.5, total), rng.beta(2.0, 2.5, total) * 0.98)
    duration = np.round(np.exp(rng.normal(np.log(9000), 0.5, total)))
    video = rng.integers(0, 3327, total)
    return pd.DataFrame({"user": user.astype(np.int64), "video": video.astype(np.int64),
                         "play_duration": np.round(ratio * duration),
                         "video_duration": duration, "watch_ratio": ratio,
                         "day": days[day_idx].astype("datetime64[ns]")})
