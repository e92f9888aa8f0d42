"""The book's one figure style: PNG from matplotlib, same fonts, colours and sizes.

Figures are built with :class:`matplotlib.figure.Figure` rather than pyplot, so a
figure is shown exactly once (when a chapter cell returns it) and never leaks
into global state.
"""

from __future__ import annotations

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

PALETTE = {
    "blue": "#2F5D8C", "orange": "#D9822B", "green": "#3C8D5A", "red": "#B23A48",
    "grey": "#7A7A7A", "light": "#D9D9D9", "purple": "#6B4C9A",
}
CYCLE = [PALETTE[k] for k in ("blue", "orange", "green", "red", "purple", "grey")]
WIDTH, HEIGHT = 7.0, 3.8

RC = {
    "figure.dpi": 150, "savefig.dpi": 150, "savefig.format": "png",
    "savefig.bbox": "tight", "font.size": 10, "axes.titlesize": 11,
    "axes.titleweight": "bold", "axes.titlelocation": "left", "axes.labelsize": 10,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.color": "#E6E6E6", "grid.linewidth": 0.8, "axes.axisbelow": True,
    "axes.prop_cycle": mpl.cycler(color=CYCLE), "legend.frameon": False,
    "xtick.labelsize": 9, "ytick.labelsize": 9,
}


def apply_house_style() -> None:
    """Set the house rcParams globally (called by the chapter setup cell)."""
    mpl.rcParams.update(RC)


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = WIDTH,
               height: float = HEIGHT, **subplot_kw) -> tuple[Figure, Axes | list[Axes]]:
    """A figure in house style, outside pyplot's state machine.

    Returns
    -------
    (Figure, Axes or array of Axes)
    """
    with mpl.rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(nrows, ncols, **subplot_kw)
    return fig, axes
