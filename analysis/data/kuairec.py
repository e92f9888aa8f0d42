"""The KuaiRec interaction log: its real-format loader, in one canonical schema.

KuaiRec 2.0 (Gao et al., 2022) ships two interaction matrices of a short-video app,
``data/small_matrix.csv`` (1,411 users, fully observed) and ``data/big_matrix.csv``
(7,176 users), with the columns

``user_id, video_id, play_duration, video_duration, time, date, timestamp, watch_ratio``

where durations are in milliseconds, ``time`` is a date-time string, ``date`` an
integer ``YYYYMMDD``, ``timestamp`` Unix seconds and ``watch_ratio`` is
``play_duration / video_duration`` (above 1 when a video is replayed).

Canonical schema
----------------
log : DataFrame
    ``user`` (int64), ``video`` (int64), ``play_duration`` and ``video_duration``
    (float64, milliseconds), ``watch_ratio`` (float64), ``day`` (datetime64, the
    calendar day of the play).

Known quirks of the real files, accepted on purpose
--------------------------------------------------
* ``small_matrix.csv`` leaves ``time``, ``date`` and ``timestamp`` empty for its
  second, forced-exposure stage (the maintainers confirm it): such a play cannot be
  put on a day, so it is dropped and counted (``dropped_no_day``).
* ``big_matrix.csv`` repeats some (user, video, time) records: exact repeats are
  dropped and counted (``dropped_duplicates``).

Everything else that is wrong stops with :class:`~analysis.errors.DataError`
naming the file, the column, the line and the fix: a missing column, a value that
is not a number, a negative duration or watch ratio, a timestamp that does not
parse.  The folder is only ever read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from analysis.data.common import DataRef, data_env, files_fingerprint
from analysis.errors import DataError

Matrix = Literal["small", "big"]
KUAIREC_ENV = "ANALYSIS_KUAIREC_DIR"
COLUMNS = ["user_id", "video_id", "play_duration", "video_duration", "time", "date",
           "timestamp", "watch_ratio"]
NUMERIC = ["user_id", "video_id", "play_duration", "video_duration", "watch_ratio"]
FILES: dict[Matrix, str] = {"small": "small_matrix.csv", "big": "big_matrix.csv"}
FIX = ("Download KuaiRec 2.0 from https://kuairec.com (its `data/` folder holds the "
       "matrices) and point the study at it with `path` or $ANALYSIS_KUAIREC_DIR.")


@dataclass(frozen=True)
class KuaiRecLog:
    """An interaction log in the canonical schema.

    Attributes
    ----------
    log : DataFrame
        See the module docstring.
    name, source, fingerprint : str
        As in :class:`~analysis.data.common.DataRef`.
    dropped_no_day, dropped_duplicates : int
        Rows of the file that were dropped, and why (see the module docstring).
    truth : dict
        For simulated logs, what the simulator planted; empty for real data.
    """

    log: pd.DataFrame
    name: str
    source: Literal["real", "synthetic"]
    fingerprint: str
    dropped_no_day: int = 0
    dropped_duplicates: int = 0
    truth: dict = field(default_factory=dict)


def matrix_file(folder: str | Path, matrix: Matrix = "small") -> Path:
    """The matrix file inside a KuaiRec folder (the release's root or its ``data/``).

    Raises
    ------
    DataError
        If the folder or the file is missing; the message says where it looked.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"KuaiRec folder {folder} does not exist. {FIX}")
    for candidate in (folder / FILES[matrix], folder / "data" / FILES[matrix]):
        if candidate.is_file():
            return candidate
    other = "big" if matrix == "small" else "small"
    has_other = any((folder / d / FILES[other]).is_file() for d in (".", "data"))
    hint = (f" It holds {FILES[other]}: set matrix = \"{other}\" to use it." if has_other
            else "")
    raise DataError(f"{folder} holds no {FILES[matrix]} (looked in it and in its data/ "
                    f"subfolder).{hint} {FIX}")


def candidate_folders(root: Path | None) -> list[Path]:
    """``data/raw/KuaiRec*`` folders under the project root."""
    raw = root / "data" / "raw" if root is not None else None
    if raw is None or not raw.is_dir():
        return []
    return sorted(p for p in raw.iterdir() if p.is_dir() and p.name.lower().startswith("kuairec"))


def choose_kuairec(source: Literal["auto", "real", "synthetic"], path: str = "",
                   root: Path | None = None, matrix: Matrix = "small") -> tuple[Path | None, str]:
    """The KuaiRec matrix a study uses (or None for the simulator), and why.

    As for MovieLens, a folder the user named (``path``, ``$ANALYSIS_KUAIREC_DIR`` or
    ``data/raw/KuaiRec*``) is used or the run stops with an error; the simulator runs
    only with ``source = "synthetic"`` or when nothing was named.
    """
    if source == "synthetic":
        return None, "source = 'synthetic' in analysis.toml"
    env = data_env(KUAIREC_ENV)
    if path:
        named = [(Path(path), "the study's 'path' in analysis.toml")]
    elif env:
        named = [(Path(env).expanduser(), f"${KUAIREC_ENV}")]
    else:
        named = [(p, "data/raw") for p in candidate_folders(root)]
    for folder, where in named:
        try:
            return matrix_file(folder, matrix), f"from {where}"
        except DataError as exc:
            raise DataError(f"{where} names {folder}, which cannot be used: {exc} The book "
                            "never swaps named data for simulated data.") from exc
    if source == "real":
        raise DataError(f"source = 'real' but no KuaiRec folder was named. Set "
                        f"${KUAIREC_ENV} or the study's 'path'. {FIX}")
    return None, f"no KuaiRec folder was named (no 'path', no ${KUAIREC_ENV}, nothing in " \
                 "data/raw)"


def kuairec_ref(file: Path) -> DataRef:
    """A :class:`DataRef` for a real matrix file (content hash, no parsing)."""
    return DataRef(name=f"KuaiRec {file.stem}", source="real", path=file.parent,
                   fingerprint=files_fingerprint([file]))


def load_kuairec(file: str | Path) -> KuaiRecLog:
    """Read and validate a KuaiRec matrix file into the canonical schema.

    Parameters
    ----------
    file : str or Path
        ``small_matrix.csv`` or ``big_matrix.csv`` (or a file in the same format).

    Returns
    -------
    KuaiRecLog
    """
    file = Path(file)
    try:
        head = pd.read_csv(file, nrows=0)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{file.name} cannot be read as CSV ({exc}). {FIX}") from exc
    missing = [c for c in COLUMNS if c not in head.columns]
    if missing:
        raise DataError(f"{file.name} lacks column(s) {missing}; a KuaiRec matrix has "
                        f"{COLUMNS}. Is this a KuaiRec interaction matrix? {FIX}")
    try:
        raw = pd.read_csv(file, usecols=COLUMNS, dtype=str, keep_default_na=False,
                          engine="c")
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{file.name}: rows do not parse ({exc}). {FIX}") from exc
    if raw.empty:
        raise DataError(f"{file.name} has no rows. {FIX}")
    values = {c: _numeric(raw[c], file, c) for c in NUMERIC}
    for col in ("play_duration", "video_duration", "watch_ratio"):
        _first(file, col, values[col] < 0, raw[col], "is negative",
               "Durations and watch ratios cannot be negative; the file is corrupt.")
    for col in ("user_id", "video_id"):
        v = values[col]
        _first(file, col, v != np.floor(v), raw[col], "is not an integer id", "")
    day, no_day = _days(raw, file)
    log = pd.DataFrame({"user": values["user_id"].astype(np.int64),
                        "video": values["video_id"].astype(np.int64),
                        "play_duration": values["play_duration"],
                        "video_duration": values["video_duration"],
                        "watch_ratio": values["watch_ratio"], "day": day,
                        "time": raw["time"].to_numpy()})
    log = log[~no_day]
    dup = log.duplicated(["user", "video", "time"], keep="first")
    log = log[~dup].drop(columns="time").reset_index(drop=True)
    return KuaiRecLog(log=log, name=f"KuaiRec {file.stem}", source="real",
                      fingerprint=files_fingerprint([file]), dropped_no_day=int(no_day.sum()),
                      dropped_duplicates=int(dup.sum()))


def _numeric(col: pd.Series, file: Path, name: str) -> np.ndarray:
    out = pd.to_numeric(col.str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    _first(file, name, ~np.isfinite(out), col, "is not a number",
           "Every row needs numeric ids, durations and watch ratio.")
    return out


def _first(file: Path, col: str, bad: np.ndarray, shown: pd.Series, what: str,
           fix: str) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{file.name} line {i + 2}, column {col}: {shown.iloc[i]!r} {what} "
                        f"({int(bad.sum())} such rows). {fix} {FIX}".replace("  ", " "))


def _days(raw: pd.DataFrame, file: Path) -> tuple[np.ndarray, np.ndarray]:
    """The calendar day of every play (from ``date``, else ``timestamp``), and which rows
    have none.  A day or timestamp that is present but does not parse is an error."""
    date_text = raw["date"].str.strip().str.replace(r"\.0$", "", regex=True)
    ts_text = raw["timestamp"].str.strip()
    date = pd.to_datetime(date_text, format="%Y%m%d", errors="coerce")
    _first(file, "date", (date_text != "").to_numpy() & date.isna().to_numpy(), raw["date"],
           "is not a YYYYMMDD date", "")
    ts = pd.to_numeric(ts_text, errors="coerce")
    _first(file, "timestamp", (ts_text != "").to_numpy() & ~np.isfinite(ts.to_numpy()),
           raw["timestamp"], "is not a number", "")
    from_ts = pd.to_datetime(ts, unit="s", errors="coerce").dt.normalize()
    day = date.fillna(from_ts)
    return day.to_numpy(dtype="datetime64[ns]"), day.isna().to_numpy()
