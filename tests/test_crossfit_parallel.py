"""Cross-fitting's fits as tasks: every estimator gives the same numbers, to the last bit,
on serial, on local worker processes and on a Dask LocalCluster of processes; the data
reach the workers as shared data (memory maps for ``local``), not inside every task."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor

from analysis import parallel
from analysis.estimators.aipw import AIPW
from analysis.estimators.cate import choose_nuisances
from analysis.estimators.crossfit import Nuisance, cross_fit, cross_fit_all, make_folds
from analysis.estimators.diagnostics import compare_learners
from analysis.estimators.dml import PartiallyLinearDML
from analysis.estimators.selection import out_of_fold
from analysis.parallel import ParallelSettings, map_tasks

LOCAL = ParallelSettings(backend="local", workers=2)
DASK = ParallelSettings(backend="dask", address="local", workers=2)
BACKENDS = [pytest.param(LOCAL, id="local"), pytest.param(DASK, id="dask")]


def _small(kind: str, seed: int = 0):
    cls = LGBMClassifier if kind == "classifier" else LGBMRegressor
    return cls(n_estimators=15, num_leaves=7, min_child_samples=20, subsample=0.8,
               subsample_freq=1, colsample_bytree=0.8, n_jobs=1, verbose=-1,
               random_state=seed)


@pytest.fixture(scope="module")
def data():
    """20,000 rows x 8 controls: X is 1.3 MB, above the size that local memory-maps."""
    rng = np.random.default_rng(4)
    n = 20_000
    X = rng.standard_normal((n, 8))
    d = (rng.random(n) < 1 / (1 + np.exp(-X[:, 0]))).astype(float)
    y = 0.5 * d + X[:, 1] + 0.3 * X[:, 0] ** 2 + rng.standard_normal(n)
    clusters = rng.integers(0, 500, n)
    return X, y, d, clusters


def _plr(data) -> dict:
    X, y, d, clusters = data
    m = PartiallyLinearDML(ml_g=_small("regressor"), ml_m=_small("classifier"), n_rep=2,
                           seed=3).fit(X, y, d, clusters=clusters)
    return {"thetas": m.thetas_, "ses": m.ses_, "psi_b": m.psi_b_, **m.nuisance_}


def _aipw(data) -> dict:
    """With two candidates each: selection on the first repetition, then the chosen ones."""
    X, y, d, clusters = data
    m = AIPW(ml_m={"a": _small("classifier"), "b": _small("classifier", 1)},
             ml_g={"a": _small("regressor"), "b": _small("regressor", 1)}, n_rep=2,
             seed=3).fit(X, y, d, clusters=clusters)
    out = {"thetas": m.thetas_, "psi_b": m.psi_b_, **m.nuisance_,
           "selection_m": m.selection_m_, "selection_g": m.selection_g_}
    out.update({f"cand_{k}_{c}": v for k, cs in m.candidates_.items() for c, v in cs.items()})
    return out


def _selection(data) -> dict:
    X, y, d, _ = data
    folds = make_folds(len(y), 3, seed=1)
    cands = {"a": _small("regressor"), "b": _small("regressor", 2)}
    return out_of_fold(cands, X, y, folds, method="predict", fit_mask=d == 1, name="ml_g")


def _cate_nuisances(data) -> dict:
    X, y, d, _ = data
    folds = make_folds(len(y), 3, seed=2)
    chosen = choose_nuisances(X[:4000], y[:4000], d[:4000], folds[:4000], seed=0,
                              fixed={"model_t": _small("classifier"),
                                     "model_y": _small("regressor")})
    return {k: chosen[k] for k in ("m_hat", "g0_hat", "g1_hat", "t_losses", "y_losses")}


def _compare(data) -> dict:
    X, y, _, clusters = data
    table = compare_learners({"a": _small("regressor"), "b": _small("regressor", 2)}, X, y,
                             clusters, seed=1)
    return {"table": table}


ESTIMATORS = {"plr": _plr, "aipw": _aipw, "selection": _selection,
              "fit_cate_nuisances": _cate_nuisances, "compare_learners": _compare}


def _assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], pd.DataFrame):
            pd.testing.assert_frame_equal(a[k], b[k], check_exact=True)
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)  # to the last bit


@pytest.fixture(scope="module")
def serial(data):
    return {name: fn(data) for name, fn in ESTIMATORS.items()}


@pytest.mark.parametrize("settings", BACKENDS)
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_every_estimator_is_identical_on_every_backend(data, serial, name, settings):
    with parallel.use(settings):
        got = ESTIMATORS[name](data)
    _assert_identical(serial[name], got)


def test_every_fold_and_nuisance_is_one_task(data, monkeypatch):
    """2 nuisances x 3 folds x 2 repetitions = 12 tasks, in one call of map_tasks."""
    calls = []
    real = map_tasks

    def spy(fn, items, **kw):
        items = list(items)
        calls.append((len(items), kw.get("shared") is not None))
        return real(fn, items, **kw)

    monkeypatch.setattr("analysis.estimators.crossfit.map_tasks", spy)
    _plr(data)
    assert calls == [(12, True)]


def _kind_of_x(item: int, seed: int, shared: dict) -> tuple[str, int]:
    return type(shared["X"]).__name__, item


@pytest.mark.parametrize("settings", BACKENDS)
def test_local_workers_map_the_shared_arrays(data, settings):
    """On local the big array arrives as a memory map (no copy per task); on Dask as the
    broadcast array; the tasks themselves carry only their small items."""
    X = data[0]
    out = map_tasks(_kind_of_x, range(5), seed=0, settings=settings,
                    shared={"X": X, "small": np.arange(3)})
    kinds = {k for k, _ in out}
    assert [i for _, i in out] == list(range(5))
    assert kinds == ({"memmap"} if settings.backend == "local" else {"ndarray"})


def test_cross_fit_all_fills_only_the_repetitions_asked_for(data):
    X, y, d, _ = data
    folds = [make_folds(len(y), 3, seed=s) for s in (0, 1)]
    out = cross_fit_all([Nuisance("g", _small("regressor"), "y", reps=(1,))], X, {"y": y},
                        folds)
    assert np.isnan(out["g"][0]).all()
    np.testing.assert_array_equal(out["g"][1], cross_fit(_small("regressor"), X, y, folds[1]))
