"""Real datasets with a known answer, from the ``causaldata`` package.

``causaldata`` ships its data inside the installed package, so nothing is
downloaded.  Two classic credibility checks are provided:

LaLonde (1986) / Dehejia & Wahba (1999)
    The National Supported Work (NSW) job-training experiment.  Its randomised
    control group gives an unbiased benchmark of the training's effect on 1978
    earnings.  Replacing that control group with survey respondents from the CPS
    is the textbook test of whether observational adjustment recovers an
    experiment.
Card (1995)
    Growing up near a four-year college (``nearc4``) as an instrument for years
    of schooling in a log-wage equation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.data.common import DataRef, files_fingerprint
from analysis.errors import DataError

LALONDE_COVARIATES = ("age", "age2", "educ", "educ2", "black", "hisp", "marr", "nodegree",
                      "re74", "re75", "u74", "u75")
"""Dehejia & Wahba's adjustment set: demographics, earnings in 1974-75 and
indicators of zero earnings in those years."""
CARD_COVARIATES = ("exper", "exper2", "black", "south", "smsa", "married")
"""Controls of the Card regression available in ``close_college``."""


@dataclass(frozen=True)
class Benchmark:
    """A real dataset prepared for one causal question.

    Attributes
    ----------
    frame : DataFrame
        Analysis-ready rows (binary treatments stored as int 0/1).
    name : str
    treatment, outcome : str
    covariates : tuple of str
    instrument : str or None
    """

    frame: pd.DataFrame
    name: str
    treatment: str
    outcome: str
    covariates: tuple[str, ...]
    instrument: str | None = None


def _load(module: str) -> pd.DataFrame:
    import importlib

    try:
        mod = importlib.import_module(f"causaldata.{module}")
    except ImportError as exc:
        raise DataError(f"The causaldata dataset '{module}' is not available ({exc}). "
                        "Install the package with `pip install causaldata`.") from exc
    return mod.load_pandas().data.copy()


def benchmarks_ref() -> DataRef:
    """Fingerprint of the three causaldata files the chapter uses."""
    import importlib

    paths = []
    for module in ("nsw_mixtape", "cps_mixtape", "close_college"):
        folder = importlib.util.find_spec(f"causaldata.{module}").submodule_search_locations[0]
        from pathlib import Path

        paths.extend(sorted(Path(folder).glob("*.dta")) + sorted(Path(folder).glob("*.csv")))
    return DataRef(name="causaldata", source="real", fingerprint=files_fingerprint(paths))


def _lalonde_features(df: pd.DataFrame) -> pd.DataFrame:
    out = df[["treat", "age", "educ", "black", "hisp", "marr", "nodegree",
              "re74", "re75", "re78"]].astype(float)
    out["treat"] = out["treat"].astype(np.int64)
    return out.assign(age2=out["age"] ** 2, educ2=out["educ"] ** 2,
                      u74=(out["re74"] == 0).astype(float), u75=(out["re75"] == 0).astype(float))


def load_nsw_experiment() -> Benchmark:
    """The NSW experiment (Dehejia-Wahba sample): 185 trainees, 260 randomised controls."""
    df = _lalonde_features(_load("nsw_mixtape"))
    return Benchmark(frame=df, name="NSW experiment (nsw_mixtape)", treatment="treat",
                     outcome="re78", covariates=LALONDE_COVARIATES)


def load_nsw_cps() -> Benchmark:
    """NSW trainees against CPS survey respondents as the comparison group.

    The experimental controls are dropped; the treated units are the same 185
    trainees as in :func:`load_nsw_experiment`.
    """
    nsw = _load("nsw_mixtape")
    cps = _load("cps_mixtape")
    if (cps["treat"] != 0).any():
        raise DataError("cps_mixtape should hold only untreated CPS respondents; "
                        "check the causaldata version.")
    df = _lalonde_features(pd.concat([nsw[nsw["treat"] == 1], cps], ignore_index=True))
    return Benchmark(frame=df, name="NSW trainees vs CPS (cps_mixtape)", treatment="treat",
                     outcome="re78", covariates=LALONDE_COVARIATES)


def load_card() -> Benchmark:
    """Card's returns to schooling with college proximity as the instrument.

    Rows with a missing marital status are dropped; ``exper2`` is experience squared.
    """
    df = _load("close_college").dropna(subset=["married"]).astype(float)
    df = df.assign(exper2=df["exper"] ** 2).reset_index(drop=True)
    return Benchmark(frame=df, name="Card (close_college)", treatment="educ", outcome="lwage",
                     covariates=CARD_COVARIATES, instrument="nearc4")
