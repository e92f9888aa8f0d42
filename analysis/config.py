"""The book's configuration: one TOML file, per-study settings, named profiles.

The file (``analysis.toml`` at the project root) looks like::

    [studies.dml_genre]          # settings of the default profile
    source = "auto"
    seed = 20150101

    [profiles.quick.dml_genre]   # overrides for the ``quick`` profile
    synthetic_ratings = 20000

The profile is chosen by argument, else by the ``ANALYSIS_PROFILE`` environment
variable (so ``ANALYSIS_PROFILE=quick quarto render`` works), else ``default``.
Every study declares its settings as a frozen dataclass deriving from
:class:`StudyConfig`; the loader checks every key and value against it and
raises :class:`~analysis.errors.ConfigError` naming the key and the fix.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from analysis.errors import ConfigError, UnknownProfileError

CONFIG_FILENAME = "analysis.toml"
PROFILE_ENV = "ANALYSIS_PROFILE"
CONFIG_ENV = "ANALYSIS_CONFIG"
DEFAULT_PROFILE = "default"

Source = Literal["auto", "real", "synthetic"]


def positive(default: int | float) -> Any:
    """A dataclass field that must be strictly positive."""
    return field(default=default, metadata={"min": 0, "strict": True})


def non_negative(default: int | float) -> Any:
    """A dataclass field that must be zero or more."""
    return field(default=default, metadata={"min": 0, "strict": False})


def fraction(default: float) -> Any:
    """A dataclass field that must lie strictly between 0 and 1."""
    return field(default=default, metadata={"min": 0, "max": 1, "strict": True})


def path_field() -> Any:
    """A path field: empty means "search the usual places"; otherwise it must exist."""
    return field(default="", metadata={"path": True})


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """Base class of every study's settings.

    Subclasses add fields with defaults; :meth:`check` adds cross-field rules.
    """

    seed: int = 0

    def check(self) -> None:
        """Cross-field validation hook; raise ConfigError on a violation."""

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain, JSON-serialisable dict (the cache key uses it)."""
        return dataclasses.asdict(self)


def find_config(start: Path | None = None) -> Path:
    """Locate ``analysis.toml``: ``$ANALYSIS_CONFIG``, else walk up from ``start``.

    Raises
    ------
    ConfigError
        If no file is found.
    """
    env = os.environ.get(CONFIG_ENV)
    if env:
        p = Path(env).expanduser().resolve()
        if not p.is_file():
            raise ConfigError(f"${CONFIG_ENV} points at {p}, which is not a file. "
                              f"Point it at the project's {CONFIG_FILENAME} or unset it.")
        return p
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / CONFIG_FILENAME).is_file():
            return d / CONFIG_FILENAME
    raise ConfigError(f"No {CONFIG_FILENAME} found in {here} or any parent folder. "
                      f"Run from inside the book's project, or set ${CONFIG_ENV}.")


@dataclass(frozen=True)
class BookConfig:
    """The parsed configuration file, with one profile selected.

    Attributes
    ----------
    path : Path
        The configuration file.
    profile : str
        The selected profile.
    raw : Mapping
        The parsed TOML.
    """

    path: Path
    profile: str
    raw: Mapping[str, Any]

    @property
    def root(self) -> Path:
        """The project root (the folder holding the configuration file)."""
        return self.path.parent

    @property
    def profiles(self) -> list[str]:
        """Every profile the file defines, ``default`` first."""
        return [DEFAULT_PROFILE, *sorted(p for p in self.raw.get("profiles", {})
                                        if p != DEFAULT_PROFILE)]

    def study(self, name: str) -> StudyConfig:
        """The validated settings of one study under the selected profile."""
        from analysis.studies import get_study

        cls = get_study(name).Config
        values = dict(self.raw.get("studies", {}).get(name, {}))
        values.update(self.raw.get("profiles", {}).get(self.profile, {}).get(name, {}))
        section = f"[studies.{name}]" if self.profile == DEFAULT_PROFILE else \
            f"[studies.{name}] with profile '{self.profile}'"
        return build_study_config(cls, values, section=section, root=self.root)


def load_config(path: str | Path | None = None, profile: str | None = None) -> BookConfig:
    """Read and validate the configuration file.

    Parameters
    ----------
    path : str or Path, optional
        The TOML file; found with :func:`find_config` when omitted.
    profile : str, optional
        Profile name; defaults to ``$ANALYSIS_PROFILE`` or ``"default"``.

    Returns
    -------
    BookConfig

    Raises
    ------
    ConfigError
        On a syntax error, an unknown section, study, profile or key, or a bad value.
    """
    from analysis.studies import STUDIES

    p = Path(path).resolve() if path is not None else find_config()
    if not p.is_file():
        raise ConfigError(f"Configuration file {p} does not exist.")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p.name} is not valid TOML: {exc}. Fix the syntax.") from exc
    unknown = set(raw) - {"studies", "profiles"}
    if unknown:
        raise ConfigError(f"Unknown section(s) {sorted(unknown)} in {p.name}; "
                          "only [studies.<name>] and [profiles.<profile>.<name>] are allowed.")
    sections = {"[studies]": raw.get("studies", {})}
    sections.update({f"[profiles.{k}]": v for k, v in raw.get("profiles", {}).items()})
    for where, block in sections.items():
        for name in block:
            if name not in STUDIES:
                raise ConfigError(f"Unknown study '{name}' in {where} of {p.name}. "
                                  f"Known studies: {', '.join(sorted(STUDIES))}.")
    chosen = profile or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    cfg = BookConfig(path=p, profile=chosen, raw=raw)
    if chosen not in cfg.profiles:
        raise UnknownProfileError(f"Unknown profile '{chosen}'. Profiles in {p.name}: "
                          f"{', '.join(cfg.profiles)}. Add [profiles.{chosen}.<study>] or "
                          f"pick one of those (argument --profile or ${PROFILE_ENV}).")
    for name in STUDIES:  # validate every study eagerly so errors surface at load
        cfg.study(name)
    return cfg


def build_study_config(cls: type[StudyConfig], values: Mapping[str, Any], *,
                       section: str, root: Path) -> StudyConfig:
    """Check ``values`` against the fields of ``cls`` and build an instance."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in values:
        if key not in fields:
            raise ConfigError(f"Unknown key '{key}' in {section}. "
                              f"Valid keys: {', '.join(sorted(fields))}.")
    checked = {k: _check_value(k, v, hints[k], fields[k].metadata, section, root)
               for k, v in values.items()}
    obj = cls(**checked)
    obj.check()
    return obj


def _check_value(key: str, value: Any, hint: Any, meta: Mapping[str, Any], section: str,
                 root: Path) -> Any:
    where = f"'{key}' in {section}"
    if typing.get_origin(hint) is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where} is {value!r}; use one of {', '.join(map(repr, allowed))}.")
        return value
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, hint) or (hint is not bool and isinstance(value, bool)):
        raise ConfigError(f"{where} must be {hint.__name__}, got {value!r}.")
    if "min" in meta:
        lo, strict = meta["min"], meta.get("strict", False)
        if value < lo or (strict and value == lo):
            rule = "positive" if strict else "zero or more"
            raise ConfigError(f"{where} is {value}; it must be {rule}. Use a size such as "
                              f"{max(1, abs(value)) if isinstance(value, int) else 0.5}.")
    if "max" in meta and value >= meta["max"]:
        raise ConfigError(f"{where} is {value}; it must be below {meta['max']}.")
    if meta.get("path") and value:
        p = Path(value).expanduser()
        p = p if p.is_absolute() else root / p
        if not p.exists():
            raise ConfigError(f"{where} is '{value}', but {p} does not exist. Point it at an "
                              "existing folder, or set it to \"\" to use the default search.")
        value = str(p.resolve())
    return value

