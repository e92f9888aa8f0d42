"""Data loaders, simulators and fingerprints.

Real loaders come first; a synthetic generator with planted, known effects is
the embedded default when real data is absent.
"""

from analysis.data.movielens import (
    MovieLensData,
    detect_format,
    load_movielens,
    resolve_movielens,
)
from analysis.data.synthetic import simulate_movielens

__all__ = [
    "MovieLensData",
    "detect_format",
    "load_movielens",
    "resolve_movielens",
    "simulate_movielens",
]
