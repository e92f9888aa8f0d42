"""Every task seed comes from ``SeedSequence.spawn`` (README, "identical on every backend").

Before issue 19, ``estimators/coverage.py`` seeded replication ``r`` with ``seed + r`` (its
streams overlap those of a simulation seeded ``seed + 1``), and studies gave tasks that
share random numbers the study seed itself.  Now task ``i`` gets ``task_seeds(seed, n)[i]``
and tasks that must share random numbers get ``common_seeds(seed, n)``, itself spawned.
"""

from __future__ import annotations

import ast

import numpy as np

import analysis.parallel as parallel
from analysis.estimators.coverage import coverage_simulation
from analysis.parallel import common_seeds, task_seeds
from tests.conftest import ROOT


def test_task_seeds_are_the_children_of_the_seed_sequence():
    expected = [int(c.generate_state(1, dtype=np.uint32)[0])
                for c in np.random.SeedSequence(11).spawn(5)]
    assert task_seeds(11, 5) == expected
    assert task_seeds(11, 5) != [11 + r for r in range(5)]
    assert common_seeds(11, 3) == [expected[0]] * 3


def test_coverage_replications_get_spawned_seeds(monkeypatch):
    """Fails on ``seed + r``: the recorded seeds were 11, 12, 13."""
    seen: list[int] = []
    run_task = parallel.run_task

    def record(fn, item, seed, *shared):
        if not parallel._IN_TASK.get():  # the replications, not the fits inside them
            seen.append(seed)
        return run_task(fn, item, seed, *shared)

    monkeypatch.setattr(parallel, "run_task", record)
    coverage_simulation(3, n_clusters=20, cluster_size=5, seed=11)
    assert seen == task_seeds(11, 3)


def _explicit_seeds() -> list[str]:
    """``seeds=`` arguments of ``map_tasks`` in the package that are not spawned."""
    out = []
    for path in sorted((ROOT / "analysis").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "map_tasks"):
                continue
            for kw in node.keywords:
                if kw.arg != "seeds":
                    continue
                call = kw.value
                name = getattr(getattr(call, "func", None), "id", "") or getattr(
                    getattr(call, "func", None), "attr", "")
                if not (isinstance(call, ast.Call) and name in ("task_seeds", "common_seeds")):
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno}: "
                               f"seeds={ast.unparse(call)}")
    return out


def test_every_map_tasks_call_spawns_its_seeds():
    """Every ``map_tasks`` call passes ``seed=`` (spawned per task) or spawned seeds
    (``task_seeds``/``common_seeds``); never ``seed + r`` or the study seed repeated."""
    found = _explicit_seeds()
    assert not found, "Seeds not from SeedSequence.spawn:\n" + "\n".join(found)
