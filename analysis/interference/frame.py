"""Slate experiments as a data frame: one row per item shown, any team's log in, ``tidy()`` out.

A slate experiment's log has one row per (slate, item): the slate's id, the item's
position in the recommender's original order, whether it is the slate's focal item,
whether the slate was promoted, and whether the item was clicked; optionally the item's
substitute cluster and the slate's user (to cluster standard errors by user when users
have several slates).  :func:`slate_effects` validates that log and estimates the direct,
spillover and total effects with slate-level (or user-level) clustered errors;
:func:`experiment_frame` writes a simulated :class:`~analysis.interference.designs.Experiment`
in that format.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.errors import DataError
from analysis.interference.designs import SPILLOVERS, Experiment
from analysis.interference.estimators import difference_in_means
from analysis.result import TIDY_COLUMNS, tidy_row

COLUMNS = {"slate": "slate", "position": "position", "focal": "focal",
           "promoted": "promoted", "click": "click"}
"""Required roles and their default column names."""


@dataclass(frozen=True)
class SlateEffects:
    """Direct, spillover and total effects of promotion estimated from a slate log.

    Attributes
    ----------
    table : DataFrame
        One row per estimand: the tidy columns plus ``estimand``, ``per_1000`` and
        ``slates``.
    outcomes : DataFrame
        The per-slate outcomes the effects are differences in means of.
    """

    table: pd.DataFrame
    outcomes: pd.DataFrame

    def tidy(self) -> pd.DataFrame:
        """The estimates with the fixed tidy columns first."""
        return self.table


def _show(value: object) -> str:
    """A value as the user wrote it (numpy scalars as plain Python)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _require(frame: pd.DataFrame, names: dict[str, str]) -> None:
    missing = sorted(v for v in names.values() if v not in frame.columns)
    if missing:
        raise DataError(f"The slate log has no column(s) {missing}; it has "
                        f"{sorted(map(str, frame.columns))}. Pass the names of your columns, "
                        "e.g. slate_effects(log, slate='session_id', click='clicked').")
    for role, col in names.items():
        if frame[col].isna().any():
            raise DataError(f"Column {col!r} ({role}) has {int(frame[col].isna().sum())} "
                            "missing values; drop or fill those rows first.")


def _check_slates(frame: pd.DataFrame, c: dict[str, str]) -> pd.DataFrame:
    """Validate the slate structure; returns the frame sorted by slate and position."""
    dup = frame.duplicated([c["slate"], c["position"]], keep=False)
    if dup.any():
        first = _show(frame.loc[dup, c["slate"]].iloc[0])
        raise DataError(f"{int(dup.sum())} rows repeat a (slate, position) pair, e.g. slate "
                        f"{first}: two items cannot hold one position. Deduplicate the log "
                        "or check that positions are the recommender's original order.")
    for role in ("focal", "promoted"):
        bad = ~frame[c[role]].isin([0, 1, True, False])
        if bad.any():
            raise DataError(f"Column {c[role]!r} ({role}) must be 0/1; found "
                            f"{_show(frame.loc[bad, c[role]].iloc[0])}.")
    g = frame.groupby(c["slate"], sort=True)
    n_focal = g[c["focal"]].sum()
    if (n_focal != 1).any():
        bad = n_focal[n_focal != 1]
        raise DataError(f"{len(bad)} slate(s) have {'no' if bad.iloc[0] == 0 else 'several'} "
                        f"focal items (e.g. slate {_show(bad.index[0])}): every slate needs "
                        "exactly one focal item, the one a promotion moves. Drop those "
                        "slates or mark their focal item.")
    if (g[c["promoted"]].nunique() > 1).any():
        raise DataError(f"Column {c['promoted']!r} varies within a slate: promotion is "
                        "assigned to whole slates, so it must be constant within each.")
    return frame.sort_values([c["slate"], c["position"]], kind="stable")


def slate_outcomes(frame: pd.DataFrame, *, cluster: str | None = None, user: str | None = None,
                   **columns: str) -> pd.DataFrame:
    """Per-slate outcomes of every estimand from a validated slate log.

    Returns one row per slate: ``promoted``, ``direct`` (the focal item's clicks),
    ``total`` and each spillover of :data:`~analysis.interference.designs.SPILLOVERS`
    that the columns identify (``same_cluster`` needs ``cluster``), and ``group`` (the
    user when given, else the slate).
    """
    c = {**COLUMNS, **columns}
    names = {k: c[k] for k in COLUMNS} | ({"cluster": cluster} if cluster else {}) \
        | ({"user": user} if user else {})
    _require(frame, names)
    f = _check_slates(frame, c)
    sid = f[c["slate"]].to_numpy()
    is_focal = f[c["focal"]].to_numpy().astype(bool)
    click = f[c["click"]].to_numpy(dtype=np.float64)
    pos = f[c["position"]].to_numpy()
    slates, codes = np.unique(sid, return_inverse=True)
    focal_pos = np.empty(len(slates), dtype=pos.dtype)
    focal_pos[codes[is_focal]] = pos[is_focal]
    displaced = pos < focal_pos[codes]
    # position rank within the slate (0 = top), whatever the log's numbering
    rank = f.groupby(c["slate"], sort=True).cumcount().to_numpy()
    masks = {"direct": is_focal, "total": np.ones(len(f), dtype=bool), "all": ~is_focal,
             "displaced": displaced, "near_displaced": displaced & (rank <= 1)}
    if cluster:
        cl = f[cluster].to_numpy()
        focal_cl = np.empty(len(slates), dtype=cl.dtype)
        focal_cl[codes[is_focal]] = cl[is_focal]
        same = (cl == focal_cl[codes]) & ~is_focal
        masks |= {"same_cluster": same, "same_cluster_displaced": same & displaced}
    out = pd.DataFrame({"slate": slates})
    out["promoted"] = np.bincount(codes, f[c["promoted"]].to_numpy(dtype=np.float64)) \
        / np.bincount(codes)
    for key in ["direct", *SPILLOVERS, "total"]:
        if key in masks:
            out[key] = np.bincount(codes, click * masks[key], minlength=len(slates))
    if user:
        first = np.unique(codes, return_index=True)[1]
        out["group"] = f[user].to_numpy()[first]
    else:
        out["group"] = slates
    out["promoted"] = out["promoted"].astype(np.int8)
    return out


def slate_effects(frame: pd.DataFrame, *, cluster: str | None = None, user: str | None = None,
                  **columns: str) -> SlateEffects:
    """Direct, spillover and total effects of promoting a slate's focal item.

    Parameters
    ----------
    frame : DataFrame
        One row per (slate, item) shown; it is not modified.
    cluster : str, optional
        Column of each item's substitute cluster (adds the same-cluster spillovers).
    user : str, optional
        Column of the slate's user: standard errors are then clustered by user (slates
        of one user share fatigue and taste); by slate otherwise.
    **columns : str
        Names of the required columns if they differ from :data:`COLUMNS`
        (``slate``, ``position``, ``focal``, ``promoted``, ``click``).

    Returns
    -------
    SlateEffects

    Raises
    ------
    DataError
        Missing columns or values, duplicate (slate, position) pairs, slates without
        exactly one focal item, promotion varying within a slate.
    EstimationError
        One arm only, or fewer than 20 slates (groups) per arm.

    Notes
    -----
    Each estimand is a difference in means of a per-slate sum of clicks over the items
    it counts, :math:`\\hat\\tau = \\bar o_{Z=1} - \\bar o_{Z=0}`, equal to the coefficient
    of the item-level regression of clicks on promotion with errors clustered by slate.
    """
    o = slate_outcomes(frame, cluster=cluster, user=user, **columns)
    rows = []
    for key in ["direct", *SPILLOVERS, "total"]:
        if key not in o:
            continue
        r = difference_in_means(o[key].to_numpy(), o["promoted"].to_numpy(),
                                o["group"].to_numpy())
        row = tidy_row(key, r["estimate"], r["std_error"], estimand=key,
                       per_1000=1000 * r["estimate"], slates=len(o))
        rows.append(row)
    table = pd.DataFrame(rows)
    return SlateEffects(table=table[[*TIDY_COLUMNS, "estimand", "per_1000", "slates"]],
                        outcomes=o)


def experiment_frame(exp: Experiment) -> pd.DataFrame:
    """A simulated experiment as the slate log :func:`slate_effects` reads."""
    s = exp.slates
    S, K = s.n_slates, s.size
    return pd.DataFrame({
        "slate": np.repeat(np.arange(S), K), "user": np.repeat(s.user, K),
        "position": np.tile(np.arange(K), S), "item": s.items.ravel(),
        "cluster": np.asarray(s.cluster_names, dtype=object)[s.cluster.ravel()],
        "focal": (np.arange(K)[None, :] == s.focal[:, None]).ravel().astype(np.int8),
        "promoted": np.repeat(exp.promoted, K), "click": exp.y.ravel()})
