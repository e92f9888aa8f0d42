"""Settings and data resolution shared by the studies that run on MovieLens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.config import Source, StudyConfig, at_least, path_field, positive
from analysis.data.common import DataRef
from analysis.data.movielens import (
    MovieLensData,
    load_movielens,
    movielens_ref,
    resolve_movielens,
)
from analysis.data.synthetic import MIN_PER_USER, simulate_movielens, synthetic_movielens_ref
from analysis.errors import ConfigError


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
    synthetic_users: int = at_least(610, 10, "folds and clusters are formed by user")
    synthetic_items: int = at_least(9000, 50, "so that some movies are drama-romance")
    synthetic_ratings: int = positive(100_000)
    synthetic_effect: float = 0.10
    synthetic_heterogeneity: float = 0.10

    def check(self) -> None:
        """The generator gives every user at least 20 ratings."""
        if self.synthetic_ratings < MIN_PER_USER * self.synthetic_users:
            raise ConfigError(
                f"synthetic_ratings = {self.synthetic_ratings:,} is fewer than {MIN_PER_USER} "
                f"per user for synthetic_users = {self.synthetic_users:,}; use at least "
                f"{MIN_PER_USER * self.synthetic_users:,} or fewer users.")

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
