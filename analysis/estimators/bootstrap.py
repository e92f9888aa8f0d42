"""A vectorised cluster bootstrap: every replicate at once, as one matrix product.

Resampling users with replacement and re-averaging a score is a weighted sum: if
cluster :math:`c` is drawn :math:`w_{bc}` times in replicate :math:`b`, the
replicate's sum of any per-row quantity is :math:`\\sum_c w_{bc} S_c` with
:math:`S_c` the cluster's own sum.  So the bootstrap needs the per-cluster sums
once (one ``bincount``), a :math:`B \\times G` matrix of draw counts, and one matrix
product, instead of a Python loop that concatenates resampled data frames for each
replicate (the source report's approach).  The same function serves the overall
estimate and any number of segments (one column of sums per segment), and ratio
statistics such as the Hajek/MSM contrast (sums of numerators and denominators).

:func:`loop_bootstrap` is the slow reference: it concatenates the resampled rows for
each replicate from the *same* draws, so a test can prove the two agree and a
benchmark can time them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import EstimationError
from analysis.estimators.inference import cluster_codes
from analysis.parallel import chunks, map_tasks

MIN_CLUSTERS = 20
"""Fewer clusters than this make a cluster bootstrap meaningless."""
BLOCK = 250
"""Replicates per task: the replicates are computed in blocks of this many rows of the
weight matrix, each block a task of :func:`analysis.parallel.map_tasks` (so a cluster can
share the work; the blocks are the same on every backend, and so are the numbers)."""


@dataclass(frozen=True)
class ClusterBootstrap:
    """Draws of a cluster bootstrap.

    Attributes
    ----------
    draws : ndarray of shape (B, G)
        Cluster indices drawn with replacement: row ``b`` lists the ``G`` clusters of
        replicate ``b`` (the loop version resamples exactly these).
    weights : ndarray of shape (B, G)
        How often each cluster is drawn in each replicate (``bincount`` of ``draws``).
    codes : ndarray of shape (n,)
        Cluster code ``0..G-1`` of every row.
    """

    draws: np.ndarray
    weights: np.ndarray
    codes: np.ndarray

    @property
    def n_boot(self) -> int:
        """Number of replicates."""
        return self.draws.shape[0]

    def cluster_sums(self, values: np.ndarray) -> np.ndarray:
        """Per-cluster sums (G, k) of per-row ``values`` (n,) or (n, k)."""
        flat = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
        G = self.weights.shape[1]
        return np.stack([np.bincount(self.codes, weights=flat[:, j], minlength=G)
                         for j in range(flat.shape[1])], axis=1)

    def map_blocks(self, fn: Callable[[tuple[np.ndarray, Any], int], np.ndarray],
                   data: Any) -> np.ndarray:
        """``fn((weights_block, data), seed)`` for blocks of :data:`BLOCK` replicates, as
        tasks of :func:`~analysis.parallel.map_tasks`; the blocks' rows stacked (B, ...)."""
        blocks = chunks(self.n_boot, BLOCK)
        # the weights carry every draw; the spawned task seeds go unused
        parts = map_tasks(fn, [(self.weights[lo:hi], data) for lo, hi in blocks], seed=0)
        return np.concatenate(parts, axis=0)

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Replicate sums of per-row ``values`` (n,) or (n, k): shape (B,) or (B, k)."""
        out = self.map_blocks(_weighted_sums, self.cluster_sums(values))
        return out[:, 0] if np.ndim(values) == 1 else out

    def ratio(self, numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
        """Replicates of :math:`\\sum w\\,\\text{num} / \\sum w\\,\\text{den}`, column by column."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums(numerator) / self.sums(denominator)

    def mean(self, values: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """Replicates of the mean of ``values`` overall (B,), or within each group (B, H).

        ``groups`` holds integer codes ``0..H-1``; a group's mean is the ratio of its
        sum to its row count in each replicate.
        """
        v = np.asarray(values, dtype=np.float64)
        if groups is None:
            return self.ratio(v, np.ones_like(v))
        onehot = np.eye(int(groups.max()) + 1)[groups]
        return self.ratio(onehot * v[:, None], onehot)


def _weighted_sums(item: tuple[np.ndarray, np.ndarray], seed: int) -> np.ndarray:
    """One block of replicate sums: the block's draw counts times the cluster sums."""
    weights, per_cluster = item
    return weights @ per_cluster


def cluster_bootstrap(clusters: np.ndarray, n_boot: int, seed: int) -> ClusterBootstrap:
    """Draw a cluster bootstrap of ``n_boot`` replicates.

    Parameters
    ----------
    clusters : array of shape (n,)
        Cluster label of every row (e.g. user ids).
    n_boot : int
        Replicates :math:`B`.
    seed : int

    Returns
    -------
    ClusterBootstrap

    Raises
    ------
    EstimationError
        With fewer than :data:`MIN_CLUSTERS` clusters or fewer than 2 replicates.
    """
    codes, G = cluster_codes(clusters, len(clusters))
    if G < MIN_CLUSTERS:
        raise EstimationError(f"Only {G} clusters: a cluster bootstrap needs at least "
                              f"{MIN_CLUSTERS} (ideally many more) so that resampled samples "
                              "differ. Use more users, or report the analytic cluster SE only.")
    if n_boot < 2:
        raise EstimationError(f"n_boot={n_boot}: a bootstrap needs replicates; use 200 or more.")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, G, size=(n_boot, G))
    offsets = (np.arange(n_boot) * G)[:, None]
    weights = np.bincount((draws + offsets).ravel(), minlength=n_boot * G).reshape(n_boot, G)
    return ClusterBootstrap(draws=draws, weights=weights.astype(np.float64), codes=codes)


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple:
    """The percentile interval of bootstrap replicates (per column)."""
    a = (1 - level) / 2
    lo, hi = np.nanquantile(replicates, [a, 1 - a], axis=0)
    return lo, hi


def loop_bootstrap(frame: pd.DataFrame, cluster: str,
                   statistic: Callable[[pd.DataFrame], float | np.ndarray],
                   draws: np.ndarray) -> np.ndarray:
    """The slow reference: for each replicate, concatenate the drawn clusters' rows and
    recompute ``statistic`` (the source report's seed-style loop).

    ``draws`` are the same cluster indices :func:`cluster_bootstrap` drew (in the order
    of :func:`~analysis.estimators.inference.cluster_codes` labels).
    """
    codes, _ = cluster_codes(frame[cluster].to_numpy(), len(frame))
    groups = {c: g for c, g in frame.groupby(codes, sort=True)}
    return np.array([np.asarray(statistic(pd.concat([groups[c] for c in row],
                                                    ignore_index=True)))
                     for row in draws])
