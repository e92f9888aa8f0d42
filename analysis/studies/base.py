"""Helpers every study uses: MovieLens settings, data resolution, result assembly."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.config import Source, StudyConfig, path_field, positive
from analysis.data.common import DataRef
from analysis.data.movielens import (
    MovieLensData,
    load_movielens,
    movielens_ref,
    resolve_movielens,
)
from analysis.data.synthetic import simulate_movielens, synthetic_movielens_ref
from analysis.result import Diagnostic, Fact, Provenance, StudyResult, as_fact, package_versions


@dataclass(frozen=True, kw_only=True)
class MovieLensConfig(StudyConfig):
    """Settings shared by studies that run on MovieLens.

    Attributes
    ----------
    source : {"auto", "real", "synthetic"}
        ``auto`` uses real data when found (``path``, ``$ANALYSIS_MOVIELENS_DIR``,
        ``data/raw/ml-*``), else the synthetic generator.
    path : str
        Explicit MovieLens folder, relative to the project root or absolute.
    synthetic_users, synthetic_items, synthetic_ratings : int
        Sizes of the synthetic fallback.
    synthetic_effect, synthetic_heterogeneity : float
        Planted drama-romance effect and its growth per SD of romance affinity.
    """

    source: Source = "auto"
    path: str = path_field()
    synthetic_users: int = positive(610)
    synthetic_items: int = positive(9000)
    synthetic_ratings: int = positive(100_000)
    synthetic_effect: float = 0.10
    synthetic_heterogeneity: float = 0.10

    def synthetic_params(self) -> dict[str, Any]:
        """Keyword arguments of :func:`simulate_movielens`."""
        return {"n_users": self.synthetic_users, "n_items": self.synthetic_items,
                "n_ratings": self.synthetic_ratings, "effect": self.synthetic_effect,
                "heterogeneity": self.synthetic_heterogeneity, "seed": self.seed}


def movielens_data_ref(config: MovieLensConfig, root: Path | None) -> DataRef:
    """Resolve which MovieLens data a study uses, and fingerprint it, without loading."""
    folder = resolve_movielens(config.source, config.path, root)
    if folder is not None:
        return movielens_ref(folder)
    return synthetic_movielens_ref(**config.synthetic_params())


def load_movielens_for(config: MovieLensConfig, root: Path | None) -> MovieLensData:
    """Load the data :func:`movielens_data_ref` resolves."""
    folder = resolve_movielens(config.source, config.path, root)
    if folder is not None:
        return load_movielens(folder)
    return simulate_movielens(**config.synthetic_params())


class Timer:
    """Wall-clock timer started on construction."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Seconds since construction."""
        return time.perf_counter() - self.start


def make_result(*, study: str, config: StudyConfig, ref: DataRef, rows: int,
                tables: Mapping[str, pd.DataFrame], facts: Mapping[str, Any],
                timer: Timer, diagnostics: tuple[Diagnostic, ...] = ()) -> StudyResult:
    """Assemble a :class:`StudyResult` with full provenance.

    ``facts`` values are converted from numpy scalars; the dataset's name and
    whether it is synthetic are added as facts ``dataset`` and ``synthetic``.
    """
    prov = Provenance(study=study, dataset=ref.name, source=ref.source, rows=int(rows),
                      fingerprint=ref.fingerprint, seed=config.seed, profile="",
                      runtime_s=round(timer.seconds, 3),
                      created=datetime.now(UTC).isoformat(timespec="seconds"),
                      packages=package_versions(), config=config.as_dict())
    all_facts: dict[str, Fact] = {"dataset": ref.name, "synthetic": ref.source == "synthetic"}
    all_facts.update({k: as_fact(v) for k, v in facts.items()})
    return StudyResult(tables=dict(tables), facts=all_facts, provenance=prov,
                       diagnostics=tuple(diagnostics))
