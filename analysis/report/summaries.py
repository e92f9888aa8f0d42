"""Templated executive summaries (jinja2).

Templates live in the project's ``templates/`` folder.  They only *format*
facts: the environment uses :class:`jinja2.StrictUndefined` (a missing fact
raises), and a test forbids arithmetic and comparisons in templates, so every
number and every judgement ("significant", "increase") comes from a study's
facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from analysis.config import find_config
from analysis.report.tables import fmt_number, fmt_percent, fmt_pvalue
from analysis.result import StudyResult

MINUS = "−"


def effect(x: float, digits: int = 3) -> str:
    """A signed effect: ``+0.123`` / ``−0.045`` (true minus sign)."""
    s = f"{float(x):+.{digits}f}"
    return s.replace("-", MINUS)


def ci(lower: float, upper: float, digits: int = 3) -> str:
    """A confidence interval: ``[−0.023, 0.026]``."""
    return f"[{fmt_number(float(lower), digits)}, {fmt_number(float(upper), digits)}]"\
        .replace("-", MINUS)


def pvalue(p: float) -> str:
    """``p < 0.001`` or ``p = 0.034``."""
    text = fmt_pvalue(p).replace("\u00a0", " ")  # prose wraps like prose
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def num(x: float | int, digits: int = 0) -> str:
    """A number with thousands separators."""
    return fmt_number(x if isinstance(x, int) else float(x), digits).replace("-", MINUS)


FILTERS = {"effect": effect, "ci": ci, "pvalue": pvalue, "pct": fmt_percent, "num": num}


def templates_dir() -> Path:
    """The project's ``templates/`` folder (beside ``analysis.toml``)."""
    return find_config().parent / "templates"


@cache
def environment(directory: Path | None = None) -> jinja2.Environment:
    """The jinja2 environment over ``directory`` (default :func:`templates_dir`)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(directory or templates_dir()),
                             undefined=jinja2.StrictUndefined, autoescape=False,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
    env.filters.update(FILTERS)
    return env


def render_template(name: str, context: Mapping[str, Any],
                    directory: Path | None = None) -> str:
    """Render one template with ``context``; a missing variable raises UndefinedError."""
    return environment(directory).get_template(name).render(**context).strip() + "\n"


def render_summary(result: StudyResult, directory: Path | None = None) -> str:
    """A study's executive summary, from its facts."""
    from analysis.studies import get_study

    template = get_study(result.provenance.study).SUMMARY_TEMPLATE
    return render_template(template, result.facts, directory)
