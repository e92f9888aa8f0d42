"""Genre indicators from the canonical items frame."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd


def genre_indicators(items: pd.DataFrame) -> pd.DataFrame:
    """One 0/1 column per genre, indexed by ``item``.

    Parameters
    ----------
    items : DataFrame
        Canonical items with a ``|``-separated ``genres`` column.

    Returns
    -------
    DataFrame
        ``int8`` indicators, columns sorted by genre name; movies without
        genres are all zero.
    """
    dummies = items["genres"].fillna("").str.get_dummies(sep="|")
    dummies = dummies.loc[:, [c for c in dummies.columns if c]]
    dummies.index = items["item"].to_numpy()
    return dummies.astype("int8").sort_index(axis=1)


def has_all_genres(items: pd.DataFrame, genres: Iterable[str]) -> pd.Series:
    """Whether each movie lists every genre in ``genres`` (aligned with ``items``)."""
    text = items["genres"].fillna("")
    out = pd.Series(True, index=items.index)
    for g in genres:  # a handful of genres, each a vectorised regex over all movies
        out &= text.str.contains(rf"(?:^|\|){re.escape(g)}(?:\||$)", regex=True)
    return out
