"""Markdown tables: formatting, and column widths that never squeeze a column in the PDF."""

from __future__ import annotations

import re

import pandas as pd
import pypandoc

from analysis.report.tables import column_widths, md_table

LONG = ("Unmeasured movie traits (quality, budget, studio) could differ between "
        "drama-romances and other movies, so the estimate may be confounded.")


def typst_widths(markdown: str) -> list[float]:
    typ = pypandoc.convert_text(markdown, "typst", format="markdown")
    return [float(x) for x in re.findall(r"([\d.]+)%", typ.split("columns:")[1].split(")")[0])]


def test_long_text_table_keeps_the_first_column_readable():
    df = pd.DataFrame({"limitation": ["Justified (this chapter)", "Genre is not randomized"],
                       "why_it_matters": [LONG, LONG], "what_we_did": [LONG, LONG]})
    widths = typst_widths(md_table(df).data)
    assert len(widths) == 3 and abs(sum(widths) - 100) < 0.1
    # "Justified" (9 letters) + padding of ~90 characters a line: never letter-by-letter.
    assert widths[0] >= 100 * 11 / 90
    assert widths[1] > widths[0] and widths[2] > widths[0]


def test_numbers_never_wrap_and_short_tables_keep_natural_widths():
    df = pd.DataFrame({"term": ["naive", "aipw"], "estimate": [0.1, 0.2], "p_value": [0.5, 1e-5]})
    text = md_table(df).data
    assert "<\u00a00.001" in text and "0.100" in text
    assert all(len(line) <= 72 for line in text.splitlines())  # pandoc sizes it naturally
    wide = pd.DataFrame({"label": [LONG] * 2, **{f"col{i}": [12345.678, 1.5] for i in range(6)}})
    shown = wide.map(lambda v: f"{v:,.3f}" if isinstance(v, float) else v)
    widths = column_widths(shown)
    assert all(w >= len("12,345.678") for w in widths[1:])  # numbers get their full width


def test_dollar_signs_are_money_not_maths():
    df = pd.DataFrame({"Measure": ["Revenue, new price ($)", "Revenue, old price ($)"],
                       "Value ($)": [47.6, 45.1]})
    html = pypandoc.convert_text(md_table(df).data, "html", format="markdown")
    assert "math" not in html and html.count("($)") == 3
    typ = pypandoc.convert_text(md_table(df).data, "typst", format="markdown")
    assert "Revenue, old price (\\$)" in typ
