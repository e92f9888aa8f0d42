"""A minimal study used to test the runner's contract (registered only inside tests)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd

from analysis.config import StudyConfig, positive
from analysis.data.common import DataRef, params_fingerprint
from analysis.errors import OverlapWarning
from analysis.result import tidy_frame, tidy_row
from analysis.studies.base import Timer, make_result

NAME = "fake"
TITLE = "A fake study"
CHAPTER = "chapters/fake.qmd"
SUMMARY_TEMPLATE = "studies/fake.md.j2"


@dataclass(frozen=True, kw_only=True)
class Config(StudyConfig):
    n: int = positive(10)


def data_ref(config: Config, root=None) -> DataRef:
    return DataRef("fake-data", "synthetic", params_fingerprint("fake", {"n": config.n}))


def run(config: Config, root=None):
    timer = Timer()
    warnings.warn("library noise", DeprecationWarning, stacklevel=1)
    warnings.warn("5% of propensities are below 0.01", OverlapWarning, stacklevel=1)
    est = tidy_frame([tidy_row("ate", 1.0, 0.5)])
    return make_result(study=NAME, config=config, ref=data_ref(config), rows=config.n,
                       tables={"estimates": est, "x": pd.DataFrame({"a": [1, 2]})},
                       facts={"truth_ate": 1.0}, timer=timer)
