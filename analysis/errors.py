"""Domain-specific exceptions and warnings.

Every error says what is wrong and how to fix it, in the style of DoubleML's
messages ("Call fit() first", "use X instead").
"""

from __future__ import annotations


class AnalysisError(Exception):
    """Base class of every error raised by :mod:`analysis`."""


class ConfigError(AnalysisError, ValueError):
    """The configuration file or a study's settings are invalid."""


class UnknownProfileError(ConfigError):
    """The requested profile is not defined in the configuration file."""


class DataError(AnalysisError, ValueError):
    """A dataset is missing, malformed or fails validation."""


class FetchError(AnalysisError):
    """A dataset download failed or did not match its checksum."""


class CacheError(AnalysisError):
    """A cache entry is corrupt or was written for another key."""


class EstimationError(AnalysisError, ValueError):
    """An estimator cannot be fitted on the data it was given."""


class OverlapError(EstimationError):
    """Treated and control units do not overlap (propensities at 0 or 1)."""


class NotFittedError(AnalysisError, AttributeError):
    """A learned attribute was requested before ``fit``."""


class GraphError(AnalysisError, ValueError):
    """A causal graph is malformed (cyclic, or missing a needed node)."""


class ParallelError(AnalysisError):
    """The parallel backend cannot run (a Dask scheduler out of reach, dask missing)."""


class AnalysisWarning(UserWarning):
    """A warning that matters for the reader (overlap, weak instrument, convergence).

    Unlike library deprecation noise, these are collected into a study's
    diagnostics and shown in the chapter.
    """


class WeakInstrumentWarning(AnalysisWarning):
    """The instrument barely predicts the treatment (first-stage F below 10)."""


class OverlapWarning(AnalysisWarning):
    """Some propensities are close to 0 or 1; estimates lean on extrapolation."""


class VarianceWarning(AnalysisWarning):
    """Part of a variance estimator is undefined on these data and was dropped."""


class CacheWarning(UserWarning):
    """A result could not be stored in the cache; it is used without caching."""
