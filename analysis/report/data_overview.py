"""Figures of the data chapter, drawn from the ``data_overview`` result."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from analysis.report.style import PALETTE, new_figure
from analysis.result import StudyResult


def fig_rating_distribution(result: StudyResult) -> Figure:
    """Bar chart of how often each star value is used."""
    t = result.table("rating_distribution")
    fig, ax = new_figure(height=3.2)
    whole = t["rating"] % 1 == 0
    ax.bar(t["rating"], t["share"], width=0.4,
           color=np.where(whole, PALETTE["blue"], PALETTE["orange"]))
    ax.set_xticks(t["rating"])
    ax.set_xlabel("Rating (stars)")
    ax.set_ylabel("Share of ratings")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_title("How the star scale is used")
    ax.legend(handles=[Patch(color=PALETTE["blue"], label="Whole stars"),
                       Patch(color=PALETTE["orange"], label="Half stars")], loc="upper left")
    return fig


def fig_activity(result: StudyResult) -> Figure:
    """Log-log histograms of ratings per user and ratings per movie."""
    fig, axes = new_figure(1, 2, height=3.2)
    for ax, (name, unit, color) in zip(
            axes, [("user_activity", "users", PALETTE["blue"]),
                   ("item_popularity", "movies", PALETTE["green"])], strict=True):
        t = result.table(name)
        ax.bar(t["lower"], t[unit], width=t["upper"] - t["lower"], align="edge",
               color=color, edgecolor="white", linewidth=0.4)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"Ratings per {unit[:-1]} (log scale)")
        ax.set_ylabel(f"Number of {unit}")
        ax.set_title(f"Ratings per {unit[:-1]}")
    return fig


def fig_by_year(result: StudyResult) -> Figure:
    """Ratings given per calendar year, with the mean rating on a second axis."""
    t = result.table("ratings_by_year")
    fig, ax = new_figure(height=3.2)
    ax.bar(t["year"], t["ratings"], color=PALETTE["light"], label="Ratings")
    ax.set_ylabel("Ratings given")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
    ax.set_xlabel("Year the rating was given")
    ax2 = ax.twinx()
    ax2.plot(t["year"], t["mean_rating"], color=PALETTE["red"], marker="o", ms=3,
             label="Mean rating")
    ax2.set_ylabel("Mean rating", color=PALETTE["red"])
    ax2.grid(False)
    ax2.spines["right"].set_visible(True)
    ax.set_title("When ratings were given")
    return fig
