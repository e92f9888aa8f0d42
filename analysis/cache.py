"""On-disk cache of study results.

An entry is one zip file named by its key.  It holds ``meta.json`` (magic,
format version, key and a SHA-256 of every member), the facts, provenance and
diagnostics as JSON, and each table as Parquet.  Entries are written to a
temporary file and moved into place with :func:`os.replace`, so a crash never
leaves a half-written entry under a real name.  On read, anything unexpected
(bad zip, wrong magic or key, checksum mismatch) raises :class:`CacheError`,
and the runner recomputes.  No pickle is ever read, so a foreign file cannot
run code.

Every entry records the data it was computed on (name, source, fingerprint).  ``put``
refuses a result computed on other data than the key names, and ``get`` refuses an entry
whose data does not match the reference the reader resolved, so a result computed on a
worker that saw other (or no) data can never be served as the named data's.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.data.common import DataRef
from analysis.errors import CacheError
from analysis.result import Diagnostic, Provenance, StudyResult, package_versions

MAGIC = "analysis-study-result"
FORMAT = 2
CACHE_ENV = "ANALYSIS_CACHE_DIR"
TMP_PREFIX = ".tmp-"
STALE_TMP_SECONDS = 3600
"""A temporary file older than this was left by an interrupted write (writes take seconds)."""


def cache_key(study: str, config: dict[str, Any], data_fingerprint: str,
              code_fingerprint: str, dataset: str = "",
              packages: dict[str, str] | None = None) -> str:
    """SHA-256 of the study name, its settings, its data (content and name), its code and the
    versions of the numerical packages that compute it.

    The dataset's name is part of the key because results show it; the package versions
    because a new LightGBM or scikit-learn can change every number.
    """
    payload = json.dumps({"study": study, "config": config, "data": data_fingerprint,
                          "dataset": dataset, "code": code_fingerprint, "format": FORMAT,
                          "packages": package_versions() if packages is None else packages},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One cache entry, as ``python -m analysis cache list`` shows it."""

    path: Path
    study: str
    dataset: str
    source: str
    profile: str
    bytes: int
    age_days: float


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class ResultCache:
    """A folder of cached :class:`StudyResult` entries.

    Parameters
    ----------
    directory : Path
        Where entries live; created on first write.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def check_writable(self) -> None:
        """Make sure entries can be written here, before any computation starts.

        Raises
        ------
        CacheError
            If the folder is a file, cannot be created, or is not writable; the
            message names the folder and ``$ANALYSIS_CACHE_DIR``.
        """
        d = self.directory
        fix = (f"Point ${CACHE_ENV} at a writable folder (or unset it to use data/cache "
               "in the project).")
        if d.exists() and not d.is_dir():
            raise CacheError(f"The result cache {d} is a file, not a folder. {fix}")
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=d, prefix=TMP_PREFIX, suffix=".probe")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise CacheError(f"The result cache {d} cannot be written: "
                             f"{exc.strerror or exc}. {fix}") from exc
        self.clean_stale()

    def clean_stale(self, older_than: float = STALE_TMP_SECONDS) -> list[Path]:
        """Remove temporary files left by interrupted writes; return what was removed."""
        removed = []
        if not self.directory.is_dir():
            return removed
        now = time.time()
        for p in self.directory.glob(f"{TMP_PREFIX}*"):
            try:
                if now - p.stat().st_mtime > older_than:
                    p.unlink()
                    removed.append(p)
            except OSError:  # another process removed or is using it
                continue
        return removed

    def entries(self) -> list[Entry]:
        """Every entry: study, dataset, size and age (unreadable entries show as corrupt)."""
        out = []
        now = time.time()
        for p in sorted(self.directory.glob("*.zip")) if self.directory.is_dir() else []:
            if p.name.startswith(TMP_PREFIX):
                continue
            st = p.stat()
            try:
                with zipfile.ZipFile(p) as zf:
                    prov = json.loads(zf.read("provenance.json"))
                study, dataset, source, profile = (prov["study"], prov["dataset"],
                                                   prov["source"], prov["profile"])
            except (zipfile.BadZipFile, KeyError, ValueError, OSError):
                study, dataset, source, profile = p.stem.rsplit("-", 1)[0], "?", "corrupt", "?"
            out.append(Entry(p, study, dataset, source, profile, st.st_size,
                             (now - st.st_mtime) / 86400))
        return out

    def prune(self, *, older_than_days: float = 0.0, study: str | None = None) -> list[Entry]:
        """Delete entries at least ``older_than_days`` old (of one study if given)."""
        gone = [e for e in self.entries() if e.age_days >= older_than_days
                and (study is None or e.study == study)]
        for e in gone:
            e.path.unlink(missing_ok=True)
        self.clean_stale(older_than=0 if older_than_days == 0 else STALE_TMP_SECONDS)
        return gone

    def path(self, study: str, key: str) -> Path:
        """The entry file for ``key``."""
        return self.directory / f"{study}-{key[:32]}.zip"

    def get(self, study: str, key: str, *, data: DataRef) -> StudyResult | None:
        """The cached result, or None if absent.

        Parameters
        ----------
        study, key : str
        data : DataRef
            The data the reader resolved; the entry must have been computed on it.

        Raises
        ------
        CacheError
            If an entry exists but is corrupt, belongs to another key, or was computed on
            other data than ``data``.
        """
        path = self.path(study, key)
        if not path.is_file():
            return None
        try:
            with zipfile.ZipFile(path) as zf:
                members = {n: zf.read(n) for n in zf.namelist()}
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise CacheError(f"Cache entry {path.name} is not a readable zip: {exc}") from exc
        raw_meta = members.get("meta.json", b"")
        result = _decode(members, key, path.name)  # checks that meta.json is valid
        stored = json.loads(raw_meta)["data"]
        if stored != _data_meta(data):
            raise CacheError(f"Cache entry {path.name} records other data ({stored}) than the "
                             f"run named ({_data_meta(data)}); it is not used.")
        _check_data(result, data, f"Cache entry {path.name}")
        return result

    def put(self, study: str, key: str, result: StudyResult, *, data: DataRef) -> Path:
        """Write ``result`` atomically under ``key`` and return the entry's path.

        Raises
        ------
        CacheError
            If ``result`` was computed on other data than ``data`` (the data of the key):
            nothing is written.
        """
        _check_data(result, data, f"{study}'s result")
        self.directory.mkdir(parents=True, exist_ok=True)
        members = _encode(result)
        meta = {"magic": MAGIC, "format": FORMAT, "key": key, "study": study,
                "data": _data_meta(data),
                "members": {n: _sha(b) for n, b in members.items()}}
        target = self.path(study, key)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=TMP_PREFIX, suffix=".zip")
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a shared cache needs more
            with os.fdopen(fd, "wb") as fh:
                with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                    for name, blob in members.items():
                        zf.writestr(name, blob)
                    zf.writestr("meta.json", json.dumps(meta, sort_keys=True))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def discard(self, study: str, key: str) -> None:
        """Remove an entry if it exists."""
        self.path(study, key).unlink(missing_ok=True)


def _data_meta(data: DataRef) -> dict[str, str]:
    return {"name": data.name, "source": data.source, "fingerprint": data.fingerprint}


def _check_data(result: StudyResult, data: DataRef, label: str) -> None:
    """``result`` must have been computed on ``data`` (its provenance says on what)."""
    prov = result.provenance
    found = {"name": prov.dataset, "source": prov.source, "fingerprint": prov.fingerprint}
    if found != _data_meta(data):
        raise CacheError(
            f"{label} was computed on {prov.dataset} ({prov.source}, fingerprint "
            f"{prov.fingerprint[:12]}) but the run named {data.name} ({data.source}, "
            f"fingerprint {data.fingerprint[:12]}"
            + (f", at {data.path}" if data.path else "") + "); it is not used. Recompute "
            "with every worker able to read the named data at the same path.")


def _encode(result: StudyResult) -> dict[str, bytes]:
    out = {
        "facts.json": json.dumps(dict(result.facts), sort_keys=True, allow_nan=True).encode(),
        "provenance.json": json.dumps(asdict(result.provenance), sort_keys=True,
                                      default=str).encode(),
        "diagnostics.json": json.dumps([asdict(d) for d in result.diagnostics]).encode(),
    }
    for name, df in result.tables.items():
        buf = io.BytesIO()
        df.to_parquet(buf, engine="pyarrow")
        out[f"tables/{name}.parquet"] = buf.getvalue()
    return out


def _decode(members: dict[str, bytes], key: str, label: str) -> StudyResult:
    try:
        meta = json.loads(members.pop("meta.json"))
    except (KeyError, ValueError) as exc:
        raise CacheError(f"Cache entry {label} has no valid meta.json.") from exc
    if meta.get("magic") != MAGIC or meta.get("format") != FORMAT:
        raise CacheError(f"Cache entry {label} was not written by this version of analysis.")
    if meta.get("key") != key:
        raise CacheError(f"Cache entry {label} belongs to another key (foreign entry).")
    if not isinstance(meta.get("data"), dict):
        raise CacheError(f"Cache entry {label} does not say which data it was computed on.")
    expected = meta.get("members", {})
    if set(expected) != set(members):
        raise CacheError(f"Cache entry {label} has missing or extra members.")
    for name, data in members.items():
        if _sha(data) != expected[name]:
            raise CacheError(f"Cache entry {label}: checksum mismatch in {name}.")
    try:
        tables = {n[len("tables/"):-len(".parquet")]: pd.read_parquet(io.BytesIO(b))
                  for n, b in members.items() if n.startswith("tables/")}
        prov = Provenance(**json.loads(members["provenance.json"]))
        diags = tuple(Diagnostic(**d) for d in json.loads(members["diagnostics.json"]))
        return StudyResult(tables=tables, facts=json.loads(members["facts.json"]),
                           provenance=prov, diagnostics=diags)
    except Exception as exc:  # any decoding failure means the entry is unusable
        raise CacheError(f"Cache entry {label} could not be decoded: {exc}") from exc


def _umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
