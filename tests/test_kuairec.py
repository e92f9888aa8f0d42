"""KuaiRec: the real-format loader, the simulator of its log, and the user-day panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.data.kuairec import (
    COLUMNS,
    choose_kuairec,
    load_kuairec,
    matrix_file,
)
from analysis.data.kuairec_sim import poisson_quantile, simulate_kuairec
from analysis.errors import DataError
from analysis.features.panel import COVARIATES, HISTORY, build_panel

ROWS = [  # user_id, video_id, play_duration, video_duration, time, date, timestamp, watch_ratio
    (14, 148, 4381, 6067, "2020-07-05 05:27:48.378", "20200705.0", "1593898068.378", 0.722),
    (14, 183, 11635, 6100, "2020-07-05 05:28:00.057", "20200705.0", "1593898080.057", 1.907),
    (14, 3649, 22422, 10867, "2020-07-06 05:29:09.479", "20200706.0", "1593984549.479", 2.063),
    (19, 9598, 4479, 7908, "2020-07-05 18:41:41.103", "20200705.0", "1593945701.103", 0.566),
    # the small matrix's second stage: no time, date or timestamp
    (19, 1961, 4500, 8000, "", "", "", 0.5625),
]


def write_matrix(folder, rows=ROWS, name="small_matrix.csv", columns=COLUMNS):
    """A KuaiRec matrix in the release's exact format (in a data/ subfolder)."""
    path = folder / "data" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(columns)] + [",".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_loader_reads_the_real_format(tmp_path):
    path = write_matrix(tmp_path / "KuaiRec 2.0")
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "KuaiRec 2.0").rglob("*")}
    data = load_kuairec(matrix_file(tmp_path / "KuaiRec 2.0"))
    assert list(data.log.columns) == ["user", "video", "play_duration", "video_duration",
                                      "watch_ratio", "day"]
    assert len(data.log) == 4 and data.dropped_no_day == 1 and data.dropped_duplicates == 0
    assert data.log["day"].tolist() == [pd.Timestamp("2020-07-05")] * 2 + \
        [pd.Timestamp("2020-07-06"), pd.Timestamp("2020-07-05")]
    assert data.log["watch_ratio"].iloc[1] == pytest.approx(1.907)
    assert data.name == "KuaiRec small_matrix" and data.source == "real"
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "KuaiRec 2.0").rglob("*")}
    assert before == after and path.exists()  # the folder is only read


def test_repeated_big_matrix_records_are_dropped_and_counted(tmp_path):
    path = write_matrix(tmp_path, ROWS[:4] + [ROWS[1], ROWS[1]], name="big_matrix.csv")
    data = load_kuairec(path)
    assert len(data.log) == 4 and data.dropped_duplicates == 2


@pytest.mark.parametrize("column,value,match", [
    ("play_duration", "-5", r"line 3, column play_duration: '-5' is negative"),
    ("video_duration", "abc", r"line 3, column video_duration: 'abc' is not a number"),
    ("watch_ratio", "", r"line 3, column watch_ratio: '' is not a number"),
    ("timestamp", "soon", r"line 3, column timestamp: 'soon' is not a number"),
    ("date", "2020-07-05", r"line 3, column date: '2020-07-05' is not a YYYYMMDD date"),
    ("user_id", "1.5", r"line 3, column user_id: '1.5' is not an integer id"),
])
def test_bad_values_name_the_file_column_and_line(tmp_path, column, value, match):
    rows = [list(r) for r in ROWS]
    rows[1][COLUMNS.index(column)] = value
    path = write_matrix(tmp_path, rows)
    with pytest.raises(DataError, match=f"small_matrix.csv {match}"):
        load_kuairec(path)


def test_a_missing_column_is_named(tmp_path):
    cols = [c for c in COLUMNS if c != "watch_ratio"]
    rows = [r[:7] for r in ROWS]
    with pytest.raises(DataError, match=r"lacks column\(s\) \['watch_ratio'\]"):
        load_kuairec(write_matrix(tmp_path, rows, columns=cols))


def test_named_folders_are_used_or_the_run_stops(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="does not exist"):
        choose_kuairec("auto", str(tmp_path / "nope"), tmp_path)
    write_matrix(tmp_path / "K", name="big_matrix.csv")
    with pytest.raises(DataError, match=r"holds no small_matrix.csv.*set matrix = \"big\""):
        choose_kuairec("auto", str(tmp_path / "K"), tmp_path)
    monkeypatch.setenv("ANALYSIS_KUAIREC_DIR", str(tmp_path / "typo"))
    with pytest.raises(DataError, match=r"\$ANALYSIS_KUAIREC_DIR names .*typo.*never swaps"):
        choose_kuairec("auto", "", tmp_path)
    monkeypatch.delenv("ANALYSIS_KUAIREC_DIR")
    assert choose_kuairec("auto", "", tmp_path)[0] is None
    raw = tmp_path / "data" / "raw" / "KuaiRec 2.0"
    write_matrix(raw)
    assert choose_kuairec("auto", "", tmp_path)[0] == raw / "data" / "small_matrix.csv"
    with pytest.raises(DataError, match="source = 'real' but no KuaiRec folder"):
        choose_kuairec("real", "", tmp_path / "elsewhere")


# ------------------------------------------------------------------------ the simulator


@pytest.fixture(scope="module")
def sim():
    return simulate_kuairec(n_users=150, n_days=30, seed=3)


def test_poisson_quantile_inverts_the_cdf():
    from scipy import stats

    rng = np.random.default_rng(0)
    u, lam = rng.random(2000), rng.uniform(0.5, 40, 2000)
    assert np.array_equal(poisson_quantile(u, lam), stats.poisson.ppf(u, lam).astype(int))


def test_the_observed_branch_reproduces_the_observed_log(sim):
    """Common random numbers: simulating the window with the observed treatment gives
    exactly the outcome the panel computes from the log."""
    panel = build_panel(sim.log).frame.merge(sim.truth["effects"], on=["user", "t"])
    observed = np.where(panel["treated"] == 1, panel["y1"], panel["y0"])
    assert np.array_equal(observed, panel["outcome"].to_numpy())


def test_the_log_implies_the_simulated_treatment(sim):
    """The panel's treatment, computed from the log's watch ratios, is exactly the
    platform's decision inside the simulator."""
    panel = build_panel(sim.log).frame.merge(sim.truth["exposure"], on=["user", "t"],
                                             suffixes=("", "_sim"))
    assert np.array_equal(panel["treated"], panel["treated_sim"])
    assert 0.3 < panel["treated"].mean() < 0.7


def test_the_planted_effect_is_larger_for_less_active_users(sim):
    panel = build_panel(sim.log).frame.merge(sim.truth["effects"], on=["user", "t"])
    light = panel["prior3_plays"] <= panel["prior3_plays"].quantile(1 / 3)
    heavy = panel["prior3_plays"] >= panel["prior3_plays"].quantile(2 / 3)
    assert panel.loc[light, "effect"].mean() > panel.loc[heavy, "effect"].mean()
    assert panel["effect"].mean() > 0


def test_the_simulator_is_deterministic():
    a = simulate_kuairec(n_users=30, n_days=15, seed=9)
    b = simulate_kuairec(n_users=30, n_days=15, seed=9)
    pd.testing.assert_frame_equal(a.log, b.log)
    pd.testing.assert_frame_equal(a.truth["effects"], b.truth["effects"])


# ------------------------------------------------------------------------ the panel


def test_panel_shape_and_drops(sim):
    p = build_panel(sim.log, horizon=7)
    n_days = sim.log["day"].nunique()
    assert len(p.frame) == 150 * (n_days - HISTORY - 7)
    assert p.dropped_window == 150 * 7 and p.dropped_history == 150 * HISTORY
    assert p.dropped_inactive == 0  # the simulator's users play every day
    assert list(p.X.columns) == COVARIATES and not p.X.isna().any().any()


def test_no_covariate_reads_day_t_or_later(sim):
    """Perturbing every play on day t and after never changes a covariate of day t."""
    p = build_panel(sim.log).frame.set_index(["user", "t"])
    days = np.sort(sim.log["day"].unique())
    cut = days[12]
    log = sim.log.copy()
    late = log["day"] >= cut
    log.loc[late, "watch_ratio"] = 3.0 - log.loc[late, "watch_ratio"]
    log = pd.concat([log, log[late]], ignore_index=True)  # and double the later plays
    q = build_panel(log).frame.set_index(["user", "t"])
    t = int((cut - days[0]) / np.timedelta64(1, "D"))
    rows = p.index.get_level_values("t") <= t
    pd.testing.assert_frame_equal(p.loc[rows, COVARIATES], q.loc[rows, COVARIATES])
    assert not p.loc[rows, "treated"].equals(q.loc[rows, "treated"])  # day t itself changed


def test_the_outcome_reads_only_the_days_after_t(sim):
    """Perturbing every play on day t and before never changes the outcome of day t."""
    p = build_panel(sim.log).frame.set_index(["user", "t"])
    days = np.sort(sim.log["day"].unique())
    cut = days[12]
    log = sim.log.copy()
    early = log["day"] <= cut
    log = pd.concat([log, log[early]], ignore_index=True)
    log.loc[log["day"] <= cut, "watch_ratio"] = 0.1
    q = build_panel(log).frame.set_index(["user", "t"])
    t = int((cut - days[0]) / np.timedelta64(1, "D"))
    rows = p.index.get_level_values("t") >= t
    pd.testing.assert_series_equal(p.loc[rows, "outcome"], q.loc[rows, "outcome"])


def test_the_treatment_follows_the_definition():
    log = pd.DataFrame({"user": [1] * 14, "day": pd.date_range("2020-07-01", periods=14),
                        "watch_ratio": [1.2, 0.2] * 7})
    p = build_panel(log, horizon=3, high_share=0.5).frame
    assert (p["treated"] == (p["high_share"] >= 0.5)).all()
    assert p["outcome"].eq(3).all() and p["plays"].eq(1).all()


def test_too_short_a_log_is_an_error():
    log = pd.DataFrame({"user": [1] * 5, "day": pd.date_range("2020-07-01", periods=5),
                        "watch_ratio": [1.0] * 5})
    with pytest.raises(DataError, match=r"spans 5 days.*at least 11 days"):
        build_panel(log, horizon=7)


def test_days_without_plays_are_neither_treated_nor_controls():
    """The estimand compares high-watch days with other *active* days: a day without plays
    leaves the panel (counted), where it used to enter as a control."""
    days = pd.date_range("2020-07-01", periods=16)
    played = [d for k, d in enumerate(days) if k not in (6, 9)]  # two idle days
    log = pd.DataFrame({"user": 1, "day": played,
                        "watch_ratio": [1.2 if k % 2 else 0.3 for k in range(len(played))]})
    p = build_panel(log, horizon=3)
    assert p.dropped_inactive == 2
    assert (p.frame["plays"] > 0).all()
    assert not p.frame["t"].isin([6, 9]).any()
    assert len(p.frame) == 16 - HISTORY - 3 - 2


def test_user_history_and_negative_control_read_only_the_past(sim):
    """The user-level history and the negative-control outcome (days t-7..t-4) read only
    days before t: perturbing day t and later never changes them."""
    cols = ["user_high_share", "user_plays_per_day", "nc_outcome"]
    p = build_panel(sim.log).frame.set_index(["user", "t"])
    days = np.sort(sim.log["day"].unique())
    cut = days[14]
    log = sim.log.copy()
    late = log["day"] >= cut
    log.loc[late, "watch_ratio"] = 3.0 - log.loc[late, "watch_ratio"]
    log = pd.concat([log, log[late]], ignore_index=True)
    q = build_panel(log).frame.set_index(["user", "t"])
    t = int((cut - days[0]) / np.timedelta64(1, "D"))
    rows = p.index.get_level_values("t") <= t
    pd.testing.assert_frame_equal(p.loc[rows, cols], q.loc[rows, cols])


def test_negative_control_and_user_history_by_hand():
    """One user, plays 1, 2, ..., 16 on consecutive days, every other day high-watch."""
    days = pd.date_range("2020-07-01", periods=16)
    rows = [(d, 1.2 if k % 2 else 0.3) for k, d in enumerate(days) for _ in range(k + 1)]
    log = pd.DataFrame({"user": 1, "day": [r[0] for r in rows],
                        "watch_ratio": [r[1] for r in rows]})
    f = build_panel(log, horizon=3).frame.set_index("t")
    plays = np.arange(1, 17)
    for t in f.index:
        lo, hi = max(t - 7, 0), t - 4  # days t-7..t-4, before the log counted as 0
        expected = plays[lo:hi + 1].sum() if hi >= 0 else 0
        assert f.loc[t, "nc_outcome"] == expected
        assert f.loc[t, "user_plays_per_day"] == pytest.approx(plays[:t].mean())
        assert f.loc[t, "user_high_share"] == pytest.approx(np.mean(np.arange(t) % 2 == 1))
