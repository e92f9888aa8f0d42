"""The one door every parallel loop of the book goes through.

Monte Carlo replications, bootstrap blocks, grids of simulations: each is a list
of independent tasks.  :func:`map_tasks` runs ``fn(item, seed)`` for every item and
returns the results in the items' order.  Every task gets its own seed, derived
from the study's seed and the task's index with :class:`numpy.random.SeedSequence`
(``spawn``), never from global state or from which worker runs it, so the numbers
are the same whatever the backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")


def task_seeds(seed: int, n: int) -> list[int]:
    """One independent 32-bit seed per task, from the study seed and the task index."""
    children = np.random.SeedSequence(seed).spawn(n)
    return [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]


def map_tasks(fn: Callable[[T, int], R], items: Iterable[T], *, seed: int) -> list[R]:
    """``[fn(item, seed_i) for each item]``, with per-task seeds from :func:`task_seeds`.

    Parameters
    ----------
    fn : callable
        A module-level function (so that it can be shipped to a worker) of an item and
        an integer seed.
    items : iterable
        The tasks' inputs.
    seed : int
        The study's seed; task ``i`` gets ``task_seeds(seed, n)[i]``.

    Returns
    -------
    list
        The results, in the order of ``items``.
    """
    items = list(items)
    seeds = task_seeds(seed, len(items))
    return [fn(item, s) for item, s in zip(items, seeds, strict=True)]


def chunks(n: int, size: int) -> Sequence[tuple[int, int]]:
    """``(start, stop)`` pairs cutting ``range(n)`` into blocks of at most ``size``."""
    return [(i, min(i + size, n)) for i in range(0, n, size)]
