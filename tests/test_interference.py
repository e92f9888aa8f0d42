"""Interference in slates: the slates, the click model, both designs and their oracles, the
estimators against hand computations, bad input, the study and its Monte Carlo check."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.data.synthetic import simulate_movielens
from analysis.errors import DataError, EstimationError, VarianceWarning
from analysis.interference import (
    ClickModel,
    click_probability,
    difference_in_means,
    expected_clicks,
    experiment_frame,
    hudgens_halloran,
    run_design,
    slate_effects,
    spillover_masks,
)
from analysis.interference.clicks import draw_uniforms, promoted_positions
from analysis.interference.designs import blocked_assignment
from analysis.interference.slates import build_slates
from analysis.result import CHECK_COLUMNS, TIDY_COLUMNS
from analysis.studies.interference_parts import coverage_study, outcomes


@pytest.fixture(scope="module")
def slates():
    data = simulate_movielens(n_users=120, n_items=800, n_ratings=8000, seed=3)
    return build_slates(data, slate_size=8, sessions=6, seed=3, n_factors=8)


@pytest.fixture(scope="module")
def exp(slates):
    return run_design(slates, ClickModel(), seed=11)


# ------------------------------------------------------------------ slates and clicks


def test_slates_are_ranked_without_repeats_with_a_lower_ranked_focal_item(slates):
    S, K = slates.items.shape
    assert S == 120 * 6 and K == 8
    assert (np.diff(slates.score, axis=1) <= 1e-12).all()  # recommender order
    assert all(len(set(row)) == K for row in slates.items)
    assert ((slates.focal >= K // 2) & (slates.focal < K)).all()
    assert slates.cluster.max() < len(slates.cluster_names)


def test_promotion_moves_the_focal_item_to_the_top_and_pushes_the_others_down(slates):
    pos = promoted_positions(slates)
    rows = np.arange(slates.n_slates)
    assert (pos[rows, slates.focal] == 0).all()
    assert all(sorted(p) == list(range(slates.size)) for p in pos)
    above = np.arange(slates.size)[None, :] < slates.focal[:, None]
    assert (pos[above] == np.broadcast_to(np.arange(slates.size), pos.shape)[above] + 1).all()


def test_click_probability_matches_the_formula_for_one_slate(slates):
    m = ClickModel()
    s, z, f = 5, 1, 0.4
    p = click_probability(slates, m, np.full(slates.n_slates, z), np.full(slates.n_slates, f))[s]
    K, focal = slates.size, slates.focal[s]
    pos = promoted_positions(slates)[s]
    a = 1 / (1 + np.exp(-(m.alpha + m.beta * slates.score[s]))) * (1 - m.fatigue * f)
    a[focal] = min(0.95, a[focal] * (1 + m.intensity * (1 - m.fatigue_promotion * f)))
    pull = (pos + 1.0) ** -m.eta * a
    c = slates.cluster[s]
    expect = [pull[j] / (1 + m.attention * sum((1 + m.substitution * (c[i] == c[j])) * pull[i]
                                               for i in range(K) if i != j))
              for j in range(K)]
    np.testing.assert_allclose(p, expect, rtol=1e-12)


def test_promotion_helps_the_focal_item_and_costs_the_rest_of_the_slate(slates):
    """The focal item gains in every slate and the other items lose in total in every slate;
    the displaced items lose, while items below the focal one may gain a little (the
    strong items pushed down one position now draw less attention)."""
    n = slates.n_slates
    p1 = click_probability(slates, ClickModel(), np.ones(n), np.zeros(n))
    p0 = click_probability(slates, ClickModel(), np.zeros(n), np.zeros(n))
    focal = np.zeros_like(p1, dtype=bool)
    focal[np.arange(n), slates.focal] = True
    assert (p1[focal] > p0[focal]).all()
    others = ((p1 - p0) * ~focal).sum(axis=1)
    assert (others < 0).all()
    displaced = spillover_masks(slates)["displaced"]
    assert ((p1 - p0)[displaced] < 0).mean() > 0.9


def test_expected_clicks_is_the_mean_over_session_lengths():
    rng = np.random.default_rng(0)
    p, sd = np.array([0.02, 0.2, 0.6]), 1.0
    r = np.exp(sd * rng.standard_normal(400_000) - sd**2 / 2)
    mc = np.minimum(p[:, None] * r, 0.99).mean(axis=1)
    np.testing.assert_allclose(expected_clicks(p, sd), mc, rtol=5e-3)
    np.testing.assert_allclose(expected_clicks(p, 0.0), p)


def test_blocked_assignment_promotes_the_planned_share_of_each_users_sessions():
    user = np.repeat(np.arange(50), 8)
    share = np.where(user < 25, 0.25, 0.75)
    z = blocked_assignment(user, share, np.random.default_rng(1))
    per_user = pd.Series(z).groupby(user).sum()
    assert (per_user[:25] == 2).all() and (per_user[25:] == 6).all()


# ------------------------------------------------------------------ designs and oracles


def test_observed_clicks_are_one_of_the_potential_outcomes_drawn_with_common_numbers(exp):
    z = exp.promoted[:, None] == 1
    np.testing.assert_array_equal(exp.y, np.where(z, exp.y1, exp.y0))
    # same uniforms: an item clicked without promotion whose probability rose stays clicked
    assert exp.y1.dtype == np.int8 and set(np.unique(exp.y)) <= {0, 1}
    # the two potential outcomes differ on few items (promotion changes some clicks only)
    assert 0 < (exp.y1 != exp.y0).mean() < 0.2


def test_the_oracle_is_additive_and_the_spillovers_nest(exp):
    o = exp.oracle_slate()
    assert o["direct"] > 0 and o["all"] < 0
    assert o["direct"] + o["all"] == pytest.approx(o["total"], abs=1e-12)
    assert o["same_cluster_displaced"] >= min(o["same_cluster"], o["displaced"]) - 1e-12
    m = spillover_masks(exp.slates)
    assert not (m["all"][np.arange(exp.slates.n_slates), exp.slates.focal]).any()
    assert (m["near_displaced"] <= m["displaced"]).all()


def test_the_oracle_is_the_mean_of_many_draws_of_the_clicks(slates):
    """The oracle (expected clicks) against 200 fresh draws of sessions and clicks."""
    m = ClickModel()
    n = slates.n_slates
    base = run_design(slates, m, seed=2)
    share = np.full(n, 0.5)
    effects = []
    for seed in range(200):
        d = draw_uniforms(slates, seed)
        other = (np.floor(share * 6 + 0.5) - np.array([[1], [0]])) / 5
        p1 = click_probability(slates, m, np.ones(n), other[0], d.session)
        p0 = click_probability(slates, m, np.zeros(n), other[1], d.session)
        effects.append(((d.uniforms < p1).sum(axis=1) - (d.uniforms < p0).sum(axis=1)).mean())
    se = np.std(effects) / np.sqrt(len(effects))
    assert abs(np.mean(effects) - base.oracle_slate()["total"]) < 4 * se


def test_the_two_stage_design_randomises_users_to_saturations(slates):
    two = run_design(slates, ClickModel(), design="two_stage", saturations=(0.25, 0.75),
                     seed=5)
    by_user = pd.DataFrame({"u": slates.user, "psi": two.saturation, "z": two.promoted})
    g = by_user.groupby("u").agg(psi=("psi", "first"), share=("z", "mean"),
                                 n=("psi", "nunique"))
    assert (g["n"] == 1).all()
    assert set(g["psi"]) == {0.25, 0.75}
    assert abs((g["psi"] == 0.75).mean() - 0.5) < 0.01
    np.testing.assert_allclose(g["share"], np.where(g["psi"] == 0.25, 2 / 6, 4 / 6))


# ------------------------------------------------------------------ estimators


def test_difference_in_means_with_slate_clusters_is_the_per_slate_difference(exp):
    o = outcomes(exp)["total"]
    r = difference_in_means(o, exp.promoted, np.arange(len(o)))
    a, b = o[exp.promoted == 1], o[exp.promoted == 0]
    assert r["estimate"] == pytest.approx(a.mean() - b.mean(), abs=1e-12)
    # CR1 with one row per cluster is HC1: sqrt(n/(n-1)) times the Neyman SE
    n = len(o)
    neyman = np.sqrt(a.var(ddof=0) / len(a) + b.var(ddof=0) / len(b))
    assert r["std_error"] == pytest.approx(neyman * np.sqrt(n / (n - 2)), rel=1e-9)


def test_item_rows_clustered_by_slate_equal_the_slate_level_analysis(exp):
    K = exp.slates.size
    items, z = exp.y.astype(float).ravel(), np.repeat(exp.promoted, K)
    clustered = difference_in_means(items, z, np.repeat(np.arange(exp.slates.n_slates), K))
    slate_level = difference_in_means(outcomes(exp)["total"], exp.promoted,
                                      np.arange(exp.slates.n_slates))
    assert K * clustered["estimate"] == pytest.approx(slate_level["estimate"], rel=1e-10)
    # the same sandwich; CR1's (N-1)/(N-k) factor counts rows, items here and slates there
    S = exp.slates.n_slates
    dof = np.sqrt((S * K - 1) / (S * K - 2) * (S - 2) / (S - 1))
    assert K * clustered["std_error"] == pytest.approx(slate_level["std_error"] * dof,
                                                       rel=1e-10)


def _hh_by_hand(y, z, g, psi, levels):
    """Hudgens & Halloran (2008), eqs. for the estimators and the variance estimators under
    stratified interference, one group at a time in plain Python; an arm with a single unit
    has no within-group variance and contributes nothing to the sum (as in R's
    ``interference::estimates_hierarchical``, ``sum(var / K, na.rm = TRUE)``)."""

    def var_over_n(a):
        return a.var(ddof=1) / len(a) if len(a) >= 2 else 0.0

    groups = sorted(set(g))
    C = len(groups)
    rec = {}
    for i in groups:
        yi, zi = y[g == i], z[g == i]
        rec[i] = dict(psi=psi[g == i][0], m1=yi[zi == 1].mean(), m0=yi[zi == 0].mean(),
                      w1=var_over_n(yi[zi == 1]), w0=var_over_n(yi[zi == 0]), all=yi.mean())
    out = {}
    for s in levels:
        G = [r for r in rec.values() if r["psi"] == s]
        c = len(G)
        de_i = np.array([r["m1"] - r["m0"] for r in G])
        within = sum(r["w1"] + r["w0"] for r in G)
        out[f"DE({s:g})"] = (de_i.mean(),
                             np.sqrt((1 - c / C) * de_i.var(ddof=1) / c + within / (C * c)))
    lo, hi = ([r for r in rec.values() if r["psi"] == s] for s in levels)

    def contrast(a, b):
        a, b = np.array(a), np.array(b)
        return a.mean() - b.mean(), np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))

    out["IE"] = contrast([r["m0"] for r in hi], [r["m0"] for r in lo])
    out["TE"] = contrast([r["m1"] for r in hi], [r["m0"] for r in lo])
    out["OE"] = contrast([r["all"] for r in hi], [r["all"] for r in lo])
    return out


def test_hudgens_halloran_matches_a_hand_computation_and_decomposes():
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(30), 8)
    psi = np.where(rng.permutation(30) < 15, 0.75, 0.25)[g]
    z = blocked_assignment(g, psi, rng)
    y = rng.poisson(2 + z - 0.5 * (psi == 0.75)).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("error", VarianceWarning)  # both arms >= 2 units: no term dropped
        hh = hudgens_halloran(y, z, g, psi, (0.25, 0.75)).table.set_index("term")
    hand = _hh_by_hand(y, z, g, psi, (0.25, 0.75))
    for term, (est, se) in hand.items():
        assert hh.loc[term, "estimate"] == pytest.approx(est, abs=1e-12), term
        assert hh.loc[term, "std_error"] == pytest.approx(se, rel=1e-12), term
    assert hh.loc["TE", "estimate"] == pytest.approx(
        hh.loc["DE(0.75)", "estimate"] + hh.loc["IE", "estimate"], abs=1e-12)
    assert list(hh.reset_index().columns[:6]) == TIDY_COLUMNS


def test_hudgens_halloran_computes_groups_with_a_single_treated_or_untreated_unit():
    """Saturations 0.2 and 0.8 in groups of 6 promote 1 and 5 units: every group has an arm
    of one.  The old code refused this design; the point estimates are defined and the
    variance drops the undefined within-group terms, with a warning that counts them."""
    rng = np.random.default_rng(8)
    g = np.repeat(np.arange(24), 6)
    psi = np.where(rng.permutation(24) < 12, 0.8, 0.2)[g]
    z = blocked_assignment(g, psi, rng)
    assert set(pd.Series(z).groupby(g).sum()) == {1, 5}
    y = rng.normal(1 + 0.5 * z - 0.3 * (psi == 0.8), 1.0)
    with pytest.warns(VarianceWarning, match=r"24 of 24 groups have a single treated or a "
                                             r"single untreated unit.*dropped"):
        hh = hudgens_halloran(y, z, g, psi, (0.2, 0.8)).table.set_index("term")
    hand = _hh_by_hand(y, z, g, psi, (0.2, 0.8))
    for term, (est, se) in hand.items():
        assert hh.loc[term, "estimate"] == pytest.approx(est, abs=1e-12), term
        assert hh.loc[term, "std_error"] == pytest.approx(se, rel=1e-12), term
    assert np.isfinite(hh["std_error"]).all() and (hh["std_error"] > 0).all()


def test_hudgens_halloran_counts_only_the_groups_that_lost_a_variance_term():
    """Mixed design: groups of 8 at 0.25 (2 of 8 promoted, both arms >= 2) and groups of 5
    at 0.8 (4 of 5: one untreated unit); only the latter lose a term."""
    rng = np.random.default_rng(9)
    sizes = np.r_[np.full(10, 8), np.full(10, 5)]
    g = np.repeat(np.arange(20), sizes)
    psi = np.where(g < 10, 0.25, 0.8)
    z = blocked_assignment(g, psi, rng)
    y = rng.normal(z, 1.0)
    with pytest.warns(VarianceWarning, match=r"^10 of 20 groups"):
        hh = hudgens_halloran(y, z, g, psi, (0.25, 0.8)).table.set_index("term")
    for term, (est, se) in _hh_by_hand(y, z, g, psi, (0.25, 0.8)).items():
        assert hh.loc[term, "estimate"] == pytest.approx(est, abs=1e-12), term
        assert hh.loc[term, "std_error"] == pytest.approx(se, rel=1e-12), term


# ------------------------------------------------------------------ any data frame in


def test_slate_effects_reads_a_log_and_reproduces_the_array_estimates(exp):
    log = experiment_frame(exp)
    before = log.copy()
    fit = slate_effects(log.sample(frac=1.0, random_state=0), cluster="cluster")
    pd.testing.assert_frame_equal(log, before)
    t = fit.tidy().set_index("term")
    assert list(fit.tidy().columns[:6]) == TIDY_COLUMNS
    for key, o in outcomes(exp).items():
        r = difference_in_means(o, exp.promoted, np.arange(exp.slates.n_slates))
        assert t.loc[key, "estimate"] == pytest.approx(r["estimate"], abs=1e-12), key
        assert t.loc[key, "std_error"] == pytest.approx(r["std_error"], rel=1e-10), key
    by_user = slate_effects(log, cluster="cluster", user="user").tidy().set_index("term")
    assert by_user.loc["total", "estimate"] == pytest.approx(t.loc["total", "estimate"])
    assert by_user.loc["total", "std_error"] != t.loc["total", "std_error"]


def _log(n_slates=60, K=4, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"slate": np.repeat(np.arange(n_slates), K),
                         "position": np.tile(np.arange(K), n_slates),
                         "focal": np.tile(np.arange(K) == K - 1, n_slates).astype(int),
                         "promoted": np.repeat(np.arange(n_slates) % 2, K),
                         "click": rng.integers(0, 2, n_slates * K)})


def _drop_focal(log):
    return log.drop(index=log.index[(log["slate"] == 3) & (log["focal"] == 1)])


def _duplicate_position(log):
    out = log.copy()
    out.loc[(out["slate"] == 5) & (out["position"] == 1), "position"] = 0
    return out


@pytest.mark.parametrize(("mutate", "error", "match"), [
    (_drop_focal, DataError, r"1 slate\(s\) have no focal items .*slate 3.*exactly one"),
    (_duplicate_position, DataError, r"repeat a \(slate, position\) pair, e.g. slate 5"),
    (lambda d: d.assign(promoted=1), EstimationError, r"one arm only.*Randomise"),
    (lambda d: d[d["slate"] < 30], EstimationError,
     r"Only 15 unpromoted slates.*at least 20 per arm"),
    (lambda d: d.rename(columns={"click": "clicked"}), DataError,
     r"no column\(s\) \['click'\].*click='clicked'"),
    (lambda d: d.assign(promoted=np.arange(len(d)) % 2), DataError, r"varies within a slate"),
    (lambda d: d.assign(focal=2), DataError, r"'focal' \(focal\) must be 0/1"),
])
def test_bad_slate_logs_are_named(mutate, error, match):
    with pytest.raises(error, match=match):
        slate_effects(mutate(_log()))


def test_a_saturation_design_with_one_group_per_arm_is_refused():
    g = np.repeat(np.arange(3), 8)
    psi = np.array([0.25, 0.25, 0.75])[g]
    z = np.tile([1, 0], 12)
    with pytest.raises(EstimationError, match=r"fewer than two groups .*at least two groups"):
        hudgens_halloran(np.ones(24), z, g, psi, (0.25, 0.75))


def test_a_group_without_untreated_units_is_refused():
    g = np.repeat(np.arange(6), 4)
    psi = np.where(g < 3, 0.25, 1.0)
    z = np.where(psi == 1.0, 1, np.tile([1, 0], 12))
    with pytest.raises(EstimationError, match=r"no treated or no untreated unit.*strictly "
                                              r"between 0 and 1"):
        hudgens_halloran(np.arange(24.0), z, g, psi, (0.25, 1.0))


def test_designs_refuse_single_session_users_and_tiny_slates(slates):
    from dataclasses import replace
    one = replace(slates, user=np.arange(slates.n_slates))
    with pytest.raises(EstimationError, match=r"single session.*sessions >= 2"):
        run_design(one, ClickModel())
    with pytest.raises(EstimationError, match=r"design='cluster'"):
        run_design(slates, ClickModel(), design="cluster")
    data = simulate_movielens(n_users=20, n_items=300, n_ratings=1500, seed=1)
    with pytest.raises(DataError, match=r"slate_size = 3: a slate needs at least 4"):
        build_slates(data, slate_size=3)


# ------------------------------------------------------------------ the study


@pytest.fixture(scope="module")
def result(quick_runs):
    return quick_runs["interference_slates"].result


def test_study_tables_decompose_and_sit_beside_their_oracles(result):
    est = result.table("estimates")
    assert list(est.columns[:6]) == TIDY_COLUMNS
    assert set(est["estimator"]) == {"Difference in means", "Lin regression adjustment",
                                     "AIPW (cross-fitted LightGBM)"}
    dim = est[est["estimator"] == "Difference in means"].set_index("estimand")
    assert dim.loc["direct", "estimate"] + dim.loc["all", "estimate"] == pytest.approx(
        dim.loc["total", "estimate"], abs=1e-12)
    assert list(result.table("checks").columns) == CHECK_COLUMNS
    hh = result.table("hh").set_index("term")
    high = f"DE({result.provenance.config['saturation_high']:g})"
    assert hh.loc["TE", "oracle"] == pytest.approx(hh.loc[high, "oracle"]
                                                   + hh.loc["IE", "oracle"], abs=1e-12)
    pol = result.table("policies")
    assert len(pol) == 5 and (pol["ci_lower_per_1000"] <= pol["ci_upper_per_1000"]).all()
    from analysis.report import interference_slates as rep

    bullets = rep.bullets(result).data
    assert bullets.count("\n- ") >= 3 and "oracle" in bullets
    quoted = rep.tbl_report(result).data
    assert "Per slate" not in quoted
    for label, value, unit in (("Same-cluster competitors (per item)", "-0.058",
                                "click-rate difference per item"),
                               ("All non-focal items (per item)", "-0.044",
                                "click-rate difference per item"),
                               ("Same-cluster spillover (per slate)", "-0.145",
                                "clicks per promoted slate"),
                               ("Same-cluster spillover (per 1,000 slates)", "-145.4",
                                "clicks per 1,000 promoted slates")):
        assert any(label in line and value in line and unit in line
                   for line in quoted.splitlines()), (label, quoted)


def test_study_checks_pass_and_counterexamples_fail_on_the_quick_profile(result):
    """The validation appendix's promise for this study: every method check recovers its
    known answer and every deliberate counterexample (the item-level A/B read as the
    slate's value, unclustered item-row errors) misses it."""
    checks = result.table("checks")
    method = checks[checks["role"] == "method"]
    counter = checks[checks["role"] == "counterexample"]
    assert method["covered"].all(), method.loc[~method["covered"], "check"].tolist()
    assert len(counter) >= 2 and not counter["covered"].any(), counter
    assert (checks["check"].str.startswith("Off-policy value")).sum() == 5


def test_policies_are_valued_at_the_saturation_they_imply(exp):
    """The exact value of promoting nothing is 0; of promoting everything, every session
    promoted with all of the user's other sessions promoted (fatigue 1), which differs
    from the slate effects at the experiment's 50% saturation."""
    from analysis.studies.interference_parts import policy_value

    m = ClickModel()
    s = exp.slates
    n = s.n_slates
    assert policy_value(s, m, np.zeros(n)) == 0.0
    on = expected_clicks(click_probability(s, m, np.ones(n), np.ones(n)), m.session_sd)
    off = expected_clicks(click_probability(s, m, np.zeros(n), np.zeros(n)), m.session_sd)
    assert policy_value(s, m, np.ones(n)) == pytest.approx((on - off).sum(axis=1).mean(),
                                                           rel=1e-12)
    at_half = exp.slate_effects().sum(axis=1).mean()
    assert policy_value(s, m, np.ones(n)) < at_half - 0.01  # fatigue at saturation 1
    # a policy promoting one session per user: that session's fatigue is 0, the others' 1/(n-1)
    first = np.r_[True, s.user[1:] != s.user[:-1]].astype(float)
    from analysis.interference.clicks import other_share
    f = other_share(first, s.user)
    on = expected_clicks(click_probability(s, m, first, f), m.session_sd)
    assert policy_value(s, m, first) == pytest.approx((on - off).sum(axis=1).mean(), rel=1e-12)


@pytest.mark.slow
def test_monte_carlo_coverage_of_slate_clustered_and_hudgens_halloran_intervals():
    """800 re-randomisations of both designs on 1,000 fixed slates.

    The slates are fixed and only the assignment is redrawn, so this is design-based
    (finite-population) inference, where the cluster-robust variance of a difference in
    means is conservative by the variance of the slates' own effects (Neyman): the
    intervals should cover at least 95% up to Monte Carlo error (SE 0.8 points at 800
    runs), with standard errors at or somewhat above the estimates' actual spread.  Item
    rows analysed as independent under-cover, and the Hudgens-Halloran errors are
    conservative or close."""
    data = simulate_movielens(n_users=100, n_items=1500, n_ratings=20000, seed=7)
    s = build_slates(data, slate_size=10, sessions=10, seed=7)
    _, summary = coverage_study(s, ClickModel(), (0.3, 0.7), reps=800, seed=99)
    cov = summary.set_index("interval")
    for name in ("Direct effect, slate-clustered", "Total effect, slate-clustered"):
        row = cov.loc[name]
        assert row["coverage"] >= 0.95 - 3 * row["mc_se"], cov
        assert row["coverage"] <= 0.99, cov  # conservative, not useless
        assert 0.95 <= row["mean_se"] / row["sd_error"] <= 1.15, cov
    direct = cov.loc["Direct effect, slate-clustered", "coverage"]
    total = cov.loc["Total effect, slate-clustered", "coverage"]
    unclustered = cov.loc["Total effect from item rows, unclustered", "coverage"]
    assert unclustered < min(direct, total) - 0.02, cov
    hh = cov[cov.index.str.startswith("Hudgens-Halloran")]
    ratio = hh["mean_se"] / hh["sd_error"]
    assert (ratio > 0.85).all(), hh
    assert (hh["coverage"] >= 0.90).all(), hh
