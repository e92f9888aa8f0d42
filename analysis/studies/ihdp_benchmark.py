"""An external benchmark of every CATE method: IHDP, response surface B (Hill, 2011).

747 children of the Infant Health and Development Program with their real covariates
(25 features), the real (non-random, after Hill's removal of treated children of
non-white mothers) treatment, and outcomes simulated by Hill's response surface B, whose
true effects are known.  The data ship inside EconML
(``econml.data.dgps.ihdp_surface_B``); nothing is downloaded.  Each realization draws
new surface coefficients and noise; every :func:`~analysis.estimators.cate.fit_cate`
method is fitted on it (one task per realization through
:func:`analysis.parallel.map_tasks`) and scored against the true effects: √PEHE, the ATE
error, whether the ATE interval covers the sample's true ATE, and the share of children
whose true effect lies in their 95% interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.config import StudyConfig, at_least, folds, seed_field
from analysis.data.common import DataRef, files_fingerprint
from analysis.errors import ConfigError
from analysis.estimators.cate import LABELS, METHODS, fit_cate, score_cate
from analysis.parallel import map_tasks
from analysis.result import StudyResult, check_row, checks_frame, coverage_check
from analysis.studies import ihdp_benchmark_facts as facts_mod
from analysis.studies.base import Timer, make_result

NAME = "ihdp_benchmark"
TITLE = "An external benchmark: IHDP"
CHAPTER = "chapters/ihdp.qmd"
SUMMARY_TEMPLATE = "studies/ihdp_benchmark.md.j2"
CALLOUT_TEMPLATE = "studies/ihdp_benchmark_callout.md.j2"
DESIGN = "simulation"
"""Semi-synthetic by design: real covariates and treatment, simulated outcomes."""
APPENDIX = True
"""An appendix: the handout shows the analysis chapters only."""
N_UNITS = 747


@dataclass(frozen=True, kw_only=True)
class Config(StudyConfig):
    """Settings of the IHDP benchmark.

    Attributes
    ----------
    n_realizations : int
        Realizations of surface B, numbered from 0 (EconML's ``random_state``).
    n_folds : int
        Cross-fitting folds of every method.
    n_trees : int
        Trees of the causal forest (a multiple of 4).
    bcf_gfr, bcf_mcmc : int
        Warm-start sweeps and retained posterior draws of the Bayesian causal forest.
    """

    seed: int = seed_field(20110101)
    n_realizations: int = at_least(50, 2, "a spread needs two realizations")
    n_folds: int = folds(3)
    n_trees: int = at_least(400, 20, "a forest of fewer trees has no variance estimate")
    bcf_gfr: int = at_least(10, 1, "the BCF starts from grow-from-root sweeps")
    bcf_mcmc: int = at_least(500, 20, "a 95% credible interval needs posterior draws")

    def check(self) -> None:
        """Forests are built in sub-forests of four trees."""
        if self.n_trees % 4:
            raise ConfigError(f"n_trees = {self.n_trees} is not a multiple of 4; the forest's "
                              "variance estimate needs whole sub-forests of 4 trees. Use "
                              "e.g. 100 or 400.")

    def settings(self) -> dict[str, dict]:
        """Per-method settings for :func:`fit_cate`."""
        return {"causal_forest": {"n_estimators": self.n_trees},
                "bcf": {"num_gfr": self.bcf_gfr, "num_mcmc": self.bcf_mcmc}}


def _data_files() -> list[Path]:
    import econml.data

    return sorted((Path(econml.data.__file__).parent / "ihdp").glob("*"))


def data_ref(config: Config, root: Path | None = None) -> DataRef:
    """EconML's copy of the IHDP covariates (fingerprinted), surface B."""
    return DataRef(name="IHDP response surface B (EconML's copy)", source="synthetic",
                   fingerprint=files_fingerprint(_data_files()),
                   path=_data_files()[0].parent if _data_files() else None)


def realization(r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Realization ``r`` of surface B: ``X`` (747, 25; EconML's intercept column
    dropped), outcome ``y``, treatment ``t`` and the true effects ``tau``."""
    from econml.data.dgps import ihdp_surface_B

    y, t, X, tau = ihdp_surface_B(random_state=int(r))
    return (np.asarray(X, dtype=np.float64)[:, 1:], np.asarray(y, dtype=np.float64),
            np.asarray(t, dtype=np.float64), np.asarray(tau, dtype=np.float64))


def run_realization(item: tuple[int, tuple[str, ...], dict, int], seed: int) -> list[dict]:
    """Every method on one realization, sharing one nuisance choice (one task)."""
    r, methods, settings, n_folds = item
    X, y, t, tau = realization(r)
    truth = float(tau.mean())
    rows, nuisance = [], "auto"
    for m in methods:
        fit = fit_cate(X, y, t, method=m, seed=seed, n_folds=n_folds, nuisance=nuisance,
                       **settings.get(m, {}))
        nuisance = fit.nuisance
        s = score_cate(fit.cate, tau)
        has_ci = bool(np.isfinite(fit.ate["ci_lower"]))
        rows.append({"realization": r, "method": m, "sqrt_pehe": s["sqrt_pehe"],
                     "ate": fit.ate["estimate"], "truth": truth,
                     "ate_error": abs(fit.ate["estimate"] - truth),
                     "ate_covered": bool(fit.ate["ci_lower"] <= truth <= fit.ate["ci_upper"])
                     if has_ci else None,
                     "cate_coverage": s["coverage"], "mean_width": s["mean_width"]})
    return rows


def run(config: Config, root: Path | None = None) -> StudyResult:
    """Every method on ``n_realizations`` realizations of surface B.

    Returns
    -------
    StudyResult
        Tables ``realizations`` (one row per realization and method), ``summary`` (per
        method: mean and SD of √PEHE and |ATE error|, ATE-interval coverage with its Monte
        Carlo SE, mean per-unit coverage), ``published``, ``checks``, ``headline``.
    """
    timer = Timer()
    items = [(r, METHODS, config.settings(), config.n_folds)
             for r in range(config.n_realizations)]
    rows = map_tasks(run_realization, items, seed=config.seed)
    reps = pd.DataFrame([row for block in rows for row in block])
    summary = summarise(reps)
    facts = facts_mod.facts(config, summary)
    tables = {"realizations": reps, "summary": summary, "published": facts_mod.PUBLISHED,
              "checks": checks_frame(checks(reps)),
              "headline": facts_mod.headline(facts)}
    return make_result(study=NAME, config=config, ref=data_ref(config, root),
                       rows=N_UNITS * config.n_realizations, tables=tables, facts=facts,
                       timer=timer)


def summarise(reps: pd.DataFrame) -> pd.DataFrame:
    """Per method: mean and spread over realizations."""
    out = []
    for m in METHODS:
        g = reps[reps["method"] == m]
        if g.empty:
            continue
        n = len(g)
        cov = g["ate_covered"].dropna().astype(float)
        p = float(cov.mean()) if len(cov) else float("nan")
        unit = g["cate_coverage"]
        out.append({"method": m, "realizations": n,
                    "pehe_mean": float(g["sqrt_pehe"].mean()),
                    "pehe_sd": float(g["sqrt_pehe"].std(ddof=1)) if n > 1 else float("nan"),
                    "ate_error_mean": float(g["ate_error"].mean()),
                    "ate_error_sd": float(g["ate_error"].std(ddof=1)) if n > 1
                    else float("nan"),
                    "ate_coverage": p,
                    "ate_coverage_mc_se": float(np.sqrt(p * (1 - p) / len(cov)))
                    if len(cov) else float("nan"),
                    "cate_coverage_mean": float(unit.mean()),
                    "cate_coverage_sd": float(unit.std(ddof=1)) if n > 1 else float("nan"),
                    "mean_width": float(g["mean_width"].mean())})
    return pd.DataFrame(out)


def checks(reps: pd.DataFrame) -> list[dict]:
    """Validation rows: each method's ATE interval over the realizations (Monte Carlo
    coverage of the sample's true ATE), and, as the counterexample, the causal forest's
    per-unit intervals, whose shortfall on IHDP motivated this appendix (issue 17: 40% in
    a first run).

    The per-unit intervals of the other methods are not validation rows: none is
    expected to reach the nominal 95% on this surface, and the text and the warnings of
    the targeting section report their coverage against the book's 80% bar instead.
    """
    rows = []
    for m in METHODS:
        g = reps[(reps["method"] == m) & reps["ate_covered"].notna()]
        if len(g):
            rows.append(coverage_check(f"{LABELS[m]}: ATE interval, IHDP surface B",
                                       g["ate_covered"].astype(bool),
                                       detail=f"{len(g)} realizations"))
    g = reps.loc[reps["method"] == "causal_forest", "cate_coverage"]
    if len(g) and g.notna().all():
        half = 1.959964 * float(g.std(ddof=1) / np.sqrt(len(g))) if len(g) > 1 else 0.5
        rows.append(check_row(f"{LABELS['causal_forest']}: per-unit CATE intervals, IHDP "
                              "surface B", "Monte Carlo coverage", float(g.mean()),
                              float(g.mean()) - half, float(g.mean()) + half, 0.95, "nominal",
                              role="counterexample",
                              detail=f"mean share of children covered, {len(g)} realizations"))
    return rows
