"""A synthetic, MovieLens-shaped dataset with planted, known causal effects.

The generator is the embedded default when no real MovieLens folder is found.
It mimics the real data's shape (every user has at least 20 ratings, heavy-tailed
user activity and item popularity, genre combinations at realistic rates, ratings
from 0.5 to 5 in half steps with many users who only give whole stars) and plants
a known effect of the drama-romance combination on ratings, confounded the way
real data is.

Notes
-----
For user :math:`u` and movie :math:`i` the latent score is

.. math::

    s_{ui}(d) = 3.45 + b_u + q_i + 0.25\\,\\mathbb 1[\\text{year}_i < 1980]
              + d\\,(\\tau + \\kappa a_u) + \\varepsilon_{ui},

with generosity :math:`b_u`, romance affinity :math:`a_u` (correlated with
:math:`b_u`), quality :math:`q_i` and noise
:math:`\\varepsilon_{ui}\\sim N(0, 0.75^2)`.  The rating is :math:`s` rounded to
the user's step (0.5 or 1) and clipped to the scale.  Users with high affinity
choose romance movies more often, and older movies are more often
drama-romance, so a naive comparison is biased upward.  The individual effect of
each observed rating is :math:`Y_{ui}(1) - Y_{ui}(0)` on the rounded scale, with
the same noise draw in both arms; its mean is the true ATE.  Taste for romance
acts on ratings only through the drama-romance effect (and, via its correlation
with generosity, as a confounder), so the planted effect is the estimand that
adjustment targets, overall and within any segment defined by pre-rating
information.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.data.common import DataRef, params_fingerprint
from analysis.data.movielens import MovieLensData

GENRE_RATES = {"Drama": 0.45, "Comedy": 0.38, "Thriller": 0.19, "Action": 0.18,
               "Adventure": 0.13, "Crime": 0.13, "Sci-Fi": 0.10, "Horror": 0.10,
               "Fantasy": 0.08, "Children": 0.07, "Animation": 0.06, "Mystery": 0.06,
               "Documentary": 0.05, "War": 0.04, "Musical": 0.03, "IMAX": 0.02,
               "Western": 0.02, "Film-Noir": 0.01}
START, END = pd.Timestamp("1996-03-29"), pd.Timestamp("2018-09-24")
MIN_PER_USER = 20


def simulate_movielens(*, n_users: int = 610, n_items: int = 9000, n_ratings: int = 100_000,
                       effect: float = 0.10, heterogeneity: float = 0.10,
                       seed: int = 0) -> MovieLensData:
    """Simulate a MovieLens-shaped dataset with a planted drama-romance effect.

    Parameters
    ----------
    n_users, n_items, n_ratings : int
        Sizes; duplicates (user, movie) are dropped, so slightly fewer ratings result.
    effect : float
        :math:`\\tau`, the average effect of drama-romance on the latent score.
    heterogeneity : float
        :math:`\\kappa`, how much the effect grows per SD of romance affinity.
    seed : int

    Returns
    -------
    MovieLensData
        ``truth`` holds ``ate`` (mean individual effect on the observed rounded
        scale), ``effect``, ``heterogeneity`` and ``effects`` (one per rating row).
    """
    for name, v in {"n_users": n_users, "n_items": n_items, "n_ratings": n_ratings}.items():
        if v < 1:
            raise ValueError(f"{name} must be positive, got {v}.")
    rng = np.random.default_rng(seed)
    users = _users(rng, n_users, n_ratings)
    items = _items(rng, n_items)
    ratings, effects = _ratings(rng, users, items, effect, heterogeneity)
    ref = synthetic_movielens_ref(n_users=n_users, n_items=n_items, n_ratings=n_ratings,
                                  effect=effect, heterogeneity=heterogeneity, seed=seed)
    truth = {"ate": float(effects.mean()), "effect": effect, "heterogeneity": heterogeneity,
             "effects": effects}
    return MovieLensData(ratings=ratings, items=items[["item", "title", "year", "genres"]],
                         name="synthetic-movielens", source="synthetic",
                         fingerprint=ref.fingerprint,
                         truth=truth)


def synthetic_movielens_ref(**params: float | int) -> DataRef:
    """The :class:`DataRef` of :func:`simulate_movielens` with ``params``, without simulating."""
    return DataRef(name="synthetic-movielens", source="synthetic",
                   fingerprint=params_fingerprint("synthetic-movielens", params))


def _users(rng: np.random.Generator, n: int, n_ratings: int) -> pd.DataFrame:
    z = rng.standard_normal((n, 2))
    generosity = 0.35 * z[:, 0]
    affinity = 0.5 * z[:, 0] + np.sqrt(0.75) * z[:, 1]
    floor = min(MIN_PER_USER, max(1, n_ratings // n))
    weights = rng.lognormal(0.0, 1.1, n)
    counts = floor + rng.multinomial(max(0, n_ratings - floor * n), weights / weights.sum())
    span = (END - START).total_seconds()
    start = rng.uniform(0, 0.95 * span, n)
    duration = np.minimum(rng.exponential(0.08 * span, n), span - start)
    return pd.DataFrame({"user": np.arange(1, n + 1), "generosity": generosity,
                         "affinity": affinity, "count": counts, "start": start,
                         "duration": duration, "step": np.where(rng.random(n) < 0.5, 0.5, 1.0)})


def _items(rng: np.random.Generator, n: int) -> pd.DataFrame:
    year = np.clip(2018 - np.floor(rng.gamma(2.0, 9.0, n)), 1915, 2018).astype(int)
    old = year < 1980
    flags = {g: rng.random(n) < p for g, p in GENRE_RATES.items()}
    none = ~np.any(np.column_stack(list(flags.values())), axis=1)
    flags["Comedy"] = flags["Comedy"] | none
    p_romance = np.where(flags["Drama"] | flags["Comedy"], 0.15, 0.03) * np.where(old, 1.8, 1.0)
    flags["Romance"] = rng.random(n) < p_romance
    order = sorted(flags)
    labels = pd.Series([f"{g}|" for g in order], index=order)
    genres = pd.DataFrame(flags)[order].dot(labels).str.rstrip("|")
    popularity = rng.lognormal(0.0, 1.1, n) * np.where(year > 1990, 1.5, 1.0)
    quality = 0.45 * rng.standard_normal(n) + 0.08 * np.log(popularity)
    return pd.DataFrame({"item": np.arange(1, n + 1),
                         "title": [f"Synthetic Movie {i}" for i in range(1, n + 1)],
                         "year": pd.array(year, dtype="Int64"), "genres": genres,
                         "romance": flags["Romance"], "drama_romance": flags["Romance"]
                         & flags["Drama"], "old": old, "popularity": popularity,
                         "quality": quality})


def _ratings(rng: np.random.Generator, users: pd.DataFrame, items: pd.DataFrame,
             effect: float, heterogeneity: float) -> tuple[pd.DataFrame, np.ndarray]:
    counts = users["count"].to_numpy()
    # Draw 60% more (user, movie) pairs than needed, drop repeats, keep each user's first `count`.
    u = np.repeat(np.arange(len(users)), np.ceil(1.6 * counts).astype(int))
    affinity = users["affinity"].to_numpy()[u]
    p_all = items["popularity"].to_numpy() / items["popularity"].sum()
    romance_idx = np.flatnonzero(items["romance"].to_numpy())
    pick_romance = (rng.random(len(u)) < 1 / (1 + np.exp(2.3 - 0.9 * affinity))) \
        & (romance_idx.size > 0)
    i = rng.choice(len(items), size=len(u), p=p_all)
    if romance_idx.size:
        p_rom = p_all[romance_idx] / p_all[romance_idx].sum()
        i[pick_romance] = rng.choice(romance_idx, size=int(pick_romance.sum()), p=p_rom)
    pairs = pd.DataFrame({"u": u, "i": i}).drop_duplicates()
    pairs = pairs[pairs.groupby("u").cumcount().to_numpy() < counts[pairs["u"].to_numpy()]]
    u, i = pairs["u"].to_numpy(), pairs["i"].to_numpy()
    a = users["affinity"].to_numpy()[u]
    it = items.iloc[i]
    base = (3.45 + users["generosity"].to_numpy()[u] + it["quality"].to_numpy()
            + 0.25 * it["old"].to_numpy()
            + rng.normal(0.0, 0.75, len(u)))
    step = users["step"].to_numpy()[u]
    y0 = _round(base, step)
    y1 = _round(base + effect + heterogeneity * a, step)
    d = it["drama_romance"].to_numpy()
    span = (END - START).total_seconds()
    seconds = users["start"].to_numpy()[u] + rng.random(len(u)) * users["duration"].to_numpy()[u]
    release = (pd.to_datetime(it["year"].astype(int).astype(str), format="%Y") - START)
    release = np.maximum(release.dt.total_seconds().to_numpy(), 0.0)
    early = seconds < release  # rated before release: move into the year after release
    seconds[early] = release[early] + rng.random(int(early.sum())) \
        * np.minimum(365 * 86400.0, span - release[early])
    ts = START + pd.to_timedelta(np.minimum(seconds, span), unit="s")
    ratings = pd.DataFrame({"user": users["user"].to_numpy()[u].astype("int64"),
                            "item": it["item"].to_numpy().astype("int64"),
                            "rating": np.where(d, y1, y0),
                            "timestamp": ts.to_numpy().astype("datetime64[s]")})
    order = np.lexsort((ratings["timestamp"].to_numpy(), ratings["user"].to_numpy()))
    return ratings.iloc[order].reset_index(drop=True), (y1 - y0)[order]


def _round(score: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Round to the user's step (0.5 or 1) and clip to the scale."""
    r = np.round(score / step) * step
    return np.clip(r, step, 5.0)
