"""MovieLens loaders: every format into the canonical schema, and every validation error."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.data.movielens import detect_format, load_movielens, resolve_movielens
from analysis.errors import DataError
from tests.fixtures import MOVIES, RATINGS, write_100k, write_csv, write_dat

WRITERS = {"csv": write_csv, "dat": write_dat, "100k": write_100k}


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_each_format_loads_into_canonical_schema(tmp_path, fmt):
    folder = WRITERS[fmt](tmp_path / f"ml-{fmt}")
    assert detect_format(folder) == fmt
    data = load_movielens(folder)
    assert list(data.ratings.columns) == ["user", "item", "rating", "timestamp"]
    assert list(data.items.columns) == ["item", "title", "year", "genres"]
    assert len(data.ratings) == len(RATINGS) and len(data.items) == len(MOVIES)
    assert str(data.ratings["user"].dtype) == "int64"
    assert pd.api.types.is_datetime64_any_dtype(data.ratings["timestamp"])
    assert data.ratings["timestamp"].iloc[0] == pd.Timestamp(964982703, unit="s")
    items = data.items.set_index("item")
    assert items.loc[20, "genres"] == "Drama|Romance"
    assert items.loc[10, "genres"] == "Adventure|Animation|Children|Comedy|Fantasy"
    assert items.loc[30, "genres"] == ""
    assert items.loc[20, "year"] == 1997  # from the title, or ml-100k's release date
    assert items.loc[10, "year"] == 1995
    assert pd.isna(items.loc[30, "year"])  # no year in the title, no release date
    assert data.source == "real" and len(data.fingerprint) == 64


def test_dat_movies_in_latin1(tmp_path):
    movies = [(10, "Amélie (2001)", "Comedy|Romance"), (20, "B (1990)", "Drama"),
              (30, "C (1991)", "Drama")]
    data = load_movielens(write_dat(tmp_path / "ml-1m", movies=movies, encoding="latin-1"))
    assert data.items.set_index("item").loc[10, "title"] == "Amélie (2001)"


def test_real_ml_latest_small(movielens_dir):
    data = load_movielens(movielens_dir)
    assert len(data.ratings) == 100_836
    assert data.ratings["user"].nunique() == 610
    assert len(data.items) == 9_742
    assert data.ratings["rating"].between(0.5, 5).all()
    assert set(data.ratings["rating"].unique()) <= {x / 2 for x in range(1, 11)}


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist.*data fetch"):
        load_movielens(tmp_path / "nope")


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="holds no MovieLens files"):
        load_movielens(tmp_path)


@pytest.mark.parametrize("fmt,remove", [("csv", "movies.csv"), ("csv", "ratings.csv"),
                                        ("dat", "movies.dat"), ("100k", "u.item")])
def test_missing_file(tmp_path, fmt, remove):
    folder = WRITERS[fmt](tmp_path / "ml")
    (folder / remove).unlink()
    with pytest.raises(DataError, match=f"Incomplete MovieLens folder.*{remove} is missing"):
        load_movielens(folder)


def test_wrong_rating_columns(tmp_path):
    folder = write_csv(tmp_path / "ml")
    (folder / "ratings.csv").write_text("user,movie,stars,time\n1,10,4.0,964982703\n")
    with pytest.raises(DataError, match=r"ratings.csv has columns.*expected \['userId'"):
        load_movielens(folder)


def test_wrong_movie_columns(tmp_path):
    folder = write_csv(tmp_path / "ml")
    (folder / "movies.csv").write_text("id,name\n10,Toy Story\n")
    with pytest.raises(DataError, match=r"movies.csv has columns"):
        load_movielens(folder)


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_rating_out_of_range(tmp_path, fmt):
    bad = [*RATINGS[:-1], (3, 20, 7.0, 964982931)]
    folder = WRITERS[fmt](tmp_path / "ml", ratings=bad if fmt != "100k" else
                          [(u, i, int(max(1, r)), t) for u, i, r, t in bad])
    with pytest.raises(DataError, match=r"1 ratings outside 0.5–5 \(first at row 5: 7.0\)"):
        load_movielens(folder)


def test_row_that_does_not_parse_csv(tmp_path):
    folder = write_csv(tmp_path / "ml")
    with (folder / "ratings.csv").open("a") as fh:
        fh.write("4,10,four,964982931\n")
    with pytest.raises(DataError, match=r"ratings.csv line 7: rating = 'four' does not parse"):
        load_movielens(folder)


def test_short_row_is_not_loaded_silently(tmp_path):
    folder = write_csv(tmp_path / "ml")
    with (folder / "ratings.csv").open("a") as fh:
        fh.write("4,10\n")
    with pytest.raises(DataError, match=r"ratings.csv line 7: rating = '' does not parse"):
        load_movielens(folder)


def test_long_row_is_an_error(tmp_path):
    folder = write_csv(tmp_path / "ml")
    with (folder / "ratings.csv").open("a") as fh:
        fh.write("4,10,3.0,964982931,extra\n")
    with pytest.raises(DataError, match=r"ratings.csv: rows do not parse"):
        load_movielens(folder)


def test_row_that_does_not_parse_dat(tmp_path):
    folder = write_dat(tmp_path / "ml")
    with (folder / "ratings.dat").open("a") as fh:
        fh.write("4::x::3::964982931\n")
    with pytest.raises(DataError, match=r"ratings.dat line 6: item = 'x' does not parse"):
        load_movielens(folder)


def test_dat_with_wrong_separator(tmp_path):
    folder = write_dat(tmp_path / "ml")
    (folder / "ratings.dat").write_text("1,10,4,964982703\n")
    with pytest.raises(DataError, match="not '::'-separated"):
        load_movielens(folder)


def test_100k_wrong_field_count(tmp_path):
    folder = write_100k(tmp_path / "ml")
    (folder / "u.item").write_text("10|Toy Story|x\n")
    with pytest.raises(DataError, match=r"u.item rows must have 24"):
        load_movielens(folder)


def test_ratings_of_unknown_movies(tmp_path):
    folder = write_csv(tmp_path / "ml", ratings=[*RATINGS, (4, 99, 3.0, 964982931)])
    with pytest.raises(DataError, match=r"1 ratings refer to movies missing.*99"):
        load_movielens(folder)


def test_resolve_auto_real_synthetic(tmp_path, monkeypatch):
    assert resolve_movielens("synthetic", "", tmp_path) is None
    assert resolve_movielens("auto", "", tmp_path) is None
    with pytest.raises(DataError, match="source = 'real' but no MovieLens data"):
        resolve_movielens("real", "", tmp_path)
    raw = write_csv(tmp_path / "data" / "raw" / "ml-latest-small")
    assert resolve_movielens("auto", "", tmp_path) == raw
    env = write_dat(tmp_path / "elsewhere" / "ml-1m")
    monkeypatch.setenv("ANALYSIS_MOVIELENS_DIR", str(env))
    assert resolve_movielens("real", "", tmp_path) == env


# ------------------------------------------------ rejections, each with its fix (issue 19)
REDOWNLOAD = r"Re-download the dataset with `python -m analysis data fetch <name>`"


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_a_timestamp_in_the_future_is_rejected(tmp_path, fmt):
    future = 4102444800  # 2100-01-01
    ratings = [*RATINGS[:-1], (3, 20, 2.0, future)]
    if fmt == "100k":
        ratings = [(u, i, int(max(1, r)), t) for u, i, r, t in ratings]
    folder = WRITERS[fmt](tmp_path / "ml", ratings=ratings)
    name = {"csv": "ratings.csv", "dat": "ratings.dat", "100k": "u.data"}[fmt]
    line = 6 if fmt == "csv" else 5
    with pytest.raises(DataError, match=rf"{name} line {line}: timestamp is in the future "
                                        rf"\(4\.10244e\+09; 1 such rows\)\. {REDOWNLOAD}"):
        load_movielens(folder)


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_a_movie_id_that_is_not_an_integer_is_rejected(tmp_path, fmt):
    """A fractional id in the movies file used to be truncated silently (20.5 became 20)."""
    movies = [*MOVIES, (20.5, "Half a movie (1999)", "Drama")]
    folder = WRITERS[fmt](tmp_path / "ml", movies=movies)
    name = {"csv": "movies.csv", "dat": "movies.dat", "100k": "u.item"}[fmt]
    line = 5 if fmt == "csv" else 4
    with pytest.raises(DataError, match=rf"{name} line {line}: movie id is not an integer "
                                        rf"\(20\.5; 1 such rows\)\. Movie ids are whole "
                                        rf"numbers in every GroupLens release\. {REDOWNLOAD}"):
        load_movielens(folder)


def test_a_fractional_movie_id_in_the_ratings_is_rejected(tmp_path):
    folder = write_dat(tmp_path / "ml", ratings=[*RATINGS, (4, 10, 3.0, 964982931)])
    (folder / "ratings.dat").write_text((folder / "ratings.dat").read_text()
                                        .replace("4::10::3", "4::10.5::3"))
    with pytest.raises(DataError, match=r"ratings.dat line 6: item is not an integer \(10\.5.*"
                                        rf"whole numbers in every GroupLens release\. "
                                        rf"{REDOWNLOAD}"):
        load_movielens(folder)


def test_dat_rejections_name_the_fix(tmp_path):
    folder = write_dat(tmp_path / "ml")
    (folder / "ratings.dat").write_text("1::10::4\n")
    with pytest.raises(DataError, match=r"ratings.dat is not '::'-separated with 4 fields "
                                        rf"\(UserID::MovieID::Rating::Timestamp\)\. {REDOWNLOAD}"):
        load_movielens(folder)
    folder = write_dat(tmp_path / "ml2")
    (folder / "movies.dat").write_text("10|Toy Story (1995)|Comedy\n")
    with pytest.raises(DataError, match=rf"movies.dat rows must be MovieID::Title::Genres\. "
                                        rf"{REDOWNLOAD}"):
        load_movielens(folder)


def test_u_data_rejections_name_the_fix(tmp_path):
    folder = write_100k(tmp_path / "ml")
    (folder / "u.data").write_text("1,10,4,964982703\n")
    with pytest.raises(DataError, match=r"u.data has 1 tab-separated columns; expected 4 "
                                        rf"\(user, item, rating, timestamp\)\. {REDOWNLOAD}"):
        load_movielens(folder)
    folder = write_100k(tmp_path / "ml2")
    (folder / "u.user").unlink()
    with pytest.raises(DataError, match=r"u.user is missing; ml-100k lists its users there "
                                        rf"and ratings are checked against it\. {REDOWNLOAD}"):
        load_movielens(folder)
    folder = write_100k(tmp_path / "ml3", users=[1, 2])
    with pytest.raises(DataError, match=rf"u.data: 1 ratings are by users missing from .*"
                                        rf"{REDOWNLOAD}"):
        load_movielens(folder)
