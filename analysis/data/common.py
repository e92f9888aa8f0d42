"""Shared pieces of the data layer: data references and fingerprints."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class DataRef:
    """What a study will run on, resolved without loading it.

    Attributes
    ----------
    name : str
        Dataset name, e.g. ``"ml-latest-small"`` or ``"synthetic-movielens"``.
    source : {"real", "synthetic"}
    fingerprint : str
        Content hash of the files (real) or of the generator's settings (synthetic).
    path : Path or None
        Folder of a real dataset.
    """

    name: str
    source: Literal["real", "synthetic"]
    fingerprint: str
    path: Path | None = None


@cache
def _file_sha(path: Path, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def files_fingerprint(paths: list[Path]) -> str:
    """SHA-256 over the names and contents of ``paths`` (memoised per size and mtime)."""
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        h.update(p.name.encode())
        h.update(_file_sha(p, st.st_size, st.st_mtime_ns).encode())
    return h.hexdigest()


def params_fingerprint(kind: str, params: dict[str, Any]) -> str:
    """SHA-256 of a generator's name and settings."""
    payload = json.dumps({"kind": kind, **params}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
