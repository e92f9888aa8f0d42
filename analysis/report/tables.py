"""Tables that read well in both HTML and the Typst PDF.

Tables are emitted as Markdown pipe tables (``text/markdown``): Quarto turns a
labelled cell's Markdown table into a native table in every format, with the
caption and cross-reference, and no raw HTML ends up in the PDF.

When a table is wider than a line, pandoc wraps its cells and sizes the columns
by the number of dashes under each header.  :func:`column_widths` sets those
dashes so that no column is squeezed below its longest word (short columns such
as numbers never wrap) and long-text columns share what is left.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from IPython.display import Markdown


def fmt_number(x: object, digits: int = 3) -> str:
    """A number with fixed decimals and thousands separators; ``—`` for missing."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)) or x is pd.NA:
        return "—"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    if isinstance(x, (float, np.floating)):
        return f"{float(x):,.{digits}f}"
    return str(x)


def fmt_percent(x: object, digits: int = 1) -> str:
    """A share as a percentage: ``0.104`` -> ``10.4%``."""
    if x is None or x is pd.NA or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    return f"{100 * float(x):.{digits}f}%"


def fmt_pvalue(p: object) -> str:
    """p-values: ``< 0.001`` below a thousandth (a non-breaking space, so a narrow column
    never splits it), three decimals otherwise."""
    if p is None or (isinstance(p, float) and not np.isfinite(p)):
        return "—"
    return "<\u00a00.001" if float(p) < 0.001 else f"{float(p):.3f}"


def md_table(df: pd.DataFrame, *, digits: int | Mapping[str, int] = 3,
             percent: Sequence[str] = (), pvalues: Sequence[str] = ("p_value",),
             rename: Mapping[str, str] | None = None, index: bool = False) -> Markdown:
    """Format a DataFrame as a Markdown pipe table.

    Parameters
    ----------
    df : DataFrame
        Not modified.
    digits : int or mapping
        Decimals for float columns (per column with a mapping; default 3).
    percent : sequence of str
        Columns holding shares, shown as percentages with one decimal.
    pvalues : sequence of str
        Columns formatted as p-values.
    rename : mapping, optional
        Display names of columns.
    index : bool
        Include the index as the first column.

    Returns
    -------
    IPython.display.Markdown
    """
    out = df.reset_index() if index else df.copy()
    for col in out.columns:
        if col in percent:
            out[col] = out[col].map(fmt_percent)
        elif col in pvalues:
            out[col] = out[col].map(fmt_pvalue)
        else:
            d = digits.get(col, 3) if isinstance(digits, Mapping) else digits
            out[col] = out[col].map(lambda v, d=d: fmt_number(v, d))
    if rename:
        out = out.rename(columns=dict(rename))
    # a table's "$" is money, not TeX: two of them in a row ("price ($)" twice) would
    # otherwise become inline maths in pandoc
    out = out.map(_escape_dollars).rename(columns=_escape_dollars)
    numeric = [pd.api.types.is_numeric_dtype(df.reset_index()[c] if index else df[c])
               for c in (df.reset_index() if index else df).columns]
    align = ["right" if n else "left" for n in numeric]
    text = out.to_markdown(index=False, colalign=align, disable_numparse=True)
    return Markdown(_set_widths(text, column_widths(out), align))


def _escape_dollars(value):
    return re.sub(r"(?<!\\)\$", r"\\$", value) if isinstance(value, str) else value


SHORT_CELL = 16
"""Cells up to this long are kept on one line (a range, a short label)."""

LINE_WIDTH = 90
"""Characters a full-width table line holds in the PDF (A4, 10 pt); pandoc wraps beyond 72."""


def column_widths(table: pd.DataFrame, width: int = LINE_WIDTH) -> list[int]:
    """Relative column widths (in characters) for a table of display strings.

    Notes
    -----
    Column :math:`i` first gets :math:`m_i = \\min(L_i, \\max(w_i, 6)) + 4`, where
    :math:`L_i` is its longest cell (header included) and :math:`w_i` its longest
    word (a body cell of at most ``SHORT_CELL`` characters, such as "0.05 to 0.95",
    counts as one word; headers wrap between words), so short columns never wrap and no
    word is broken (the 4 covers the cell padding and wider-than-average letters).
    What is left of ``width`` goes to the columns that would wrap (:math:`L_i + 4 > m_i`)
    in proportion to :math:`\\max(\\bar{\\ell}_i - m_i, 0) + 1`, where
    :math:`\\bar{\\ell}_i` is the mean cell length, so text columns take the free width.
    Cells are measured as shown: a cross-reference ``@sec-...`` as "Chapter 10".
    """
    cells = [[_shown(str(c)), *(_shown(str(x)) for x in table[c])] for c in table.columns]
    longest = np.array([max(len(x) for x in col) for col in cells], dtype=float)
    # headers may wrap between words; short body cells stay whole
    word = np.array([max([max(map(len, col[0].split()), default=1),
                          *(len(x) if len(x) <= SHORT_CELL else max(map(len, x.split()),
                                                                    default=1)
                            for x in col[1:])])
                     for col in cells], dtype=float)
    mean = np.array([np.mean([len(x) for x in col[1:]] or [0]) for col in cells])
    base = np.minimum(longest, np.maximum(word, 6)) + 4
    spare = width - base.sum()
    # the columns that would wrap share the free width, in proportion to how far their
    # text exceeds their minimum (a column that only just wraps gets a little)
    want = np.where(longest + 4 > base, np.maximum(mean - base, 0) + 1, 0.0)
    if spare > 0 and want.sum() > 0:
        base = base + spare * want / want.sum()
    return [max(3, round(float(b))) for b in base]


def _shown(cell: str) -> str:
    """A cell's text as the reader sees it: a cross-reference ``@sec-...`` reads
    "Chapter 10", emphasis marks take no room."""
    return re.sub(r"@sec-[\w-]+", "Chapter 10", cell).replace("**", "").replace("*", "")


def _set_widths(text: str, widths: list[int], align: list[str]) -> str:
    """Replace the header separator of a pipe table with dashes proportional to ``widths``."""
    lines = text.split("\n")
    cells = [("-" * (w - 1) + ":") if a == "right" else (":" + "-" * (w - 1))
             for w, a in zip(widths, align, strict=True)]
    lines[1] = "|" + "|".join(cells) + "|"
    return "\n".join(lines)
