"""Causal-inference analyses behind the book *Does It Really Work?*.

Layers, bottom up: :mod:`analysis.data` (loaders and simulators),
:mod:`analysis.features`, estimators, :mod:`analysis.studies` (one ``run(config)``
per chapter), :mod:`analysis.runner` and :mod:`analysis.cache` (cached results),
and :mod:`analysis.report` (figures, tables and templated summaries; never refits).
"""

__version__ = "0.1.0"
