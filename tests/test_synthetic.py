"""The synthetic MovieLens generator: shape, scale and planted effects."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.data import simulate_movielens
from analysis.features.genres import has_all_genres


@pytest.fixture(scope="module")
def data():
    return simulate_movielens(n_users=300, n_items=2000, n_ratings=40_000, seed=7)


def test_movielens_shape(data):
    r = data.ratings
    assert list(r.columns) == ["user", "item", "rating", "timestamp"]
    assert set(np.unique(r["rating"])) <= {x / 2 for x in range(1, 11)}
    assert r.groupby("user").size().min() >= 20
    assert not r.duplicated(["user", "item"]).any()
    assert 0.9 * 40_000 < len(r) <= 40_000
    per_user = r.groupby("user").size()
    assert per_user.max() > 5 * per_user.median()  # heavy-tailed activity


def test_truth_is_consistent(data):
    effects = data.truth["effects"]
    assert effects.shape == (len(data.ratings),)
    assert data.truth["ate"] == pytest.approx(effects.mean())
    assert 0.03 < data.truth["ate"] < 0.2  # planted 0.10 shrunk a little by rounding
    dr = has_all_genres(data.items, ["Drama", "Romance"])
    share = data.ratings["item"].isin(data.items["item"][dr]).mean()
    assert 0.05 < share < 0.25


def test_naive_comparison_is_biased_upward(data):
    dr_items = set(data.items["item"][has_all_genres(data.items, ["Drama", "Romance"])])
    d = data.ratings["item"].isin(dr_items)
    naive = data.ratings["rating"][d].mean() - data.ratings["rating"][~d].mean()
    assert naive > data.truth["ate"]


def test_seeded_and_fingerprinted():
    a = simulate_movielens(n_users=50, n_items=300, n_ratings=3000, seed=1)
    b = simulate_movielens(n_users=50, n_items=300, n_ratings=3000, seed=1)
    c = simulate_movielens(n_users=50, n_items=300, n_ratings=3000, seed=2)
    assert a.ratings.equals(b.ratings) and a.fingerprint == b.fingerprint
    assert not a.ratings.equals(c.ratings) and a.fingerprint != c.fingerprint


def test_bad_size():
    with pytest.raises(ValueError, match="n_ratings must be positive"):
        simulate_movielens(n_ratings=0)
