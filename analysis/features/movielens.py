"""Leakage-free features of a MovieLens rating, in the source report's four groups.

Every feature of a rating is computed from information available *before* that
rating: the user's and the movie's history at strictly earlier timestamps
(ratings given in the same second count as simultaneous, not prior), the
movie's release year, and the calendar time of the rating.  Nothing uses the
rating being explained, so no outcome leaks into the controls.  Averages over
short histories are shrunk towards a prior with :data:`SHRINK` pseudo-ratings,
so every feature is defined (no missing values) from the first rating on.

:func:`report_style_features` rebuilds the source report's kind of control set
for comparison: full-sample statistics that include the rating being explained
and movie statistics that are consequences of the genre.  It is flagged leaky
and never used as the adjustment set.

All functions are pure (inputs are not modified) and vectorised: histories are
cumulative sums over rows sorted by user (or movie) and time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from analysis.features.genres import has_all_genres

Group = Literal["user", "movie", "time", "interaction"]
SHRINK = 5.0
"""Pseudo-ratings of prior weight in every shrunken history average."""
TRACKED_GENRES = ("Drama", "Romance", "Comedy", "Action", "Thriller", "Sci-Fi", "Horror",
                  "Adventure", "Crime", "Children")
"""Genres whose shares make up a user's genre profile (entropy uses all of them + other)."""
YEAR_S = 365.25 * 86400.0


@dataclass(frozen=True)
class Feature:
    """One documented feature.

    Attributes
    ----------
    name : str
    group : {"user", "movie", "time", "interaction"}
    description : str
    justified : bool
        In the justified adjustment set (pre-treatment, not downstream of the genre).
    """

    name: str
    group: Group
    description: str
    justified: bool = True


def _f(name: str, group: Group, description: str, justified: bool = True) -> Feature:
    return Feature(name, group, description, justified)


FEATURES: tuple[Feature, ...] = (
    _f("user_n_prior", "user", "log(1 + number of the user's earlier ratings)"),
    _f("user_prior_mean", "user", "user's mean earlier rating (shrunken to the global mean)"),
    _f("user_prior_sd", "user", "SD of the user's earlier ratings (shrunken to 1 star)"),
    _f("user_experience_years", "user", "years since the user's first rating"),
    _f("user_log_days_since_last", "user", "log(1 + days since the user's previous rating)"),
    _f("user_n_last_day", "user", "log(1 + user's ratings in the previous 24 hours)"),
    _f("user_share_high", "user", "share of the user's earlier ratings at 4 stars or more"),
    _f("user_share_low", "user", "share of the user's earlier ratings at 2 stars or less"),
    _f("user_share_half", "user", "share of the user's earlier ratings using half stars"),
    _f("user_mean_movie_year", "user", "mean release year of the movies the user rated before"),
    _f("movie_year", "movie", "release year from the title (median when missing)"),
    _f("movie_age", "movie", "years between release and this rating"),
    _f("movie_year_missing", "movie", "1 if the title carries no release year"),
    _f("movie_n_prior", "movie", "log(1 + the movie's earlier ratings): popularity so far",
       justified=False),
    _f("movie_n_last_year", "movie", "log(1 + the movie's ratings in the previous 365 days)",
       justified=False),
    _f("movie_prior_mean", "movie", "movie's mean earlier rating (shrunken)", justified=False),
    _f("movie_prior_sd", "movie", "SD of the movie's earlier ratings (shrunken)",
       justified=False),
    _f("movie_n_genres", "movie", "number of genres the movie lists (genre diversity)",
       justified=False),
    _f("time_year", "time", "calendar time of the rating in fractional years"),
    _f("time_month", "time", "month of the rating (1-12)"),
    _f("time_day_of_week", "time", "day of week of the rating (0 = Monday)"),
    _f("time_hour", "time", "hour of day of the rating (UTC)"),
    _f("time_weekend", "time", "1 if the rating was given on a Saturday or Sunday"),
    *(_f(f"share_{g.lower().replace('-', '')}", "interaction",
         f"share of the user's earlier ratings that were {g} movies (shrunken)")
      for g in ("Drama", "Romance", "Comedy", "Action", "Thriller")),
    _f("share_drama_romance", "interaction",
       "share of the user's earlier ratings that were drama-romance movies (shrunken)"),
    _f("dev_drama", "interaction", "user's mean earlier rating of dramas minus their mean"),
    _f("dev_romance", "interaction", "user's mean earlier rating of romances minus their mean"),
    _f("dev_comedy", "interaction", "user's mean earlier rating of comedies minus their mean"),
    _f("dev_drama_romance", "interaction",
       "user's mean earlier rating of drama-romances minus their mean"),
    _f("genre_entropy", "interaction", "entropy of the user's earlier genre mix "
       "(low = specialist, high = generalist)"),
    _f("year_gap", "interaction", "movie's release year minus the mean release year the "
       "user rated before"),
)
"""Every feature :func:`build_features` returns, in column order."""

FEATURE_NAMES = [f.name for f in FEATURES]
JUSTIFIED = [f.name for f in FEATURES if f.justified]
"""The justified adjustment set: pre-treatment features not caused by the genre."""


def treatment(ratings: pd.DataFrame, items: pd.DataFrame) -> np.ndarray:
    """1 if the rated movie lists both Drama and Romance, else 0 (int8, aligned with ratings)."""
    dr = has_all_genres(items, ("Drama", "Romance")).to_numpy()
    return _item_lookup(ratings, items, dr.astype(np.int8), fill=0)


def build_features(ratings: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """All :data:`FEATURES` of every rating, from prior history only.

    Parameters
    ----------
    ratings, items : DataFrame
        Canonical MovieLens frames (see :mod:`analysis.data.movielens`); not modified.

    Returns
    -------
    DataFrame
        ``float32`` columns :data:`FEATURE_NAMES`, aligned with ``ratings`` (same
        index), with no missing values.

    Notes
    -----
    For rating :math:`(u, i, t)` let :math:`H_u(t)` be the user's ratings at times
    :math:`< t`.  A shrunken mean is
    :math:`(\\sum_{H_u(t)} y + k\\,\\mu_t)/(|H_u(t)| + k)` with :math:`k` = :data:`SHRINK`
    and :math:`\\mu_t` the mean of all ratings before :math:`t` (3.5 at the start).
    Genre shares shrink towards the genre's overall share of ratings, genre
    deviations towards zero.
    """
    y = ratings["rating"].to_numpy(dtype=np.float64)
    ts = ratings["timestamp"].to_numpy().astype("datetime64[s]").astype(np.int64).astype(float)
    gen = _genre_matrix(ratings, items)
    year = _item_lookup(ratings, items, items["year"].astype("Float64")
                        .to_numpy(dtype=float, na_value=np.nan), fill=np.nan)
    missing = np.isnan(year)
    year = np.where(missing, np.nanmedian(year) if (~missing).any() else 2000.0, year)
    mat = None
    column = {k: j for j, k in enumerate(FEATURE_NAMES)}
    groups = (lambda: _user_features(ratings["user"].to_numpy(), ts, y, year, gen),
              lambda: _movie_features(ratings["item"].to_numpy(), ts, y, year, missing, items,
                                      ratings),
              lambda: _time_features(ratings["timestamp"]))
    for group in groups:  # one group at a time, copied into the matrix: low peak memory
        values = group()
        if mat is None:  # allocated after the heaviest group's temporaries are freed
            mat = np.empty((len(ratings), len(FEATURE_NAMES)), dtype=np.float32)
        for k in list(values):
            mat[:, column[k]] = values.pop(k)
    return pd.DataFrame(mat, columns=FEATURE_NAMES, index=ratings.index, copy=False)


def report_style_features(ratings: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """The source report's kind of controls (LEAKY; for comparison only).

    Full-sample user and movie statistics that *include the rating being explained*,
    movie rating statistics and popularity (consequences of the genre), genre
    diversity, user-genre shares and calendar time.

    Returns
    -------
    DataFrame
        ``float32`` columns prefixed ``rs_``, aligned with ``ratings``.
    """
    y = ratings["rating"]
    gen = _genre_matrix(ratings, items)
    u, i = ratings["user"], ratings["item"]
    ts = ratings["timestamp"]
    out = {
        "rs_user_count": np.log1p(u.map(u.value_counts())),
        "rs_user_mean": y.groupby(u).transform("mean"),
        "rs_user_sd": y.groupby(u).transform("std").fillna(0.0),
        "rs_user_years": (ts.groupby(u).transform("max") - ts.groupby(u).transform("min"))
        .dt.total_seconds() / YEAR_S,
        "rs_movie_count": np.log1p(i.map(i.value_counts())),
        "rs_movie_mean": y.groupby(i).transform("mean"),
        "rs_movie_sd": y.groupby(i).transform("std").fillna(0.0),
        "rs_movie_n_genres": _item_lookup(ratings, items, _n_genres(items), fill=0),
    }
    for j, g in enumerate(TRACKED_GENRES[:5]):
        col = pd.Series(gen[:, j], index=ratings.index)
        out[f"rs_share_{g.lower()}"] = col.groupby(u).transform("mean")
        num = (col * y).groupby(u).transform("sum")
        out[f"rs_mean_{g.lower()}"] = (num / col.groupby(u).transform("sum")
                                       .replace(0, np.nan)).fillna(out["rs_user_mean"])
    out.update({f"rs_{k}": v for k, v in _time_features(ts).items()})
    return pd.DataFrame({k: np.asarray(v, dtype=np.float32) for k, v in out.items()},
                        index=ratings.index)


# --------------------------------------------------------------------------- internals


def _item_lookup(ratings: pd.DataFrame, items: pd.DataFrame, values: np.ndarray,
                 fill: float) -> np.ndarray:
    """Item-level ``values`` (aligned with ``items``) for every rating."""
    pos = pd.Index(items["item"].to_numpy()).get_indexer(ratings["item"].to_numpy())
    vals = np.asarray(values)
    out = vals[np.maximum(pos, 0)].astype(np.result_type(vals.dtype, type(fill)))
    out[pos < 0] = fill
    return out


def _n_genres(items: pd.DataFrame) -> np.ndarray:
    g = items["genres"].fillna("")
    return np.where(g.str.len() > 0, g.str.count(r"\|") + 1, 0).astype(float)


def _genre_matrix(ratings: pd.DataFrame, items: pd.DataFrame) -> np.ndarray:
    """Per rating: 0/1 columns for :data:`TRACKED_GENRES`, then drama-romance, then other."""
    cols = [has_all_genres(items, (g,)).to_numpy() for g in TRACKED_GENRES]
    cols.append(has_all_genres(items, ("Drama", "Romance")).to_numpy())
    m = np.column_stack(cols).astype(np.int8)
    other = (m[:, : len(TRACKED_GENRES)].sum(axis=1) == 0).astype(np.int8)
    m = np.column_stack([m, other])
    pos = pd.Index(items["item"].to_numpy()).get_indexer(ratings["item"].to_numpy())
    out = m[np.maximum(pos, 0)]
    out[pos < 0] = 0
    return out


class _History:
    """Sums over each entity's strictly earlier rows (rows sorted by entity, then time)."""

    def __init__(self, entity: np.ndarray, ts: np.ndarray) -> None:
        self.order = np.lexsort((ts, entity))
        e, t = entity[self.order], ts[self.order]
        n = len(e)
        idx = np.arange(n)
        new_entity = np.r_[True, e[1:] != e[:-1]] if n else np.zeros(0, bool)
        new_tie = new_entity | np.r_[True, t[1:] != t[:-1]] if n else new_entity
        self.first = np.maximum.accumulate(np.where(new_entity, idx, 0))
        self.tie = np.maximum.accumulate(np.where(new_tie, idx, 0))
        self.e, self.t = e, t
        self.count = (self.tie - self.first).astype(float)

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Per sorted row: sum of ``values`` (1-D, original order) over earlier timestamps.

        Uses the exclusive cumulative sum ``C[i] = cumsum[i] - v[i]``, so the prior
        sum is ``C[tie start] - C[entity start]``; memory stays a few 1-D arrays.
        """
        v = np.asarray(values, dtype=np.float64)[self.order]
        c = np.cumsum(v)
        c -= v
        return c[self.tie] - c[self.first]

    def within(self, seconds: float) -> np.ndarray:
        """Per sorted row: number of the entity's rows in ``[t - seconds, t)``."""
        key = self.e.astype(np.float64) * 1e10 + (self.t - self.t.min())
        lo = np.searchsorted(key, key - seconds, side="left")
        return (self.tie - np.maximum(lo, self.first)).astype(float)

    def previous_time(self) -> np.ndarray:
        """Per sorted row: the entity's previous timestamp (own time if none)."""
        prev = self.t[np.maximum(self.tie - 1, 0)]
        return np.where(self.tie > self.first, prev, self.t)

    def unsort(self, values: np.ndarray) -> np.ndarray:
        """Back to the original row order."""
        out = np.empty_like(values)
        out[self.order] = values
        return out


def _global_prior_mean(ts: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean of all ratings at strictly earlier timestamps (3.5 before any), per row."""
    h = _History(np.zeros(len(ts), dtype=np.int64), ts)
    s, n = h.sum(y), h.count
    return h.unsort(np.where(n > 0, s / np.maximum(n, 1), 3.5))


def _shrunk(total: np.ndarray, n: np.ndarray, prior: np.ndarray | float) -> np.ndarray:
    return (total + SHRINK * prior) / (n + SHRINK)


def _user_features(user: np.ndarray, ts: np.ndarray, y: np.ndarray, year: np.ndarray,
                   gen: np.ndarray) -> dict[str, np.ndarray]:
    h = _History(user, ts)
    mu = _global_prior_mean(ts, y)[h.order]
    n = h.count
    s1, s2 = h.sum(y), h.sum(y * y)
    mean = _shrunk(s1, n, mu)
    ss_dev = np.maximum(s2 - s1**2 / np.maximum(n, 1), 0.0)
    del s2, mu
    out = {
        "user_n_prior": np.log1p(n),
        "user_prior_mean": mean,
        "user_prior_sd": np.sqrt((ss_dev + SHRINK * 1.0) / (n + SHRINK)),
        "user_experience_years": (h.t - h.t[h.first]) / YEAR_S,
        "user_log_days_since_last": np.log1p((h.t - h.previous_time()) / 86400.0),
        "user_n_last_day": np.log1p(h.within(86400.0)),
        "user_share_high": _shrunk(h.sum(y >= 4), n, 0.5),  # neutral priors for shares
        "user_share_low": _shrunk(h.sum(y <= 2), n, 0.15),
        "user_share_half": _shrunk(h.sum(y % 1 != 0), n, 0.2),
        "user_mean_movie_year": _shrunk(h.sum(year), n, float(np.mean(year))),
    }
    out = {k: v.astype(np.float32) for k, v in out.items()}
    out.update(_alignment(h, y, gen, year, mean, out["user_mean_movie_year"]))
    return {k: h.unsort(v) for k, v in out.items()}


def _alignment(h: _History, y: np.ndarray, gen: np.ndarray, year: np.ndarray,
               user_mean: np.ndarray, user_year: np.ndarray) -> dict[str, np.ndarray]:
    """User-genre alignment: genre shares, rating deviations by genre, genre entropy.

    One genre column at a time, so memory stays a few 1-D arrays per row.
    """
    n = h.count
    names = [*TRACKED_GENRES, "DR", "other"]
    out: dict[str, np.ndarray] = {}
    shares: dict[str, np.ndarray] = {}
    for j, g in enumerate(names):
        col = gen[:, j]
        counts = h.sum(col)
        shares[g] = _shrunk(counts, n, float(col.mean())).astype(np.float32)
        if g in ("Drama", "Romance", "Comedy", "DR"):
            genre_mean = _shrunk(h.sum(col * y), counts, user_mean)
            key = "drama_romance" if g == "DR" else g.lower()
            out[f"dev_{key}"] = (genre_mean - user_mean).astype(np.float32)
    for g in ("Drama", "Romance", "Comedy", "Action", "Thriller"):
        out[f"share_{g.lower()}"] = shares[g]
    out["share_drama_romance"] = shares["DR"]
    mix = [shares[g].astype(np.float64) for g in names if g != "DR"]
    total = np.sum(mix, axis=0)
    entropy = np.zeros(len(total))
    for m in mix:
        p = m / total
        entropy -= p * np.log(np.clip(p, 1e-12, None))
    out["genre_entropy"] = entropy.astype(np.float32)
    out["year_gap"] = (year[h.order] - user_year).astype(np.float32)
    return out


def _movie_features(item: np.ndarray, ts: np.ndarray, y: np.ndarray, year: np.ndarray,
                    missing: np.ndarray, items: pd.DataFrame,
                    ratings: pd.DataFrame) -> dict[str, np.ndarray]:
    h = _History(item, ts)
    mu = _global_prior_mean(ts, y)[h.order]
    n = h.count
    s1, s2 = h.sum(y), h.sum(y * y)
    ss_dev = np.maximum(s2 - s1**2 / np.maximum(n, 1), 0.0)
    sorted_out = {
        "movie_n_prior": np.log1p(n),
        "movie_n_last_year": np.log1p(h.within(YEAR_S)),
        "movie_prior_mean": _shrunk(s1, n, mu),
        "movie_prior_sd": np.sqrt((ss_dev + SHRINK * 1.0) / (n + SHRINK)),
    }
    out = {k: h.unsort(v.astype(np.float32)) for k, v in sorted_out.items()}
    rated_year = 1970 + ts / YEAR_S
    out.update({"movie_year": year, "movie_age": np.maximum(rated_year - year, 0.0),
                "movie_year_missing": missing.astype(float),
                "movie_n_genres": _item_lookup(ratings, items, _n_genres(items), fill=0)})
    return out


def _time_features(timestamp: pd.Series) -> dict[str, np.ndarray]:
    t = pd.DatetimeIndex(timestamp)
    seconds = t.as_unit("s").asi8.astype(float)
    dow = t.dayofweek.to_numpy()
    return {"time_year": 1970 + seconds / YEAR_S, "time_month": t.month.to_numpy(float),
            "time_day_of_week": dow.astype(float), "time_hour": t.hour.to_numpy(float),
            "time_weekend": (dow >= 5).astype(float)}
