"""Helpers every study uses: a timer and the assembly of a result with its provenance.

MovieLens settings and data resolution live in :mod:`analysis.studies.movielens`, so a
study that never reads MovieLens does not depend on (and is not recomputed for) its loader.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from analysis.config import StudyConfig
from analysis.data.common import DataRef
from analysis.result import Diagnostic, Fact, Provenance, StudyResult, as_fact, package_versions


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
