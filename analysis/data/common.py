"""Shared pieces of the data layer: data references and fingerprints."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
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


DATA_ENV_PREFIX = "ANALYSIS_"
"""Data locations come from ``ANALYSIS_*`` variables (``$ANALYSIS_MOVIELENS_DIR``, ...)."""

_PINNED: ContextVar[Mapping[str, str] | None] = ContextVar("analysis_data_env", default=None)


def data_env(name: str) -> str:
    """The value of the data-location variable ``name`` (stripped; "" when unset).

    Inside :func:`pinned_environ` the value is the one pinned there (the environment of
    the process that started the run), never the environment of the worker computing.
    """
    pinned = _PINNED.get()
    source = os.environ if pinned is None else pinned
    return source.get(name, "").strip()


def environ_snapshot() -> dict[str, str]:
    """Every ``ANALYSIS_*`` variable of this process: what a task must see, wherever it runs.

    Folders (``*_DIR``) are made absolute here (``~`` and relative paths would otherwise
    be read against the worker's home and working directory).
    """
    out = {}
    for k, v in sorted(os.environ.items()):
        if k.startswith(DATA_ENV_PREFIX):
            out[k] = (str(Path(v.strip()).expanduser().absolute())
                      if k.endswith("_DIR") and v.strip() else v)
    return out


@contextlib.contextmanager
def pinned_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Resolve data locations from ``values`` instead of this process's environment."""
    token = _PINNED.set(dict(values))
    try:
        yield
    finally:
        _PINNED.reset(token)


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
