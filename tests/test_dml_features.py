"""MovieLens features: documented, complete, vectorised and free of outcome leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.data.synthetic import simulate_movielens
from analysis.features.genres import has_all_genres
from analysis.features.movielens import (
    FEATURE_NAMES,
    FEATURES,
    JUSTIFIED,
    build_features,
    report_style_features,
    treatment,
)


@pytest.fixture(scope="module")
def data():
    return simulate_movielens(n_users=60, n_items=400, n_ratings=4000, seed=3)


def test_features_are_documented_in_four_groups(data):
    assert 30 <= len(FEATURES) <= 40
    assert {f.group for f in FEATURES} == {"user", "movie", "time", "interaction"}
    assert all(len(f.description) > 10 for f in FEATURES)
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert set(JUSTIFIED) < set(FEATURE_NAMES)
    bad = {"movie_prior_mean", "movie_n_prior", "movie_n_genres"}
    assert not bad & set(JUSTIFIED), "consequences of the genre are not adjusted for"


def test_features_are_complete_and_aligned(data):
    F = build_features(data.ratings, data.items)
    assert list(F.columns) == FEATURE_NAMES
    assert F.index.equals(data.ratings.index)
    assert (F.dtypes == np.float32).all()
    assert np.isfinite(F.to_numpy()).all()


def test_inputs_are_not_modified(data):
    before = data.ratings.copy()
    build_features(data.ratings, data.items)
    report_style_features(data.ratings, data.items)
    pd.testing.assert_frame_equal(data.ratings, before)


def test_no_outcome_leakage(data):
    """Changing a rating changes no feature of that rating, nor of any earlier rating."""
    r = data.ratings
    F = build_features(r, data.items)
    i = int(np.argsort(r["timestamp"].to_numpy())[len(r) // 2])
    changed = r.copy()
    changed.loc[i, "rating"] = 0.5 if r.loc[i, "rating"] > 3 else 5.0
    G = build_features(changed, data.items)
    pd.testing.assert_series_equal(F.loc[i], G.loc[i])
    earlier = r["timestamp"] < r.loc[i, "timestamp"]
    pd.testing.assert_frame_equal(F[earlier], G[earlier])
    later_same_user = (r["user"] == r.loc[i, "user"]) & (r["timestamp"] > r.loc[i, "timestamp"])
    if later_same_user.any():  # ...but it does inform the user's later ratings
        assert not np.allclose(F.loc[later_same_user, "user_prior_mean"],
                               G.loc[later_same_user, "user_prior_mean"])


def test_report_style_features_leak(data):
    """The flagged report-style controls include the rating being explained."""
    r = data.ratings
    i = 10
    changed = r.copy()
    changed.loc[i, "rating"] = 0.5 if r.loc[i, "rating"] > 3 else 5.0
    a = report_style_features(r, data.items).loc[i]
    b = report_style_features(changed, data.items).loc[i]
    assert a["rs_user_mean"] != b["rs_user_mean"] and a["rs_movie_mean"] != b["rs_movie_mean"]


def test_simultaneous_ratings_are_not_prior():
    ratings = pd.DataFrame({"user": [1, 1, 1], "item": [1, 2, 3], "rating": [1.0, 5.0, 3.0],
                            "timestamp": pd.to_datetime(["2000-01-01", "2000-01-01",
                                                         "2000-01-02"])})
    items = pd.DataFrame({"item": [1, 2, 3], "title": ["a", "b", "c"],
                          "year": pd.array([1990, 1991, 1992], dtype="Int64"),
                          "genres": ["Drama|Romance", "Comedy", "Drama"]})
    F = build_features(ratings, items)
    np.testing.assert_array_equal(np.expm1(F["user_n_prior"]).round(), [0, 0, 2])
    assert F.loc[0, "user_prior_mean"] == F.loc[1, "user_prior_mean"]
    np.testing.assert_array_equal(treatment(ratings, items), [1, 0, 0])


def test_row_order_does_not_matter(data):
    r = data.ratings.sample(frac=1.0, random_state=0)
    F = build_features(data.ratings, data.items)
    G = build_features(r, data.items)
    pd.testing.assert_frame_equal(F.loc[r.index], G)


def test_treatment_is_drama_and_romance(data):
    d = treatment(data.ratings, data.items)
    flag = pd.Series(has_all_genres(data.items, ("Drama", "Romance")).to_numpy(),
                     index=data.items["item"])
    np.testing.assert_array_equal(d, data.ratings["item"].map(flag).astype(int).to_numpy())
