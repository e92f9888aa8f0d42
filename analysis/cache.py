"""On-disk cache of study results.

An entry is one zip file named by its key.  It holds ``meta.json`` (magic,
format version, key and a SHA-256 of every member), the facts, provenance and
diagnostics as JSON, and each table as Parquet.  Entries are written to a
temporary file and moved into place with :func:`os.replace`, so a crash never
leaves a half-written entry under a real name.  On read, anything unexpected
(bad zip, wrong magic or key, checksum mismatch) raises :class:`CacheError`,
and the runner recomputes.  No pickle is ever read, so a foreign file cannot
run code.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.errors import CacheError
from analysis.result import Diagnostic, Provenance, StudyResult

MAGIC = "analysis-study-result"
FORMAT = 1
CACHE_ENV = "ANALYSIS_CACHE_DIR"


def cache_key(study: str, config: dict[str, Any], data_fingerprint: str,
              code_fingerprint: str) -> str:
    """SHA-256 of the study name, its settings, its data and its code."""
    payload = json.dumps({"study": study, "config": config, "data": data_fingerprint,
                          "code": code_fingerprint, "format": FORMAT},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


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

    def path(self, study: str, key: str) -> Path:
        """The entry file for ``key``."""
        return self.directory / f"{study}-{key[:32]}.zip"

    def get(self, study: str, key: str) -> StudyResult | None:
        """The cached result, or None if absent.

        Raises
        ------
        CacheError
            If an entry exists but is corrupt or belongs to another key.
        """
        path = self.path(study, key)
        if not path.is_file():
            return None
        try:
            with zipfile.ZipFile(path) as zf:
                members = {n: zf.read(n) for n in zf.namelist()}
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise CacheError(f"Cache entry {path.name} is not a readable zip: {exc}") from exc
        return _decode(members, key, path.name)

    def put(self, study: str, key: str, result: StudyResult) -> Path:
        """Write ``result`` atomically under ``key`` and return the entry's path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        members = _encode(result)
        meta = {"magic": MAGIC, "format": FORMAT, "key": key, "study": study,
                "members": {n: _sha(b) for n, b in members.items()}}
        target = self.path(study, key)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".zip")
        try:
            with os.fdopen(fd, "wb") as fh:
                with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                    for name, data in members.items():
                        zf.writestr(name, data)
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
