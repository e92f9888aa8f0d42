"""Recommendation slates built from MovieLens ratings.

A low-rank factorisation of the ratings (scikit-learn's ``TruncatedSVD`` on the
user-centred rating matrix, 20 factors) scores every movie a user has not rated.
Each user session shows a slate of ``K`` movies: the candidates are the user's 100
best-scored unrated movies, a session draws ``K`` of them (Gumbel noise on the scores,
so sessions differ) and shows them in score order.  One lower-ranked movie of the
slate (in its bottom half) is the *focal* item, the one a promotion would move to the
top.  Movies compete with the movies of their *substitute cluster*, their primary
genre (the first genre MovieLens lists): a user choosing among comedies substitutes
one comedy for another more readily than a comedy for a documentary.  Genres miss
substitution across genres (two films by one director, a sequel) and treat a
multi-genre film as belonging to its first genre only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.decomposition import TruncatedSVD

from analysis.data.movielens import MovieLensData
from analysis.errors import DataError

CANDIDATES = 100
"""Best-scored unrated movies per user from which sessions draw their slates."""
CHUNK = 2000
"""Users (or sessions) scored at a time, so memory stays bounded on the largest releases."""


@dataclass(frozen=True)
class Slates:
    """Every session's slate, as arrays with one row per slate and one column per position.

    Attributes
    ----------
    user : ndarray (S,)
        The session's user (its row index in the ratings).
    items : ndarray (S, K)
        Movie ids in the recommender's order (position 0 is the top).
    score : ndarray (S, K)
        The recommender's standardised score of each movie for the user.
    cluster : ndarray (S, K)
        Integer code of each movie's primary genre.
    focal : ndarray (S,)
        Position (0-based) of the focal item in the original slate.
    cluster_names : list of str
        Genre of each cluster code.
    """

    user: np.ndarray
    items: np.ndarray
    score: np.ndarray
    cluster: np.ndarray
    focal: np.ndarray
    cluster_names: list[str]

    @property
    def n_slates(self) -> int:
        """Number of slates."""
        return len(self.user)

    @property
    def size(self) -> int:
        """Items per slate (K)."""
        return self.items.shape[1]

    def focal_cluster(self) -> np.ndarray:
        """Cluster code of each slate's focal item."""
        return self.cluster[np.arange(self.n_slates), self.focal]


def factorise(data: MovieLensData, *, n_factors: int = 20,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """User and item factors of the user-centred rating matrix.

    Returns
    -------
    users, items : ndarrays
        Row labels (user ids) and column labels (movie ids) of the matrix.
    user_factors : ndarray (n_users, k)
    item_factors : ndarray (k, n_items)
    """
    r = data.ratings
    users, u = np.unique(r["user"].to_numpy(), return_inverse=True)
    items, i = np.unique(r["item"].to_numpy(), return_inverse=True)
    if len(users) < 10 or len(items) < 50:
        raise DataError(f"{len(users)} users and {len(items)} rated movies are too few to "
                        "build slates; the slate study needs at least 10 users and 50 movies.")
    means = np.bincount(u, weights=r["rating"].to_numpy()) / np.bincount(u)
    centred = r["rating"].to_numpy() - means[u]
    R = sparse.csr_matrix((centred, (u, i)), shape=(len(users), len(items)))
    k = min(n_factors, min(R.shape) - 1)
    svd = TruncatedSVD(n_components=k, random_state=seed)
    return users, items, svd.fit_transform(R), svd.components_


def primary_genres(data: MovieLensData, items: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Integer cluster code of each movie's first listed genre (``none`` when it has none)."""
    genres = data.items.set_index("item")["genres"].reindex(items).fillna("")
    first = genres.str.split("|").str[0].replace("", "none")
    codes, names = pd.factorize(first, sort=True)
    return codes, list(names)


def _candidates(P: np.ndarray, Q: np.ndarray, rated: sparse.csr_matrix,
                n_cand: int) -> tuple[np.ndarray, np.ndarray]:
    """Each user's ``n_cand`` best-scored unrated movies (indices and scores), computed for
    :data:`CHUNK` users at a time."""
    cand = np.empty((P.shape[0], n_cand), dtype=np.int64)
    cand_scores = np.empty((P.shape[0], n_cand))
    for lo in range(0, P.shape[0], CHUNK):
        rows = slice(lo, min(lo + CHUNK, P.shape[0]))
        scores = P[rows] @ Q
        scores[rated[rows].toarray()] = -np.inf
        top = np.argpartition(-scores, n_cand - 1, axis=1)[:, :n_cand]
        cand[rows] = top
        cand_scores[rows] = np.take_along_axis(scores, top, axis=1)
    return cand, cand_scores


def build_slates(data: MovieLensData, *, slate_size: int = 10, sessions: int = 10,
                 seed: int = 0, n_factors: int = 20) -> Slates:
    """Build ``sessions`` slates of ``slate_size`` movies for every user.

    Parameters
    ----------
    data : MovieLensData
        Real or synthetic MovieLens ratings.
    slate_size : int
        Movies per slate (``K``).
    sessions : int
        Slates per user.
    seed : int
    n_factors : int
        Factors of the recommender.

    Returns
    -------
    Slates
    """
    if slate_size < 4:
        raise DataError(f"slate_size = {slate_size}: a slate needs at least 4 items so that a "
                        "lower-ranked focal item can be promoted over others.")
    rng = np.random.default_rng(seed)
    users, items, P, Q = factorise(data, n_factors=n_factors, seed=seed)
    rated = sparse.csr_matrix((np.ones(len(data.ratings), dtype=bool),
                               (np.searchsorted(users, data.ratings["user"].to_numpy()),
                                np.searchsorted(items, data.ratings["item"].to_numpy()))),
                              shape=(len(users), len(items)))
    n_cand = min(CANDIDATES, len(items) - int(rated.sum(axis=1).max()))
    if n_cand < slate_size:
        raise DataError(f"Some users have rated all but {n_cand} movies, fewer than a slate of "
                        f"{slate_size}; use a smaller slate_size.")
    cand, cand_scores = _candidates(P, Q, rated, n_cand)
    mu, sd = cand_scores.mean(), cand_scores.std() or 1.0
    n_users = len(users)
    user = np.repeat(np.arange(n_users), sessions)
    chosen = np.empty((len(user), slate_size), dtype=np.int64)
    chosen_scores = np.empty((len(user), slate_size))
    for lo in range(0, len(user), CHUNK):  # sessions in chunks: memory stays bounded
        rows = slice(lo, min(lo + CHUNK, len(user)))
        noisy = cand_scores[user[rows]] + rng.gumbel(scale=sd * 0.5,
                                                      size=(rows.stop - lo, n_cand))
        pick = np.argpartition(-noisy, slate_size - 1, axis=1)[:, :slate_size]
        c = np.take_along_axis(cand[user[rows]], pick, axis=1)
        cs = np.take_along_axis(cand_scores[user[rows]], pick, axis=1)
        order = np.argsort(-cs, axis=1, kind="stable")
        chosen[rows] = np.take_along_axis(c, order, axis=1)
        chosen_scores[rows] = np.take_along_axis(cs, order, axis=1)
    codes, names = primary_genres(data, items)
    focal = rng.integers(slate_size // 2, slate_size, size=len(user))
    return Slates(user=user, items=items[chosen], score=(chosen_scores - mu) / sd,
                  cluster=codes[chosen], focal=focal, cluster_names=names)
