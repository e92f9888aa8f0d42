"""Bad input that used to be accepted (issue 8): each now stops with an error naming the
problem and the fix."""

from __future__ import annotations

import codecs

import pytest

from analysis.config import load_config
from analysis.data.movielens import load_movielens
from analysis.errors import ConfigError, DataError
from tests.fixtures import MOVIES, RATINGS, write_100k, write_csv

# ------------------------------------------------------------------------ data files


def test_duplicate_ratings_are_rejected_with_a_count_and_examples(tmp_path):
    dup = [*RATINGS, (1, 10, 2.0, 964990000), (2, 10, 1.0, 964990001)]
    folder = write_csv(tmp_path / "ml", ratings=dup)
    with pytest.raises(DataError, match=r"ratings.csv: 2 \(user, movie\) pairs are rated more "
                                        r"than once \(4 rows; line 2: user 1, movie 10, rating 4;"
                                        r".*rejected rather than silently deduplicated"):
        load_movielens(folder)


def test_100k_users_missing_from_u_user_are_rejected(tmp_path):
    ratings = [(u, i, int(max(1, r)), t) for u, i, r, t in RATINGS] + [(0, 10, 3, 964982931)]
    folder = write_100k(tmp_path / "ml-100k", ratings=ratings, users=[1, 2, 3])
    with pytest.raises(DataError, match=r"1 ratings are by users missing from u.user "
                                        r"\(e.g. user 0\)"):
        load_movielens(folder)


def test_100k_without_u_user(tmp_path):
    folder = write_100k(tmp_path / "ml-100k")
    (folder / "u.user").unlink()
    with pytest.raises(DataError, match="u.user is missing"):
        load_movielens(folder)


def test_a_fractional_user_id_is_an_error(tmp_path):
    folder = write_csv(tmp_path / "ml")
    with (folder / "ratings.csv").open("a") as fh:
        fh.write("1.5,20,3.0,964982931\n")
    with pytest.raises(DataError, match=r"ratings.csv line 7: user is not an integer \(1.5"):
        load_movielens(folder)


@pytest.mark.parametrize("ts", ["1217", "-5"])
def test_timestamps_before_movielens_began_are_rejected(tmp_path, ts):
    folder = write_csv(tmp_path / "ml")
    with (folder / "ratings.csv").open("a") as fh:
        fh.write(f"4,20,3.0,{ts}\n")
    with pytest.raises(DataError, match=r"ratings.csv line 7: timestamp is before MovieLens "
                                        r"began \(1995\)"):
        load_movielens(folder)


def test_a_duplicate_movie_id_names_the_movies_file_and_the_id(tmp_path):
    folder = write_csv(tmp_path / "ml", movies=[*MOVIES, (20, "Titanic again (1997)", "Drama")])
    with pytest.raises(DataError, match=r"^movies.csv: movie id\(s\) 20 appear more than once"):
        load_movielens(folder)


def test_a_rating_that_is_not_a_half_star_is_rejected(tmp_path):
    folder = write_csv(tmp_path / "ml", ratings=[*RATINGS[:-1], (3, 20, 3.3, 964982931)])
    with pytest.raises(DataError, match=r"line 6: rating is not a half star \(3.3.*whole or "
                                        r"half stars"):
        load_movielens(folder)


# ------------------------------------------------------------------------ configuration


def write(tmp_path, data: bytes | str):
    path = tmp_path / "analysis.toml"
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


@pytest.mark.parametrize("seed,match", [
    (-1, "'seed' in .* is -1; it must be zero or more"),
    (99999999999999, "'seed' in .* is 99999999999999; it must be below 4,294,967,296"),
])
@pytest.mark.parametrize("study", ["data_overview", "dml_genre", "dowhy_recs"])
def test_seeds_are_bounded(tmp_path, study, seed, match):
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, f"[studies.{study}]\nseed = {seed}\n"), profile="default")


def test_utf16_file_names_the_file_and_the_encoding(tmp_path):
    path = write(tmp_path, "[studies.data_overview]\nseed = 1\n".encode("utf-16"))
    with pytest.raises(ConfigError, match=r"analysis.toml is encoded as UTF-16.*Save it as "
                                          r"UTF-8"):
        load_config(path, profile="default")


def test_a_stray_byte_names_the_file_and_the_line(tmp_path):
    path = write(tmp_path, b"# caf\xe9\n[studies.data_overview]\nseed = 1\n")
    with pytest.raises(ConfigError, match=r"analysis.toml line 1: byte 0xe9 is not UTF-8"):
        load_config(path, profile="default")


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = write(tmp_path, codecs.BOM_UTF8 + b"[studies.data_overview]\nseed = 7\n")
    assert load_config(path, profile="default").study("data_overview").seed == 7


@pytest.mark.parametrize("text,match", [
    ("studies = 3\n", r"'studies' in analysis.toml is 3, not a table"),
    ("[profiles]\nquick = 3\n", r"'profiles.quick' in analysis.toml is 3, not a table"),
    ("[studies]\ndml_genre = 3\n", r"'studies.dml_genre' in analysis.toml is 3, not a table"),
])
def test_a_structurally_wrong_file_is_a_config_error(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, text), profile="default")


def test_every_profile_is_checked_at_load_and_the_section_is_named(tmp_path):
    path = write(tmp_path, "[profiles.big.dml_genre]\nn_flods = 4\n")
    with pytest.raises(ConfigError, match=r"Unknown key 'n_flods' in "
                                          r"\[profiles.big.dml_genre\]"):
        load_config(path, profile="default")


@pytest.mark.parametrize("study,key", [("dml_genre", "n_folds"), ("dowhy_recs", "dml_folds")])
def test_one_rule_for_folds(tmp_path, study, key):
    with pytest.raises(ConfigError, match=f"'{key}' in .* is 1; it must be at least 2 "
                                          r"\(cross-fitting needs at least 2 folds\)"):
        load_config(write(tmp_path, f"[studies.{study}]\n{key} = 1\n"), profile="default")


@pytest.mark.parametrize("text,match", [
    ("[studies.dml_genre]\nsynthetic_users = 2\n",
     r"'synthetic_users' .* is 2; it must be at least 10"),
    ("[studies.dml_genre]\nsynthetic_users = 50\nsynthetic_ratings = 100\n",
     r"synthetic_ratings = 100 is fewer than 20 per user .* use at least 1,000"),
    ("[studies.dml_genre]\nsynthetic_users = 12\nsynthetic_ratings = 1000\nn_folds = 5\n",
     r"synthetic_users = 12 is too few for n_folds = 5"),
    ("[studies.dml_genre]\ncomparison_max_rows = 3\n",
     r"'comparison_max_rows' .* is 3; it must be at least 1000"),
    ("[studies.dowhy_recs]\nn_users = 5\n", r"'n_users' .* is 5; it must be at least 50"),
    ("[studies.dowhy_recs]\nbootstrap = 1\n", r"'bootstrap' .* is 1; it must be at least 10"),
])
def test_minimum_sizes_are_checked_up_front(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, text), profile="default")
