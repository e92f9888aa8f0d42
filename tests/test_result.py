"""StudyResult and the tidy estimates table."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis.result import TIDY_COLUMNS, Provenance, StudyResult, tidy_frame, tidy_row


def test_tidy_row_matches_normal_theory():
    row = tidy_row("ate", 0.5, 0.2)
    z = stats.norm.ppf(0.975)
    assert row["ci_lower"] == pytest.approx(0.5 - z * 0.2)
    assert row["ci_upper"] == pytest.approx(0.5 + z * 0.2)
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(2.5))
    t = tidy_row("ate", 0.5, 0.2, df=10)
    assert t["ci_upper"] > row["ci_upper"]


def test_tidy_frame_fixed_columns():
    df = tidy_frame([tidy_row("a", 1.0, 0.1, method="x"), tidy_row("b", 2.0, 0.0)])
    assert list(df.columns[:6]) == TIDY_COLUMNS and "method" in df.columns
    assert np.isnan(df.loc[1, "p_value"])


def _prov():
    return Provenance(study="s", dataset="d", source="real", rows=1, fingerprint="f", seed=0,
                      profile="p", runtime_s=0.0, created="now")


def test_facts_must_be_plain():
    with pytest.raises(TypeError, match="Fact 'x' is ndarray.*put arrays in a table"):
        StudyResult(tables={}, facts={"x": np.zeros(2)}, provenance=_prov())


def test_missing_table_and_fact_name_what_exists():
    r = StudyResult(tables={"estimates": tidy_frame([tidy_row("a", 1.0, 0.1)])},
                    facts={"n": 1}, provenance=_prov())
    assert list(r.tidy().columns) == TIDY_COLUMNS
    with pytest.raises(KeyError, match="No table 'nope'.*Tables: estimates"):
        r.table("nope")
    with pytest.raises(KeyError, match="No fact 'm'.*Facts: n"):
        r.fact("m")


def test_count_phrase_agrees_in_number():
    from analysis.result import count_phrase

    assert count_phrase(3, 3, "intervals", "contain") == "all 3 intervals contain"
    assert count_phrase(1, 3, "intervals", "contain") == "only 1 of the 3 intervals contains"
    assert count_phrase(2, 3, "intervals", "contain") == "only 2 of the 3 intervals contain"
    assert count_phrase(0, 3, "intervals", "contain") == "none of the 3 intervals contains"
