"""Download official GroupLens MovieLens releases into ``data/raw``.

``fetch("ml-latest-small")`` downloads ``<base>/ml-latest-small.zip`` and the
checksum GroupLens publishes beside it (``<base>/ml-latest-small.zip.md5``),
verifies the zip against it (and against a pinned SHA-256 when one is given),
extracts it into ``data/raw/<name>/`` and checks that the folder loads.  The
download goes to a temporary file first, so an interrupted fetch never leaves
a folder that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from analysis.data.movielens import FILES, detect_format
from analysis.errors import DataError, FetchError

BASE_URL = "https://files.grouplens.org/datasets/movielens"
BASE_URL_ENV = "ANALYSIS_MOVIELENS_BASE_URL"
DATASETS: dict[str, str] = {
    "ml-latest-small": "CSV, 100,836 ratings, 610 users (2018)",
    "ml-100k": "u.data/u.item, 100,000 ratings (1998)",
    "ml-1m": "'::' .dat, 1,000,209 ratings (2003)",
    "ml-10m": "'::' .dat, 10,000,054 ratings (2009)",
    "ml-20m": "CSV, 20,000,263 ratings (2016)",
    "ml-25m": "CSV, 25,000,095 ratings (2019)",
    "ml-32m": "CSV, 32,000,204 ratings (2024)",
    "ml-latest": "CSV, about 33 million ratings (updated)",
}
CHUNK = 1 << 20


def dataset_status(raw_dir: Path, extra: list[Path] | None = None) -> list[dict[str, str]]:
    """Which known datasets are present under ``raw_dir``, and the ``extra`` folders.

    An ``extra`` folder (e.g. ``$ANALYSIS_MOVIELENS_DIR``) whose name is not a known
    release gets its own row under its folder name.

    Returns
    -------
    list of dict
        ``name``, ``status`` (``present``, ``incomplete`` or ``missing``),
        ``format``, ``path`` and ``description``.
    """
    found: dict[str, Path] = {}
    custom = [f for f in extra or [] if _canonical_name(f.name) not in DATASETS]
    for folder in [*(extra or []), *(sorted(raw_dir.iterdir()) if raw_dir.is_dir() else [])]:
        if folder.is_dir():
            found.setdefault(_canonical_name(folder.name), folder)
    rows = [{"name": f.name, "status": "missing", "format": "", "path": str(f),
             "description": "named by you"} for f in custom]
    for name, desc in DATASETS.items():
        row = {"name": name, "status": "missing", "format": "", "path": "", "description": desc}
        if name in found:
            row["path"] = str(found[name])
        rows.append(row)
    for row in rows:
        if row["path"] and Path(row["path"]).exists():
            try:
                row["format"] = detect_format(Path(row["path"]))
                row["status"] = "present"
            except DataError:
                row["status"] = "incomplete"
    return rows


def _canonical_name(folder: str) -> str:
    return {"ml-10M100K": "ml-10m"}.get(folder, folder)


def md5_from_text(text: str) -> str:
    """The 32-hex digest in a GroupLens ``.md5`` file (BSD or GNU style)."""
    m = re.search(r"\b([0-9a-fA-F]{32})\b", text)
    if not m:
        raise FetchError(f"Checksum file does not contain an MD5 digest: {text[:80]!r}")
    return m.group(1).lower()


def fetch(name: str, raw_dir: Path, *, base_url: str | None = None, sha256: str | None = None,
          force: bool = False, progress: Callable[[int, int | None], None] | None = None,
          timeout: float = 30.0, status: Callable[[str], None] | None = None) -> Path:
    """Download, verify and extract one MovieLens release.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    raw_dir : Path
        Destination (``data/raw``); the dataset lands in ``raw_dir / name``.
    base_url : str, optional
        Mirror; defaults to ``$ANALYSIS_MOVIELENS_BASE_URL`` or GroupLens.
    sha256 : str, optional
        A pinned SHA-256 of the zip, checked in addition to the published MD5.
    force : bool
        Download again even if the dataset is present.
    progress : callable, optional
        Called with (bytes so far, total bytes or None).
    timeout : float
        Seconds to wait for the server to connect or send the next block.
    status : callable, optional
        Called with a line of text at each step (connecting, verifying, extracting).

    Returns
    -------
    Path
        The extracted dataset folder.

    Raises
    ------
    FetchError
        On an unknown name, a network error or a checksum mismatch.
    """
    if name not in DATASETS:
        raise FetchError(f"Unknown dataset '{name}'. Known: {', '.join(DATASETS)}.")
    target = raw_dir / name
    if target.is_dir() and not force:
        try:
            detect_format(target)
        except DataError as exc:
            raise FetchError(f"{target} exists but is incomplete ({exc}). Run `python -m "
                             f"analysis data fetch {name} --force` to download it again.") \
                from exc
        return target
    say = status or (lambda _msg: None)
    base = (base_url or os.environ.get(BASE_URL_ENV) or BASE_URL).rstrip("/")
    raw_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=raw_dir, prefix=".fetch-") as tmp:
        zpath = Path(tmp) / f"{name}.zip"
        say(f"connecting to {base}/{name}.zip (timeout {timeout:g} s)")
        md5, sha = _download(f"{base}/{name}.zip", zpath, progress, timeout)
        say("verifying the published MD5")
        expected = md5_from_text(_get_text(f"{base}/{name}.zip.md5", timeout))
        if md5 != expected:
            raise FetchError(f"{name}.zip failed its checksum: MD5 {md5}, published {expected}. "
                             "The download is corrupt or was tampered with; try again.")
        if sha256 and sha != sha256.lower():
            raise FetchError(f"{name}.zip SHA-256 {sha} does not match the pinned {sha256}.")
        say("extracting")
        folder = _extract(zpath, Path(tmp) / "unzipped")
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(folder), target)
    detect_format(target)
    return target


def _download(url: str, dest: Path, progress: Callable | None,
              timeout: float) -> tuple[str, str]:
    md5, sha = hashlib.md5(), hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, dest.open("wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            done = 0
            for block in iter(lambda: resp.read(CHUNK), b""):
                out.write(block)
                md5.update(block)
                sha.update(block)
                done += len(block)
                if progress:
                    progress(done, total)
    except (urllib.error.URLError, OSError) as exc:
        if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None),
                                                       TimeoutError):
            raise FetchError(f"Download of {url} timed out: the server sent nothing for "
                             f"{timeout:g} s. Try again later, raise --timeout, or use "
                             f"--base-url / ${BASE_URL_ENV} to point at a mirror.") from exc
        raise FetchError(f"Download of {url} failed: {exc}. Check the network or use "
                         f"--base-url / ${BASE_URL_ENV} to point at a mirror.") from exc
    return md5.hexdigest(), sha.hexdigest()


def _get_text(url: str, timeout: float) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode("ascii", errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        raise FetchError(f"Could not download the checksum {url}: {exc}.") from exc


def _extract(zpath: Path, dest: Path) -> Path:
    """Extract safely (no paths outside ``dest``) and return the folder holding the data."""
    try:
        with zipfile.ZipFile(zpath) as zf:
            for member in zf.namelist():
                resolved = (dest / member).resolve()
                if not resolved.is_relative_to(dest.resolve()):
                    raise FetchError(f"Refusing zip member outside the target: {member}")
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise FetchError(f"{zpath.name} is not a valid zip: {exc}") from exc
    wanted = {f for pair in FILES.values() for f in pair}
    for folder in sorted({p.parent for p in dest.rglob("*") if p.name in wanted}):
        try:
            detect_format(folder)
            return folder
        except DataError:
            continue
    raise FetchError(f"{zpath.name} holds no MovieLens folder.")
