"""Loaders for every GroupLens MovieLens format, into one canonical schema.

Canonical schema
----------------
ratings : DataFrame
    ``user`` (int64), ``item`` (int64), ``rating`` (float64, 0.5–5),
    ``timestamp`` (datetime64, UTC without time zone).
items : DataFrame
    ``item`` (int64), ``title`` (str), ``year`` (Int64, may be missing),
    ``genres`` (str, ``|``-separated, empty when none are listed).

Formats, detected from the files in a folder
--------------------------------------------
``csv``
    ``ratings.csv`` + ``movies.csv``: ml-latest-small, ml-latest, ml-20m, ml-25m, ml-32m.
``dat``
    ``ratings.dat`` + ``movies.dat`` with ``::`` separators: ml-1m, ml-10m.
``100k``
    ``u.data`` (tab-separated) + ``u.item`` (``|``-separated, genre flags): ml-100k.

Validation never loads part of a file silently: a missing file, wrong columns,
a row that does not parse, an id that is not an integer, a rating that is not a
half star between 0.5 and 5, a timestamp before MovieLens began (1995) or in the
future, a user rating the same movie twice, a duplicate movie id, or (ml-100k) a
user missing from ``u.user`` raises :class:`~analysis.errors.DataError` with the
file, the line and the fix.

Duplicate (user, movie) ratings are rejected rather than deduplicated: no
GroupLens release has any, so a duplicate means a merged or corrupted file, and
keeping one of two conflicting ratings would change the data silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from analysis.data.common import DataRef, data_env, files_fingerprint
from analysis.errors import DataError

Format = Literal["csv", "dat", "100k"]
MOVIELENS_ENV = "ANALYSIS_MOVIELENS_DIR"

FILES: dict[Format, tuple[str, str]] = {
    "csv": ("ratings.csv", "movies.csv"),
    "dat": ("ratings.dat", "movies.dat"),
    "100k": ("u.data", "u.item"),
}
MOVIELENS_START = pd.Timestamp("1995-01-01")
"""MovieLens began collecting ratings in 1995; an earlier timestamp cannot be right."""
CSV_RATING_COLUMNS = ["userId", "movieId", "rating", "timestamp"]
CSV_MOVIE_COLUMNS = ["movieId", "title", "genres"]
USERS_100K = "u.user"
GENRES_100K = ["unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime",
               "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
               "Romance", "Sci-Fi", "Thriller", "War", "Western"]
FIX = ("Re-download the dataset with `python -m analysis data fetch <name>` "
       "or point the study at a complete GroupLens folder.")


@dataclass(frozen=True)
class MovieLensData:
    """A MovieLens dataset in the canonical schema.

    Attributes
    ----------
    ratings, items : DataFrame
        See the module docstring.
    name : str
        Dataset name (folder name for real data).
    source : {"real", "synthetic"}
    fingerprint : str
    truth : dict
        For synthetic data, the planted effects (e.g. ``{"ate": 0.15}``) and,
        under ``"effects"``, each rating's individual effect; empty for real data.
    """

    ratings: pd.DataFrame
    items: pd.DataFrame
    name: str
    source: Literal["real", "synthetic"]
    fingerprint: str
    truth: dict = field(default_factory=dict)


def detect_format(folder: str | Path) -> Format:
    """The MovieLens format of ``folder``, from the files it holds.

    Raises
    ------
    DataError
        If the folder is missing, or holds no complete set of MovieLens files; the
        message names what is missing and, for the parent of a dataset, the
        subfolder to use instead.
    """
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"MovieLens folder {folder} does not exist. {FIX}")
    if not folder.is_dir():
        raise DataError(f"{folder} is a file, not a MovieLens folder. Point at the folder "
                        f"that holds ratings.csv and movies.csv. {FIX}")
    partial = []
    for fmt, (ratings, items) in FILES.items():
        has = [(folder / ratings).is_file(), (folder / items).is_file()]
        if all(has):
            return fmt
        if any(has):
            missing = ratings if not has[0] else items
            partial.append(f"{missing} is missing (found {items if has[1] else ratings})")
    if partial:
        raise DataError(f"Incomplete MovieLens folder {folder}: {'; '.join(partial)}. {FIX}")
    inside = [p for p in sorted(folder.iterdir()) if p.is_dir() and
              any(all((p / f).is_file() for f in pair) for pair in FILES.values())]
    if inside:
        names = ", ".join(p.name for p in inside[:3])
        raise DataError(f"{folder} holds no MovieLens files itself, but its subfolder(s) "
                        f"{names} do: point at {inside[0]} instead.")
    raise DataError(f"{folder} holds no MovieLens files. Expected ratings.csv + movies.csv, "
                    f"ratings.dat + movies.dat, or u.data + u.item. {FIX}")


def load_movielens(folder: str | Path) -> MovieLensData:
    """Load and validate a MovieLens folder of any GroupLens format.

    Parameters
    ----------
    folder : str or Path
        A folder such as ``ml-latest-small/``.

    Returns
    -------
    MovieLensData
    """
    folder = Path(folder)
    fmt = detect_format(folder)
    r_path, i_path = (folder / f for f in FILES[fmt])
    if fmt == "csv":
        ratings, items = _read_csv_ratings(r_path), _read_csv_movies(i_path)
    elif fmt == "dat":
        ratings, items = _read_dat_ratings(r_path), _read_dat_movies(i_path)
    else:
        ratings, items = _read_100k_ratings(r_path), _read_100k_items(i_path)
    _validate(ratings, items, r_path, i_path)
    if fmt == "100k":
        _check_users_100k(ratings, folder / USERS_100K)
    return MovieLensData(ratings=ratings, items=items, name=folder.name, source="real",
                         fingerprint=files_fingerprint(_files(folder, fmt)))


def movielens_ref(folder: str | Path) -> DataRef:
    """A :class:`DataRef` for a real folder, hashing its files without parsing them."""
    folder = Path(folder)
    fmt = detect_format(folder)
    return DataRef(name=folder.name, source="real", path=folder,
                   fingerprint=files_fingerprint(_files(folder, fmt)))


def _files(folder: Path, fmt: Format) -> list[Path]:
    """The files a dataset's content is: ratings, items and (ml-100k) users."""
    extra = [folder / USERS_100K] if fmt == "100k" and (folder / USERS_100K).is_file() else []
    return [folder / f for f in FILES[fmt]] + extra


def candidate_folders(root: Path | None = None) -> list[Path]:
    """The ``data/raw/ml-*`` folders under the project root (the ones ``data fetch`` makes)."""
    if root is None:
        return []
    raw = root / "data" / "raw"
    if not raw.is_dir():
        return []
    return sorted(p for p in raw.iterdir() if p.is_dir() and p.name.startswith("ml"))


@dataclass(frozen=True)
class MovieLensChoice:
    """Which real MovieLens folder a study uses, and why.

    Attributes
    ----------
    folder : Path or None
        None means synthetic data.
    reason : str
        Where the folder was named, or why synthetic data is used, in words.
    """

    folder: Path | None
    reason: str


def choose_movielens(source: Literal["auto", "real", "synthetic"], path: str = "",
                     root: Path | None = None) -> MovieLensChoice:
    """Decide which MovieLens data a study uses; a folder the user named is never skipped.

    The order is: the study's ``path``, then ``$ANALYSIS_MOVIELENS_DIR``, then the
    ``data/raw/ml-*`` folders.  A folder named in any of these places must hold a
    complete dataset, or :class:`DataError` names the folder, what is missing and the
    fix; synthetic data is used only with ``source = "synthetic"``, or with
    ``source = "auto"`` when nothing at all was named.

    Raises
    ------
    DataError
        If a named folder is incomplete, missing or not a dataset, or if
        ``source = "real"`` and nothing was named.
    """
    if source == "synthetic":
        return MovieLensChoice(None, "source = 'synthetic' in analysis.toml")
    env = data_env(MOVIELENS_ENV)
    if path:
        named = [(Path(path), "the study's 'path' in analysis.toml",
                  "fix 'path', or set it to \"\" to use the default search")]
    elif env:
        named = [(Path(env).expanduser(), f"${MOVIELENS_ENV}",
                  f"point ${MOVIELENS_ENV} at a complete MovieLens folder, or unset it")]
    else:
        named = [(p, "data/raw (where `python -m analysis data fetch` puts datasets)",
                  f"run `python -m analysis data fetch {p.name} --force` to download it "
                  "again, or remove the folder") for p in candidate_folders(root)]
    for folder, where, fix in named:
        try:
            detect_format(folder)
        except DataError as exc:
            raise DataError(f"{where} names {folder}, which cannot be used: {exc} To go on, "
                            f"{fix}. The book never swaps named data for synthetic data.") \
                from exc
        return MovieLensChoice(folder, f"from {where}")
    if source == "real":
        raise DataError("source = 'real' but no MovieLens data was named. Set "
                        f"${MOVIELENS_ENV}, set the study's 'path', or run "
                        "`python -m analysis data fetch ml-latest-small`.")
    return MovieLensChoice(None, f"no MovieLens folder was named (no 'path', no "
                                 f"${MOVIELENS_ENV}, nothing in data/raw)")


def resolve_movielens(source: Literal["auto", "real", "synthetic"], path: str = "",
                      root: Path | None = None) -> Path | None:
    """The real folder a study should use, or None for synthetic data.

    See :func:`choose_movielens`, which also says why.
    """
    return choose_movielens(source, path, root).folder


# --------------------------------------------------------------------------- readers


def _read(path: Path, **kw) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kw)
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path.name}: rows do not parse ({exc}). {FIX}") from exc


def _check_header(path: Path, found: list[str], expected: list[str]) -> None:
    if list(found) != expected:
        raise DataError(f"{path.name} has columns {list(found)}; expected {expected}. "
                        "Is this a GroupLens MovieLens file?")


def _numeric(df: pd.DataFrame, path: Path, cols: list[str], header_lines: int) -> pd.DataFrame:
    """Convert ``cols`` to numbers, naming the first line that does not parse."""
    out = df.copy()
    for col in cols:
        num = pd.to_numeric(out[col], errors="coerce")
        bad = num.isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{path.name} line {i + 1 + header_lines}: {col} = "
                            f"{df[col].iloc[i]!r} does not parse as a number "
                            f"({int(bad.sum())} such rows). {FIX}")
        out[col] = num
    return out


def _first_bad(path: Path, bad: np.ndarray, header_lines: int, what: str, values: pd.Series,
               fix: str) -> None:
    """Raise naming the first line where ``bad`` holds, if any."""
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        v = values.iloc[i]
        shown = f"{float(v):g}" if isinstance(v, int | float | np.number) else repr(v)
        raise DataError(f"{path.name} line {i + 1 + header_lines}: {what} "
                        f"({shown}; {int(bad.sum())} such rows). {fix}")


def _ratings_frame(raw: pd.DataFrame, path: Path, header_lines: int) -> pd.DataFrame:
    raw = _numeric(raw, path, ["user", "item", "rating", "timestamp"], header_lines)
    for col in ("user", "item", "timestamp"):
        v = raw[col].to_numpy(dtype=np.float64)
        _first_bad(path, v != np.floor(v), header_lines, f"{col} is not an integer", raw[col],
                   "Ids and timestamps are whole numbers in every GroupLens release. " + FIX)
    rating = raw["rating"].to_numpy(dtype=np.float64)
    _first_bad(path, (rating * 2 != np.round(rating * 2)) & (rating >= 0.5) & (rating <= 5),
               header_lines, "rating is not a half star", raw["rating"],
               "MovieLens ratings are whole or half stars (0.5, 1.0, ..., 5.0). " + FIX)
    ts = raw["timestamp"].to_numpy(dtype=np.float64)
    lo, hi = MOVIELENS_START.timestamp(), pd.Timestamp.now().timestamp()
    _first_bad(path, ts < lo, header_lines, "timestamp is before MovieLens began (1995)",
               raw["timestamp"], "A cut or corrupted file gives such values. " + FIX)
    _first_bad(path, ts > hi, header_lines, "timestamp is in the future", raw["timestamp"], FIX)
    out = pd.DataFrame({
        "user": raw["user"].astype("int64"),
        "item": raw["item"].astype("int64"),
        "rating": raw["rating"].astype("float64"),
        "timestamp": pd.to_datetime(raw["timestamp"].astype("int64"), unit="s"),
    })
    dup = out.duplicated(["user", "item"], keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        examples = "; ".join(f"line {i + 1 + header_lines}: user {out['user'].iloc[i]}, movie "
                             f"{out['item'].iloc[i]}, rating {out['rating'].iloc[i]:g}"
                             for i in rows[:4])
        n_pairs = int(out[dup].drop_duplicates(["user", "item"]).shape[0])
        raise DataError(f"{path.name}: {n_pairs} (user, movie) pairs are rated more than once "
                        f"({int(dup.sum())} rows; {examples}). No GroupLens release has "
                        "duplicates, so this file was merged or corrupted; it is rejected "
                        "rather than silently deduplicated. " + FIX)
    return out


def _read_csv_ratings(path: Path) -> pd.DataFrame:
    head = _read(path, nrows=0)
    _check_header(path, list(head.columns), CSV_RATING_COLUMNS)
    try:  # fast path: typed parse; fall back to a diagnosing parse on failure
        raw = pd.read_csv(path, dtype={"userId": "int64", "movieId": "int64",
                                       "rating": "float64", "timestamp": "int64"},
                          engine="c")
    except (ValueError, TypeError, pd.errors.ParserError):
        raw = _read(path, dtype=str, keep_default_na=False)
    raw.columns = ["user", "item", "rating", "timestamp"]
    return _ratings_frame(raw, path, header_lines=1)


def _read_csv_movies(path: Path) -> pd.DataFrame:
    raw = _read(path, dtype=str, keep_default_na=False)
    _check_header(path, list(raw.columns), CSV_MOVIE_COLUMNS)
    raw.columns = ["item", "title", "genres"]
    raw = _numeric(raw, path, ["item"], 1)
    return _items_frame(raw["item"], raw["title"], raw["genres"], year=None, path=path,
                        header_lines=1)


def _read_dat_ratings(path: Path) -> pd.DataFrame:
    # '::' separated integers: read with ':' so the fast C parser applies, then
    # check the empty separator columns so a malformed row cannot slip through.
    raw = _read(path, sep=":", header=None, dtype=str, keep_default_na=False)
    if raw.shape[1] != 7 or (raw[[1, 3, 5]] != "").any().any():
        raise DataError(f"{path.name} is not '::'-separated with 4 fields "
                        f"(UserID::MovieID::Rating::Timestamp). {FIX}")
    raw = raw[[0, 2, 4, 6]].set_axis(["user", "item", "rating", "timestamp"], axis=1)
    return _ratings_frame(raw, path, header_lines=0)


def _read_dat_movies(path: Path) -> pd.DataFrame:
    lines = _read_text(path).splitlines()
    parts = pd.Series(lines, dtype=str).str.split("::", n=2, expand=True)
    if parts.shape[1] != 3 or parts.isna().any().any():
        raise DataError(f"{path.name} rows must be MovieID::Title::Genres. {FIX}")
    raw = _numeric(parts.set_axis(["item", "title", "genres"], axis=1), path, ["item"], 0)
    return _items_frame(raw["item"], raw["title"], raw["genres"], year=None, path=path,
                        header_lines=0)


def _read_100k_ratings(path: Path) -> pd.DataFrame:
    raw = _read(path, sep="\t", header=None, dtype=str, keep_default_na=False)
    if raw.shape[1] != 4:
        raise DataError(f"{path.name} has {raw.shape[1]} tab-separated columns; expected 4 "
                        f"(user, item, rating, timestamp). {FIX}")
    raw.columns = ["user", "item", "rating", "timestamp"]
    return _ratings_frame(raw, path, header_lines=0)


def _read_100k_items(path: Path) -> pd.DataFrame:
    lines = _read_text(path).splitlines()
    parts = pd.Series(lines, dtype=str).str.split("|", expand=True)
    if parts.shape[1] != 5 + len(GENRES_100K) or parts.isna().any().any():
        raise DataError(f"{path.name} rows must have {5 + len(GENRES_100K)} '|'-separated "
                        f"fields (id, title, dates, URL, {len(GENRES_100K)} genre flags). {FIX}")
    flags = _numeric(parts.iloc[:, 5:].set_axis(GENRES_100K, axis=1), path, GENRES_100K, 0)
    labels = pd.Series([f"{g}|" for g in GENRES_100K], index=GENRES_100K)
    genres = flags.astype(bool).dot(labels).str.rstrip("|")  # "Drama|Romance"
    year = pd.to_datetime(parts[2], format="%d-%b-%Y", errors="coerce").dt.year
    raw = _numeric(pd.DataFrame({"item": parts[0]}), path, ["item"], 0)
    return _items_frame(raw["item"], parts[1], genres, year=year, path=path, header_lines=0)


def _check_users_100k(ratings: pd.DataFrame, path: Path) -> None:
    """ml-100k: every rating's user must be listed in ``u.user``."""
    if not path.is_file():
        raise DataError(f"{path.parent}: {path.name} is missing; ml-100k lists its users "
                        f"there and ratings are checked against it. {FIX}")
    parts = pd.Series(_read_text(path).splitlines(), dtype=str).str.split("|", expand=True)
    if parts.shape[1] != 5:
        raise DataError(f"{path.name} rows must have 5 '|'-separated fields (id, age, gender, "
                        f"occupation, zip code). {FIX}")
    users = _numeric(parts[[0]].set_axis(["user"], axis=1), path, ["user"], 0)["user"]
    unknown = ~ratings["user"].isin(users.astype("int64"))
    if unknown.any():
        ids = sorted(set(ratings.loc[unknown, "user"].tolist()))
        raise DataError(f"u.data: {int(unknown.sum())} ratings are by users missing from "
                        f"{path.name} (e.g. user {', '.join(map(str, ids[:5]))}). {FIX}")


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # ml-1m and ml-100k are latin-1
        return data.decode("latin-1")


def _items_frame(item: pd.Series, title: pd.Series, genres: pd.Series,
                 year: pd.Series | None, *, path: Path, header_lines: int) -> pd.DataFrame:
    v = item.to_numpy(dtype=np.float64)
    _first_bad(path, v != np.floor(v), header_lines, "movie id is not an integer", item,
               "Movie ids are whole numbers in every GroupLens release. " + FIX)
    title = title.astype(str).str.strip()
    if year is None:
        year = pd.to_numeric(title.str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")
    genres = genres.astype(str).str.replace("(no genres listed)", "", regex=False)
    genres = genres.str.replace("Children's", "Children", regex=False)
    genres = genres.str.replace("unknown", "", regex=False).str.strip("|")
    return pd.DataFrame({"item": item.astype("int64").to_numpy(),
                         "title": title.to_numpy(),
                         "year": pd.array(year.to_numpy(dtype=float), dtype="Int64"),
                         "genres": genres.to_numpy()})


def _validate(ratings: pd.DataFrame, items: pd.DataFrame, path: Path, items_path: Path) -> None:
    bad = (ratings["rating"] < 0.5) | (ratings["rating"] > 5.0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path.name}: {int(bad.sum())} ratings outside 0.5–5 (first at row "
                        f"{i + 1}: {ratings['rating'].iloc[i]}). {FIX}")
    dup = items["item"].duplicated(keep=False)
    if dup.any():
        ids = sorted(set(items.loc[dup, "item"].tolist()))
        raise DataError(f"{items_path.name}: movie id(s) {', '.join(map(str, ids[:10]))} appear "
                        f"more than once ({int(dup.sum())} rows). Each movie must be listed "
                        f"once. {FIX}")
    unknown = ~ratings["item"].isin(items["item"])
    if unknown.any():
        raise DataError(f"{path.name}: {int(unknown.sum())} ratings refer to movies missing "
                        f"from the items file (e.g. {int(ratings['item'][unknown].iloc[0])}). "
                        f"{FIX}")
    if ratings.empty:
        raise DataError(f"{path.name} has no ratings. {FIX}")
