"""The data chapter: what the MovieLens ratings look like.

Descriptive only, no estimation: sizes, the rating scale as used, how skewed
user activity and movie popularity are, genre prevalence (with the
drama-romance combination the next chapter studies) and ratings over time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.config import seed_field
from analysis.data.common import DataRef
from analysis.features.genres import genre_indicators, has_all_genres
from analysis.result import StudyResult
from analysis.studies.base import Timer, make_result
from analysis.studies.movielens import (
    MovieLensConfig,
    load_movielens_for,
    movielens_data_ref,
)

NAME = "data_overview"
TITLE = "The MovieLens ratings"
CHAPTER = "chapters/data.qmd"
SUMMARY_TEMPLATE = "studies/data_overview.md.j2"


@dataclass(frozen=True, kw_only=True)
class Config(MovieLensConfig):
    """Settings of the data chapter (see :class:`MovieLensConfig`)."""

    seed: int = seed_field(20180926)


def data_ref(config: Config, root: Path | None = None) -> DataRef:
    """The dataset this study will describe."""
    return movielens_data_ref(config, root)


def run(config: Config, root: Path | None = None) -> StudyResult:
    """Describe the dataset.

    Returns
    -------
    StudyResult
        Tables ``overview``, ``rating_distribution``, ``user_activity``,
        ``item_popularity``, ``genres``, ``ratings_by_year``.
    """
    timer = Timer()
    ref = data_ref(config, root)
    data = load_movielens_for(config, root)
    r, items = data.ratings, data.items
    per_user = r.groupby("user").size()
    per_item = r.groupby("item").size()
    dr = has_all_genres(items, ("Drama", "Romance"))
    dr_share = float(r["item"].map(pd.Series(dr.to_numpy(), index=items["item"])).mean())
    tables = {
        "rating_distribution": _rating_distribution(r),
        "user_activity": _log_histogram(per_user, "users"),
        "item_popularity": _log_histogram(per_item, "movies"),
        "genres": _genres(r, items),
        "ratings_by_year": _by_year(r),
    }
    facts = {
        "n_ratings": len(r), "n_users": int(per_user.size), "n_items": int(len(items)),
        "n_rated_items": int(per_item.size),
        "first_date": r["timestamp"].min().date().isoformat(),
        "last_date": r["timestamp"].max().date().isoformat(),
        "mean_rating": float(r["rating"].mean()),
        "median_per_user": float(per_user.median()), "max_per_user": int(per_user.max()),
        "min_per_user": int(per_user.min()),
        "top_decile_share": float(np.sort(per_user.to_numpy())[::-1][: max(1, per_user.size // 10)]
                                  .sum() / len(r)),
        "share_half_stars": float((r["rating"] % 1 != 0).mean()),
        "density": float(len(r) / (per_user.size * per_item.size)),
        "drama_romance_share": dr_share,
        "top_genre": str(tables["genres"]["genre"].iloc[0]),
        "truth_ate": data.truth.get("ate"),
    }
    tables["overview"] = pd.DataFrame({
        "metric": ["Ratings", "Users", "Movies (catalogue)", "Movies rated",
                   "Median ratings per user", "Density", "Mean rating", "Half-star ratings",
                   "Ratings on drama-romance movies"],
        "value": [f"{facts['n_ratings']:,}", f"{facts['n_users']:,}", f"{facts['n_items']:,}",
                  f"{facts['n_rated_items']:,}", f"{facts['median_per_user']:,.0f}",
                  f"{facts['density']:.2%}", f"{facts['mean_rating']:.2f}",
                  f"{facts['share_half_stars']:.1%}", f"{dr_share:.1%}"],
    })
    return make_result(study=NAME, config=config, ref=ref, rows=len(r), tables=tables,
                       facts=facts, timer=timer)


def _rating_distribution(r: pd.DataFrame) -> pd.DataFrame:
    counts = r["rating"].value_counts().sort_index()
    return pd.DataFrame({"rating": counts.index.to_numpy(dtype=float),
                         "count": counts.to_numpy(), "share": counts.to_numpy() / len(r)})


def _log_histogram(counts: pd.Series, unit: str) -> pd.DataFrame:
    edges = np.unique(np.round(np.logspace(0, np.log10(counts.max() + 1), 30)))
    hist, edges = np.histogram(counts.to_numpy(), bins=edges)
    return pd.DataFrame({"lower": edges[:-1], "upper": edges[1:], unit: hist})


def _genres(r: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    g = genre_indicators(items)
    rated = g.reindex(r["item"].to_numpy()).to_numpy(dtype=bool)
    ratings = r["rating"].to_numpy()
    n_rat = rated.sum(axis=0)
    mean = (rated * ratings[:, None]).sum(axis=0) / np.maximum(n_rat, 1)
    out = pd.DataFrame({"genre": g.columns, "movies": g.sum(axis=0).to_numpy(),
                        "ratings": n_rat, "share_of_ratings": n_rat / len(r),
                        "mean_rating": mean})
    return out.sort_values("ratings", ascending=False).reset_index(drop=True)


def _by_year(r: pd.DataFrame) -> pd.DataFrame:
    year = r["timestamp"].dt.year
    out = r.groupby(year)["rating"].agg(ratings="size", mean_rating="mean").reset_index()
    return out.rename(columns={"timestamp": "year"})
