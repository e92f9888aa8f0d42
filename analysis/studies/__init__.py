"""The book's studies: one module per chapter.

Every study module defines

``NAME``, ``TITLE``, ``CHAPTER``
    Its key in ``analysis.toml``, a human title, and its chapter file.
``SUMMARY_TEMPLATE``
    The jinja2 template (under ``templates/``) of its executive summary.
``Config``
    A frozen dataclass deriving from :class:`analysis.config.StudyConfig`.
``data_ref(config, root) -> DataRef``
    What data it will use, resolved and fingerprinted without loading it.
``run(config, root) -> StudyResult``
    The computation.  A study with known answers returns a ``checks`` table
    (:data:`analysis.result.CHECK_COLUMNS`; the validation appendix reads it) and
    a one-row ``headline`` table (:data:`analysis.result.HEADLINE_COLUMNS`; the
    index's headline table and the handout read it).

Optional:

``RECOMMENDATION_TEMPLATE``
    The template of its top recommendation (the handout shows it).
``DESIGN = "simulation"`` and ``CALLOUT_TEMPLATE``
    For a chapter that is a simulation by design: its data callout says so.

The study's report module, ``analysis.report.<NAME>``, draws its figures; its
``fig_headline(result)`` is the one figure the handout shows.

Add a study by writing such a module and listing it in :data:`STUDIES`
(in book order).
"""

from __future__ import annotations

import importlib
from types import ModuleType

STUDIES: dict[str, str] = {
    "data_overview": "analysis.studies.data_overview",
    "dml_genre": "analysis.studies.dml_genre",
    "dowhy_recs": "analysis.studies.dowhy_recs",
    "aipw_panel": "analysis.studies.aipw_panel",
    "forest_pricing": "analysis.studies.forest_pricing",
    "interference_slates": "analysis.studies.interference_slates",
    "ihdp_benchmark": "analysis.studies.ihdp_benchmark",
}
"""Registered studies in book order: name -> module."""

REQUIRED = ("NAME", "TITLE", "CHAPTER", "SUMMARY_TEMPLATE", "Config", "data_ref", "run")


def get_study(name: str) -> ModuleType:
    """Import a registered study module.

    Raises
    ------
    KeyError
        If ``name`` is not registered; the message lists the registered studies.
    """
    if name not in STUDIES:
        raise KeyError(f"Unknown study '{name}'. Registered studies: "
                       f"{', '.join(STUDIES)}. Add new ones to analysis.studies.STUDIES.")
    module = importlib.import_module(STUDIES[name])
    missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
    if missing:
        raise TypeError(f"Study module {module.__name__} lacks {missing}; see "
                        "analysis.studies for the contract.")
    return module
