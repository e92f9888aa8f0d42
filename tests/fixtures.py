"""Small MovieLens folders in every GroupLens format, written by the tests."""

from __future__ import annotations

from pathlib import Path

RATINGS = [(1, 10, 4.0, 964982703), (1, 20, 3.5, 964981247), (2, 10, 5.0, 964982224),
           (2, 30, 0.5, 964983815), (3, 20, 2.0, 964982931)]
MOVIES = [(10, "Toy Story (1995)", "Adventure|Animation|Children|Comedy|Fantasy"),
          (20, "Titanic (1997)", "Drama|Romance"),
          (30, "Untitled", "(no genres listed)")]
RELEASE_100K = {10: "01-Jan-1995", 20: "01-Jan-1997", 30: ""}
"""ml-100k's release dates of these movies (its u.item has "01-Jan-1997" for Titanic and an
empty date for its one untitled movie); other movies get none."""


def write_csv(folder: Path, ratings=RATINGS, movies=MOVIES) -> Path:
    """ml-latest-small style: ratings.csv + movies.csv with headers."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["userId,movieId,rating,timestamp"] + [",".join(map(str, r)) for r in ratings]
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    rows = ["movieId,title,genres"] + [f'{m},"{t}",{g}' for m, t, g in movies]
    (folder / "movies.csv").write_text("\n".join(rows) + "\n")
    return folder


def write_dat(folder: Path, ratings=RATINGS, movies=MOVIES, *, encoding="utf-8") -> Path:
    """ml-1m / ml-10m style: '::'-separated ratings.dat + movies.dat, no header."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text(
        "\n".join("::".join(str(int(v)) if i != 2 else f"{v:g}" for i, v in enumerate(r))
                  for r in ratings) + "\n")
    (folder / "movies.dat").write_bytes(
        ("\n".join(f"{m}::{t}::{g}" for m, t, g in movies) + "\n").encode(encoding))
    return folder


GENRES_100K = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
               "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
               "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def write_100k(folder: Path, ratings=None, movies=MOVIES, users=None) -> Path:
    """ml-100k style: tab-separated u.data, '|'-separated u.item with genre flags and
    u.user (every rating's user by default)."""
    folder.mkdir(parents=True, exist_ok=True)
    ratings = ratings or [(u, i, int(max(1, r)), t) for u, i, r, t in RATINGS]
    (folder / "u.data").write_text("\n".join("\t".join(map(str, r)) for r in ratings) + "\n")
    users = sorted({int(r[0]) for r in ratings}) if users is None else users
    (folder / "u.user").write_text("".join(f"{u}|30|F|other|00000\n" for u in users))
    lines = []
    for m, t, g in movies:
        names = {"Children": "Children's"}
        wanted = {names.get(x, x) for x in g.split("|")}
        flags = ["1" if name in wanted else "0" for name in GENRES_100K]
        if not any(f == "1" for f in flags):
            flags[0] = "1"
        lines.append("|".join([str(m), t, RELEASE_100K.get(m, ""), "", "http://x"] + flags))
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return folder
