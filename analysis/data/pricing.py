"""A subscription firm's price change: a simulator with every customer's true effect.

The firm offered a new, higher monthly price to some of its customers and wants to
know the effect on each customer's revenue over the next 90 days, and above all for
whom it helps or hurts.  Revenue is the outcome, not churn, because revenue is what
the decision is about: a higher price earns more from every customer who stays and
loses everything from one who leaves, and only revenue nets the two.

Notes
-----
For customer :math:`i` with features :math:`x_i` (monthly usage hours, an engagement
score :math:`X_2`, tenure in months, plan, region and support tickets in the last
quarter):

.. math::

    P(D_i = 1 \\mid x_i) = \\operatorname{clip}\\big(\\Lambda(-0.2 + 0.6 u_i + 0.8 e_i),
    0.05, 0.95\\big),

where :math:`u_i` is the standardised log usage and :math:`e_i = X_2` the engagement
score: the firm tried the new price mostly on heavy, engaged customers, so a naive
comparison confounds the price with engagement.  Revenue is

.. math::

    Y_i = \\mu(x_i) + \\tau(x_i) D_i + \\varepsilon_i, \\qquad \\varepsilon_i \\sim N(0, 8^2),

with :math:`\\mu(x) = 3\\,p(x) + 4\\log(\\text{usage}) + 2e + 0.05\\,\\text{tenure} +`
region and ticket terms, :math:`p(x)` the plan's monthly price.  The effect is

* ``linear`` (the report's design): :math:`\\tau(x) = 0.5 + 8 e` dollars, so the average
  is close to zero while engaged customers gain and disengaged ones are lost;
* ``nonlinear``: :math:`\\tau(x) = -5 + 12\\cdot 1[e > 0.3]\\,1[\\text{usage above its
  median}]`, a step in two features that no model linear in :math:`e` can fit.

Every customer's :math:`\\tau(x_i)` and propensity are kept, so every CATE method can be
scored against the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from analysis.data.common import DataRef, params_fingerprint

Scenario = Literal["linear", "nonlinear"]
PLANS = {"basic": 9.99, "standard": 14.99, "premium": 19.99}
REGIONS = ("north", "south", "east", "west")
FEATURES = ["usage", "log_usage", "engagement", "tenure", "tickets", "plan_standard",
            "plan_premium", "region_south", "region_east", "region_west"]
"""Model features: numeric columns and one-hot plan and region (first level dropped)."""


@dataclass(frozen=True)
class PricingData:
    """Simulated customers.

    Attributes
    ----------
    frame : DataFrame
        ``customer``, the raw features (``usage``, ``engagement``, ``tenure``,
        ``tickets``, ``plan``, ``region``), the model :data:`FEATURES`, ``treated``
        (0/1) and ``revenue``.
    tau : ndarray
        Every customer's true effect.
    propensity : ndarray
        Every customer's true probability of being offered the new price.
    scenario : str
    """

    frame: pd.DataFrame
    tau: np.ndarray
    propensity: np.ndarray
    scenario: str
    params: dict = field(default_factory=dict)

    @property
    def X(self) -> pd.DataFrame:  # noqa: N802 - the usual name of a design matrix
        """The model features."""
        return self.frame[FEATURES]


def true_effect(frame: pd.DataFrame, scenario: Scenario, usage_median: float) -> np.ndarray:
    """:math:`\\tau(x)` of each customer (see the module notes)."""
    e = frame["engagement"].to_numpy()
    if scenario == "linear":
        return 0.5 + 8.0 * e
    return -5.0 + 12.0 * ((e > 0.3) & (frame["usage"].to_numpy() > usage_median))


def pricing_params(*, n: int, scenario: Scenario, seed: int) -> dict:
    """The settings that define a simulated data set (its fingerprint)."""
    return {"n": n, "scenario": scenario, "seed": seed}


def pricing_ref(**params) -> DataRef:
    """A :class:`DataRef` for the simulator."""
    return DataRef(name="synthetic-subscriptions", source="synthetic",
                   fingerprint=params_fingerprint("pricing-v1", pricing_params(**params)))


def simulate_pricing(*, n: int = 5000, scenario: Scenario = "linear",
                     seed: int = 0) -> PricingData:
    """Simulate customers, the non-random price offer and 90-day revenue.

    Parameters
    ----------
    n : int
        Customers.
    scenario : {"linear", "nonlinear"}
        The shape of the true effect (see the module notes).
    seed : int

    Returns
    -------
    PricingData
    """
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 2))
    log_usage = 2.5 + 0.6 * z[:, 0]
    engagement = 0.4 * z[:, 0] + np.sqrt(1 - 0.4**2) * z[:, 1]
    usage = np.exp(log_usage)
    tenure = np.minimum(rng.exponential(24.0, n), 120.0)
    plan = rng.choice(list(PLANS), size=n, p=[0.5, 0.35, 0.15])
    region = rng.choice(REGIONS, size=n)
    tickets = rng.poisson(np.exp(0.3 - 0.3 * engagement))
    frame = pd.DataFrame({"customer": np.arange(n), "usage": usage, "log_usage": log_usage,
                          "engagement": engagement, "tenure": tenure,
                          "tickets": tickets.astype(float), "plan": plan, "region": region})
    for level in ("standard", "premium"):
        frame[f"plan_{level}"] = (plan == level).astype(float)
    for level in REGIONS[1:]:
        frame[f"region_{level}"] = (region == level).astype(float)
    u = (log_usage - 2.5) / 0.6
    propensity = np.clip(1 / (1 + np.exp(-(-0.2 + 0.6 * u + 0.8 * engagement))), 0.05, 0.95)
    treated = (rng.random(n) < propensity).astype(np.int64)
    price = np.vectorize(PLANS.get)(plan)
    region_shift = np.select([region == r for r in REGIONS], [0.0, -2.0, 1.5, 3.0])
    mu = (3 * price + 4 * np.log(usage) + 2 * engagement + 0.05 * tenure + region_shift
          - 1.5 * tickets)
    tau = true_effect(frame, scenario, float(np.median(usage)))
    frame["treated"] = treated
    frame["revenue"] = mu + tau * treated + rng.normal(0, 8.0, n)
    return PricingData(frame=frame, tau=tau, propensity=propensity, scenario=scenario,
                       params=pricing_params(n=n, scenario=scenario, seed=seed))
