"""What a study returns: tidy tables, facts and provenance.

A :class:`StudyResult` is plain data.  It is what the cache stores, what the
report layer draws from and what the templates format; nothing downstream of it
refits a model.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal

import numpy as np
import pandas as pd

TIDY_COLUMNS = ["term", "estimate", "std_error", "ci_lower", "ci_upper", "p_value"]
"""The fixed columns of every estimates table (as in pyfixest's ``tidy()``)."""

CHECK_COLUMNS = ["check", "kind", "role", "estimate", "ci_lower", "ci_upper", "target",
                 "target_label", "covered", "detail"]
"""The fixed columns of a study's ``checks`` table (the validation appendix reads them).

``kind`` is ``"planted truth"``, ``"Monte Carlo coverage"`` or ``"real benchmark"``;
``role`` is ``"method"`` for a method the book relies on, or ``"counterexample"`` for one
shown on purpose to fail (the naive comparison, independence-based intervals)."""

HEADLINE_COLUMNS = ["question", "answer", "estimate", "ci_lower", "ci_upper", "unit",
                    "reference", "reference_label", "verdict"]
"""The fixed columns of a study's one-row ``headline`` table (the index's headline table)."""

TRACKED_PACKAGES = ("numpy", "pandas", "scikit-learn", "lightgbm", "econml", "dowhy",
                    "statsmodels", "scipy")

Fact = float | int | str | bool | None


@dataclass(frozen=True)
class Diagnostic:
    """A warning that matters to the reader (overlap, weak instrument, convergence).

    Attributes
    ----------
    level : {"info", "warning"}
    topic : str
        Short name of what was checked, e.g. ``"overlap"``.
    message : str
        One or two sentences for the chapter.
    """

    level: Literal["info", "warning"]
    topic: str
    message: str


@dataclass(frozen=True)
class Provenance:
    """Where a result came from.

    Attributes
    ----------
    study, dataset : str
        The study's name and the dataset it ran on (e.g. ``"ml-latest-small"``).
    source : {"real", "synthetic"}
    rows : int
        Rows of the analysed data.
    fingerprint : str
        Hash of the data (files for real data, generator settings for synthetic).
    seed : int
    profile : str
    runtime_s : float
        Wall time of the computation (not of a cache read).
    created : str
        ISO timestamp of the computation.
    packages : Mapping[str, str]
        Versions of Python and the numerical packages.
    config : Mapping[str, Any]
        The study's settings.
    """

    study: str
    dataset: str
    source: Literal["real", "synthetic"]
    rows: int
    fingerprint: str
    seed: int
    profile: str
    runtime_s: float
    created: str
    packages: Mapping[str, str] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)


def package_versions() -> dict[str, str]:
    """Versions of Python and :data:`TRACKED_PACKAGES` that are installed."""
    out = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@dataclass(frozen=True)
class StudyResult:
    """Everything a chapter needs from one study.

    Attributes
    ----------
    tables : Mapping[str, DataFrame]
        Tidy tables; estimates tables use :data:`TIDY_COLUMNS` first.
    facts : Mapping[str, Fact]
        Named scalars and strings for templates and prose.
    provenance : Provenance
    diagnostics : tuple of Diagnostic
    """

    tables: Mapping[str, pd.DataFrame]
    facts: Mapping[str, Fact]
    provenance: Provenance
    diagnostics: tuple[Diagnostic, ...] = ()

    def __post_init__(self) -> None:
        for key, value in self.facts.items():
            if not isinstance(value, Fact):
                raise TypeError(f"Fact '{key}' is {type(value).__name__}; facts must be "
                                "float, int, str, bool or None. Convert it with float() or "
                                "put arrays in a table.")

    def table(self, name: str) -> pd.DataFrame:
        """A copy of one table; raises KeyError naming the tables that exist."""
        if name not in self.tables:
            raise KeyError(f"No table '{name}' in {self.provenance.study}'s result. "
                           f"Tables: {', '.join(sorted(self.tables))}.")
        return self.tables[name].copy()

    def fact(self, name: str) -> Fact:
        """One fact; raises KeyError naming the facts that exist."""
        if name not in self.facts:
            raise KeyError(f"No fact '{name}' in {self.provenance.study}'s result. "
                           f"Facts: {', '.join(sorted(self.facts))}.")
        return self.facts[name]

    def tidy(self) -> pd.DataFrame:
        """The study's headline estimates with the fixed :data:`TIDY_COLUMNS`."""
        return self.table("estimates")[TIDY_COLUMNS]

    @property
    def is_synthetic(self) -> bool:
        """Whether the study ran on simulated data."""
        return self.provenance.source == "synthetic"


def tidy_row(term: str, estimate: float, std_error: float, *, level: float = 0.95,
             df: float | None = None, **extra: Any) -> dict[str, Any]:
    """One row of an estimates table from an estimate and its standard error.

    Notes
    -----
    The interval is :math:`\\hat\\theta \\pm z_{1-\\alpha/2}\\,\\widehat{se}` and the
    p-value tests :math:`\\theta = 0` with a normal reference (Student-t when ``df``
    is given).
    """
    from scipy import stats

    dist = stats.t(df) if df else stats.norm()
    crit = float(dist.ppf(0.5 + level / 2))
    if std_error > 0 and math.isfinite(std_error):
        p = float(2 * dist.sf(abs(estimate) / std_error))
    else:
        p = float("nan")
    return {"term": term, "estimate": float(estimate), "std_error": float(std_error),
            "ci_lower": float(estimate - crit * std_error),
            "ci_upper": float(estimate + crit * std_error), "p_value": p, **extra}


def tidy_frame(rows: list[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows from :func:`tidy_row` as a DataFrame with :data:`TIDY_COLUMNS` first."""
    df = pd.DataFrame(list(rows))
    extra = [c for c in df.columns if c not in TIDY_COLUMNS]
    return df[TIDY_COLUMNS + extra]


def check_row(check: str, kind: str, estimate: float, ci_lower: float, ci_upper: float,
              target: float, target_label: str, *, role: str = "method",
              detail: str = "") -> dict[str, Any]:
    """One row of a study's ``checks`` table: does an interval contain a known answer?

    ``covered`` is :math:`\\text{ci\\_lower} \\le \\text{target} \\le \\text{ci\\_upper}`.
    """
    if role not in ("method", "counterexample"):
        raise ValueError(f"role={role!r}; use 'method' or 'counterexample'.")
    lo, hi, t = float(ci_lower), float(ci_upper), float(target)
    return {"check": check, "kind": kind, "role": role, "estimate": float(estimate),
            "ci_lower": lo, "ci_upper": hi, "target": t, "target_label": target_label,
            "covered": bool(lo <= t <= hi), "detail": detail}


def coverage_check(check: str, covered: Any, *, nominal: float = 0.95,
                   role: str = "method", detail: str = "") -> dict[str, Any]:
    """A Monte Carlo coverage check: the share of intervals that covered the truth.

    The interval is the Monte Carlo 95% interval of that share,
    :math:`\\hat p \\pm 1.96\\sqrt{\\hat p(1-\\hat p)/R}` over :math:`R` replications, and
    the target the nominal level.
    """
    c = np.asarray(covered, dtype=float)
    p, reps = float(c.mean()), len(c)
    half = 1.959964 * float(np.sqrt(max(p * (1 - p), 0.25 / reps) / reps))
    return check_row(check, "Monte Carlo coverage", p, p - half, p + half, nominal,
                     "nominal", role=role,
                     detail=detail or f"{reps} replications")


def checks_frame(rows: list[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows from :func:`check_row` / :func:`coverage_check` with :data:`CHECK_COLUMNS`."""
    return pd.DataFrame(list(rows), columns=CHECK_COLUMNS)


def headline_frame(*, question: str, answer: str, estimate: float, ci_lower: float,
                   ci_upper: float, unit: str, reference: float | None = None,
                   reference_label: str = "", verdict: str = "") -> pd.DataFrame:
    """A study's one-row ``headline`` table with :data:`HEADLINE_COLUMNS`.

    ``reference`` is the planted truth or a real benchmark (None when there is
    none); ``verdict`` says in a few words whether the interval recovers it.
    """
    return pd.DataFrame([{"question": question, "answer": answer, "estimate": float(estimate),
                          "ci_lower": float(ci_lower), "ci_upper": float(ci_upper),
                          "unit": unit,
                          "reference": np.nan if reference is None else float(reference),
                          "reference_label": reference_label, "verdict": verdict}],
                        columns=HEADLINE_COLUMNS)


def count_phrase(n: int, total: int, what: str, verb: str) -> str:
    """Agreeing wording for "n of total": ``count_phrase(1, 3, "intervals", "cover")``
    gives ``"only 1 of the 3 intervals covers"``; all and none get their own words.

    ``verb`` is the plural form; the singular adds an "s".
    """
    if n == total:
        return f"all {total} {what} {verb}"
    if n == 0:
        return f"none of the {total} {what} {verb}s"
    return f"only {n} of the {total} {what} {verb if n > 1 else verb + 's'}"


def as_fact(x: Any) -> Fact:
    """Convert numpy scalars to plain Python facts."""
    if isinstance(x, np.generic):
        return x.item()
    return x
