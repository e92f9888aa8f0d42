"""The user-day panel: one row per user and day, built from an interaction log.

Treatment, outcome and covariates are defined here once, for the real KuaiRec log
and for the simulator alike.  For user :math:`i` and day :math:`t`:

Rows (active days only)
    The panel keeps the days on which the user played at least one video: the
    question is what a high-watch day does compared with an ordinary active day, so a
    day without plays is neither treated nor a control (it is dropped and counted).
Treatment (day :math:`t` only)
    :math:`D_{it} = 1` when the day is a *high-watch day*: at least a share
    ``high_share`` of the day's plays were watched far through
    (``watch_ratio >= far_ratio``); :math:`D_{it} = 0` on other active days.
Outcome (days :math:`t+1, \\dots, t+H`)
    :math:`Y_{it}` = the number of plays (interactions) over the next ``horizon`` days.
Covariates (days before :math:`t` only)
    plays on day :math:`t-1` and their mean over :math:`t-3..t-1`, the mean watch
    ratio and the high-watch share of those days, the plays before :math:`t` in total,
    the days since the user's first play, the user's longer history (the share of
    high-watch days among all their active days before :math:`t`, and their mean plays
    per active day before :math:`t`), and the calendar of day :math:`t` (its weekday is
    known in advance, so it is not information from day :math:`t`).
Negative-control outcome (days :math:`t-7, \\dots, t-4`)
    ``nc_outcome``, the plays of the four days before the covariate window (days
    before the log count as 0).  Day :math:`t`'s exposure cannot change them, so an
    adjusted estimate of its "effect" on them must be zero; a non-zero estimate flags
    confounding that the covariates miss.

A day whose outcome window runs past the data, without three days of history, or
without plays, is dropped and counted.  Nothing here reads day :math:`t` or later for a
covariate, or day :math:`t` or earlier for the outcome; the tests perturb the log
to prove it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.errors import DataError

HISTORY = 3
"""Days of history every covariate window needs."""
NC_LAG = 7
"""The negative-control outcome covers days ``t - NC_LAG .. t - HISTORY - 1``."""
COVARIATES = ["lag1_plays", "log_lag1_plays", "prior3_plays", "log_prior3_plays",
              "lag1_watch_ratio", "prior3_watch_ratio", "prior3_high_share", "log_prior_plays",
              "days_active", "user_high_share", "user_plays_per_day", "weekend", "weekday"]
"""Covariate columns of the panel, in order."""
DESCRIPTIONS = {
    "lag1_plays": "plays on day t−1",
    "log_lag1_plays": "log(1 + plays on day t−1)",
    "prior3_plays": "mean plays per day over t−3..t−1",
    "log_prior3_plays": "log(1 + mean plays per day over t−3..t−1)",
    "lag1_watch_ratio": "mean watch ratio on day t−1 (0 without plays)",
    "prior3_watch_ratio": "mean watch ratio over t−3..t−1",
    "prior3_high_share": "share of high-watch days among t−3..t−1",
    "log_prior_plays": "log(1 + plays before day t)",
    "days_active": "days since the user's first play",
    "user_high_share": "share of high-watch days among all the user's active days before t",
    "user_plays_per_day": "the user's mean plays per active day before t",
    "weekend": "day t is a Saturday or Sunday",
    "weekday": "day of the week of day t (0 = Monday)",
}


@dataclass(frozen=True)
class Panel:
    """A user-day panel.

    Attributes
    ----------
    frame : DataFrame
        ``user``, ``day`` (datetime64), ``t`` (day index), ``treated`` (0/1), ``outcome``,
        ``plays`` (on day t), the :data:`COVARIATES`, and ``high_share`` (day t's share
        of far-through plays, which defines the treatment).
    dropped_window : int
        User-days dropped because their outcome window runs past the data.
    dropped_history : int
        User-days dropped for lack of :data:`HISTORY` days of history.
    dropped_inactive : int
        User-days (with history and an outcome window) dropped because the user played
        nothing that day.
    horizon, far_ratio, high_share : as in :func:`build_panel`
    """

    frame: pd.DataFrame
    dropped_window: int
    dropped_history: int
    dropped_inactive: int
    horizon: int
    far_ratio: float
    high_share: float

    @property
    def X(self) -> pd.DataFrame:  # noqa: N802 - the usual name of a design matrix
        """The covariates."""
        return self.frame[COVARIATES]


def daily_arrays(log: pd.DataFrame, far_ratio: float) -> tuple[np.ndarray, ...]:
    """Users x days arrays of plays, summed watch ratio and far-through plays.

    Returns
    -------
    users, days : ndarrays
        The row and column labels.
    plays, ratio_sum, far : ndarrays of shape (n_users, n_days)
    """
    users, u = np.unique(log["user"].to_numpy(), return_inverse=True)
    day = log["day"].to_numpy(dtype="datetime64[D]")
    first, last = day.min(), day.max()
    days = np.arange(first, last + np.timedelta64(1, "D"))
    d = (day - first).astype(np.int64)
    shape = (len(users), len(days))
    flat = u * shape[1] + d
    ratio = log["watch_ratio"].to_numpy(dtype=np.float64)

    def grid(weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(flat, weights=weights, minlength=shape[0] * shape[1]).reshape(shape)

    return users, days, grid(None), grid(ratio), grid((ratio >= far_ratio).astype(float))


def build_panel(log: pd.DataFrame, *, horizon: int = 7, far_ratio: float = 1.0,
                high_share: float = 0.5) -> Panel:
    """Build the user-day panel from a log in the canonical KuaiRec schema.

    Parameters
    ----------
    log : DataFrame
        ``user``, ``day`` and ``watch_ratio`` at least (see :mod:`analysis.data.kuairec`).
    horizon : int
        Days in the outcome window (7).
    far_ratio : float
        A play is "watched far through" when its watch ratio is at least this (1.0: the
        whole video length).
    high_share : float
        A day is a high-watch day when at least this share of its plays were
        watched far through.

    Returns
    -------
    Panel

    Raises
    ------
    DataError
        If the log spans too few days for one full history and outcome window.
    """
    need = {"user", "day", "watch_ratio"}
    if not need <= set(log.columns):
        raise DataError(f"The log lacks column(s) {sorted(need - set(log.columns))}; load it "
                        "with analysis.data.kuairec.load_kuairec.")
    users, days, plays, ratio_sum, far = daily_arrays(log, far_ratio)
    n_users, n_days = plays.shape
    if n_days < HISTORY + 1 + horizon:
        raise DataError(f"The log spans {n_days} days; a user-day needs {HISTORY} days of "
                        f"history and {horizon} days of outcome, so at least "
                        f"{HISTORY + 1 + horizon} days are required.")
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(plays > 0, far / np.maximum(plays, 1), 0.0)
        mean_ratio = np.where(plays > 0, ratio_sum / np.maximum(plays, 1), 0.0)
    treated = ((plays > 0) & (share >= high_share)).astype(np.int64)
    cum = np.cumsum(plays, axis=1)
    first_play = np.argmax(plays > 0, axis=1)
    ts = np.arange(HISTORY, n_days - horizon)
    cols: dict[str, np.ndarray] = {}
    lag = lambda a, k: a[:, ts - k]  # noqa: E731 - day t-k for every t
    prior = lambda a: np.mean([lag(a, k) for k in range(1, HISTORY + 1)], axis=0)  # noqa: E731
    cols["lag1_plays"] = lag(plays, 1)
    cols["log_lag1_plays"] = np.log1p(cols["lag1_plays"])
    cols["prior3_plays"] = prior(plays)
    cols["log_prior3_plays"] = np.log1p(cols["prior3_plays"])
    cols["lag1_watch_ratio"] = lag(mean_ratio, 1)
    p3 = sum(lag(ratio_sum, k) for k in range(1, HISTORY + 1))
    n3 = sum(lag(plays, k) for k in range(1, HISTORY + 1))
    cols["prior3_watch_ratio"] = np.where(n3 > 0, p3 / np.maximum(n3, 1), 0.0)
    cols["prior3_high_share"] = prior(treated.astype(float))
    cols["log_prior_plays"] = np.log1p(cum[:, ts - 1])
    cols["days_active"] = np.maximum(ts[None, :] - first_play[:, None], 0).astype(float)
    active_days = np.cumsum(plays > 0, axis=1)[:, ts - 1]  # active days before t
    cols["user_high_share"] = np.cumsum(treated, axis=1)[:, ts - 1] / np.maximum(active_days, 1)
    cols["user_plays_per_day"] = cum[:, ts - 1] / np.maximum(active_days, 1)
    weekday = ((days[ts].astype("datetime64[D]").view("int64") - 4) % 7)  # 1970-01-01: Thu
    cols["weekday"] = np.broadcast_to(weekday, (n_users, len(ts))).astype(float)
    cols["weekend"] = (cols["weekday"] >= 5).astype(float)
    window = cum[:, ts + horizon] - cum[:, ts]  # plays on t+1..t+horizon
    padded = np.concatenate([np.zeros((n_users, NC_LAG), dtype=cum.dtype), cum], axis=1)
    # plays on t-7..t-4 = cum[t-4] - cum[t-8]; padded[:, j] = cum[:, j - NC_LAG]
    nc = padded[:, ts - HISTORY - 1 + NC_LAG] - padded[:, ts - NC_LAG - 1 + NC_LAG]
    frame = pd.DataFrame({
        "user": np.repeat(users, len(ts)),
        "day": np.tile(days[ts], n_users),
        "t": np.tile(ts, n_users),
        "treated": treated[:, ts].ravel(),
        "outcome": window.ravel().astype(np.float64),
        "nc_outcome": nc.ravel().astype(np.float64),
        "plays": plays[:, ts].ravel(),
        "high_share": share[:, ts].ravel(),
        **{c: np.asarray(cols[c], dtype=np.float64).ravel() for c in COVARIATES},
    })
    history = (first_play[:, None] <= ts[None, :] - 1).ravel()  # some history before day t
    played = (plays[:, ts] > 0).ravel()
    dropped_history = n_users * HISTORY + int((~history).sum())
    frame = frame[history & played].reset_index(drop=True)
    return Panel(frame=frame, dropped_window=n_users * horizon,
                 dropped_history=dropped_history,
                 dropped_inactive=int((history & ~played).sum()), horizon=horizon,
                 far_ratio=far_ratio, high_share=high_share)
