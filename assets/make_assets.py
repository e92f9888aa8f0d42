"""Draw the site's favicon and social-card image (run once; the PNGs are committed).

    python assets/make_assets.py
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from analysis.report.style import PALETTE

HERE = Path(__file__).resolve().parent


def favicon(path: Path) -> None:
    """A 64x64 mark: an estimate with its interval, beside a dashed known answer."""
    fig = Figure(figsize=(1, 1), dpi=64)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.add_patch(FancyBboxPatch(
        (0.04, 0.04), 0.92, 0.92, boxstyle="round,pad=0,rounding_size=0.18",
        fc=PALETTE["blue"], ec="none"))
    ax.plot([0.62, 0.62], [0.16, 0.84], color=PALETTE["orange"], lw=3, ls=(0, (2, 1.2)))
    ax.hlines(0.5, 0.2, 0.82, color="white", lw=4)
    ax.plot(0.55, 0.5, "o", color="white", ms=13)
    fig.savefig(path, dpi=64, transparent=True)


def social_card(path: Path) -> None:
    """A 1200x630 card: the book's title over an interval plot."""
    fig = Figure(figsize=(12, 6.3), dpi=100)
    fig.patch.set_facecolor(PALETTE["blue"])
    fig.text(0.06, 0.72, "Does It Really Work?", color="white", fontsize=56,
             fontweight="bold")
    fig.text(0.06, 0.6, "Causal inference for recommender and personalization changes",
             color="white", fontsize=24)
    ax = fig.add_axes((0.06, 0.1, 0.88, 0.38))
    ax.set_axis_off()
    ax.set_xlim(-0.2, 1.4)
    for y, (est, half) in enumerate([(1.15, 0.1), (0.98, 0.12), (1.02, 0.2), (0.95, 0.35)]):
        ax.hlines(y, est - half, est + half, color="white", lw=5)
        ax.plot(est, y, "o", color="white", ms=16)
    ax.axvline(1.0, color=PALETTE["orange"], lw=4, ls="--")
    fig.savefig(path, dpi=100, facecolor=fig.get_facecolor())


if __name__ == "__main__":
    favicon(HERE / "favicon.png")
    social_card(HERE / "social-card.png")
