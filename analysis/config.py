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

import codecs
import dataclasses
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from analysis.errors import ConfigError, UnknownProfileError

if typing.TYPE_CHECKING:
    from analysis.parallel import ParallelSettings

CONFIG_FILENAME = "analysis.toml"
PROFILE_ENV = "ANALYSIS_PROFILE"
CONFIG_ENV = "ANALYSIS_CONFIG"
DEFAULT_PROFILE = "default"

Source = Literal["auto", "real", "synthetic"]


SEED_LIMIT = 2**32
"""Seeds must lie in ``[0, 2**32)``: what every generator and learner of the book accepts."""


def positive(default: int | float) -> Any:
    """A dataclass field that must be strictly positive."""
    return field(default=default, metadata={"min": 0, "strict": True})


def non_negative(default: int | float) -> Any:
    """A dataclass field that must be zero or more."""
    return field(default=default, metadata={"min": 0, "strict": False})


def at_least(default: int | float, minimum: int | float, why: str = "") -> Any:
    """A dataclass field that must be at least ``minimum`` (``why`` is said in the error)."""
    return field(default=default, metadata={"min": minimum, "strict": False, "why": why})


def folds(default: int = 3) -> Any:
    """A number of cross-fitting folds: at least 2, the one rule every study shares."""
    return at_least(default, 2, "cross-fitting needs at least 2 folds")


def fraction(default: float) -> Any:
    """A dataclass field that must lie strictly between 0 and 1."""
    return field(default=default, metadata={"min": 0, "max": 1, "strict": True})


def seed_field(default: int) -> Any:
    """A seed: an integer in ``[0, 2**32)``."""
    return field(default=default, metadata={"min": 0, "strict": False, "max": SEED_LIMIT,
                                            "why": "seeds are 32-bit"})


def path_field() -> Any:
    """A path field: empty means "search the usual places"; otherwise it must exist."""
    return field(default="", metadata={"path": True})


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """Base class of every study's settings.

    Subclasses add fields with defaults; :meth:`check` adds cross-field rules.
    """

    seed: int = seed_field(0)

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
    profile_source : str
        Where the profile came from, in words (``--profile``, ``$ANALYSIS_PROFILE`` or
        the default); the CLI prints it before it runs anything.
    """

    path: Path
    profile: str
    raw: Mapping[str, Any]
    profile_source: str = "argument"

    @property
    def root(self) -> Path:
        """The project root (the folder holding the configuration file)."""
        return self.path.parent

    @property
    def profiles(self) -> list[str]:
        """Every profile the file defines, ``default`` first."""
        return [DEFAULT_PROFILE, *sorted(p for p in self.raw.get("profiles", {})
                                        if p != DEFAULT_PROFILE)]

    @property
    def parallel(self) -> ParallelSettings:
        """Where heavy loops run: ``[parallel]`` overridden by the environment (see
        :mod:`analysis.parallel`); not part of any cache key."""
        from analysis.parallel import settings_from

        return settings_from(self.raw.get("parallel", {}))

    def study(self, name: str, profile: str | None = None) -> StudyConfig:
        """The validated settings of one study under the selected (or given) profile.

        Each key is checked in the section where it is written, and an error names
        that section (``[profiles.quick.dml_genre]``); cross-field rules name the
        study and the profile.
        """
        from analysis.studies import get_study

        profile = profile or self.profile
        cls = get_study(name).Config
        base = self.raw.get("studies", {}).get(name, {})
        override = self.raw.get("profiles", {}).get(profile, {}).get(name, {})
        checked = check_section(cls, base, section=f"[studies.{name}]", root=self.root)
        checked.update(check_section(cls, override, section=f"[profiles.{profile}.{name}]",
                                     root=self.root))
        where = f"[studies.{name}]" if profile == DEFAULT_PROFILE else \
            f"[studies.{name}] with profile '{profile}'"
        return build_checked(cls, checked, section=where)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, naming the file and the fix on an encoding or syntax error.

    A UTF-8 byte-order mark is accepted (editors on Windows write one); UTF-16 and
    bytes that are not UTF-8 are errors that name the line.
    """
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in data[:200]:
        raise ConfigError(f"{path} is encoded as UTF-16; TOML files must be UTF-8. Save it "
                          "as UTF-8 (in most editors: Save As, encoding UTF-8).")
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path} line {line}: byte 0x{data[exc.start]:02x} is not UTF-8 "
                          "(TOML files must be UTF-8). Remove the character or save the file "
                          "as UTF-8.") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name} is not valid TOML: {exc}. Fix the syntax.") from exc


def _check_structure(raw: Mapping[str, Any], name: str) -> None:
    """Sections must be tables: ``[studies.<study>]`` and ``[profiles.<profile>.<study>]``."""
    unknown = set(raw) - {"studies", "profiles", "parallel"}
    if unknown:
        raise ConfigError(f"Unknown section(s) {sorted(unknown)} in {name}; only "
                          "[studies.<name>], [profiles.<profile>.<name>] and [parallel] "
                          "are allowed.")

    def table(value: Any, where: str, shape: str) -> None:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} in {name} is {value!r}, not a table. Write it as "
                              f"{shape}.")

    table(raw.get("parallel", {}), "'parallel'", "a [parallel] section with keys")
    table(raw.get("studies", {}), "'studies'", "[studies.<study>] sections with keys")
    for study, values in raw.get("studies", {}).items():
        table(values, f"'studies.{study}'", f"a [studies.{study}] section with keys")
    table(raw.get("profiles", {}), "'profiles'", "[profiles.<profile>.<study>] sections")
    for profile, block in raw.get("profiles", {}).items():
        table(block, f"'profiles.{profile}'", f"[profiles.{profile}.<study>] sections")
        for study, values in block.items():
            table(values, f"'profiles.{profile}.{study}'",
                  f"a [profiles.{profile}.{study}] section with keys")


def load_config(path: str | Path | None = None, profile: str | None = None) -> BookConfig:
    """Read and validate the configuration file.

    Every study is validated under every profile the file defines, so an error in a
    profile that is not selected surfaces now, not when someone selects it.

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
        On an encoding or syntax error, a malformed structure, an unknown section,
        study, profile or key, or a bad value.
    """
    from analysis.studies import STUDIES

    p = Path(path).resolve() if path is not None else find_config()
    if not p.is_file():
        raise ConfigError(f"Configuration file {p} does not exist.")
    raw = read_toml(p)
    _check_structure(raw, p.name)
    sections = {"[studies]": raw.get("studies", {})}
    sections.update({f"[profiles.{k}]": v for k, v in raw.get("profiles", {}).items()})
    for where, block in sections.items():
        for name in block:
            if name not in STUDIES:
                raise ConfigError(f"Unknown study '{name}' in {where} of {p.name}. "
                                  f"Known studies: {', '.join(sorted(STUDIES))}.")
    if profile:
        chosen, source = profile, "--profile"
    elif os.environ.get(PROFILE_ENV):
        chosen, source = os.environ[PROFILE_ENV], f"${PROFILE_ENV}"
    else:
        chosen, source = DEFAULT_PROFILE, f"the default (no --profile, ${PROFILE_ENV} unset)"
    cfg = BookConfig(path=p, profile=chosen, raw=raw, profile_source=source)
    if chosen not in cfg.profiles:
        raise UnknownProfileError(f"Unknown profile '{chosen}' (from {source}). Profiles in "
                                  f"{p.name}: {', '.join(cfg.profiles)}. Add "
                                  f"[profiles.{chosen}.<study>] or pick one of those "
                                  f"(argument --profile or ${PROFILE_ENV}).")
    cfg.parallel  # noqa: B018 - validate [parallel] and its environment overrides now
    for prof in cfg.profiles:  # every study under every profile, so errors surface at load
        for name in STUDIES:
            cfg.study(name, prof)
    return cfg


KNOWN_ENV = ("ANALYSIS_PROFILE", "ANALYSIS_CONFIG", "ANALYSIS_CACHE_DIR",
             "ANALYSIS_MOVIELENS_DIR", "ANALYSIS_MOVIELENS_BASE_URL", "ANALYSIS_KUAIREC_DIR",
             "ANALYSIS_PARALLEL", "ANALYSIS_DASK_ADDRESS", "ANALYSIS_WORKERS",
             "ANALYSIS_TEST_MOVIELENS", "ANALYSIS_TEST_PROFILE", "ANALYSIS_PDF_PREVIEW")
"""Every environment variable the package, its tests and its tools read."""


def unknown_environment() -> list[str]:
    """Warnings for ``ANALYSIS_*`` variables that nothing reads (likely misspellings)."""
    out = []
    for name in sorted(os.environ):
        if name.startswith("ANALYSIS_") and name not in KNOWN_ENV:
            close = difflib.get_close_matches(name, KNOWN_ENV, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            out.append(f"${name} is set but analysis reads no such variable{hint}")
    return out


def check_section(cls: type[StudyConfig], values: Mapping[str, Any], *, section: str,
                  root: Path) -> dict[str, Any]:
    """Check the keys and values of one TOML section against the fields of ``cls``."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in values:
        if key not in fields:
            raise ConfigError(f"Unknown key '{key}' in {section}. "
                              f"Valid keys: {', '.join(sorted(fields))}.")
    return {k: _check_value(k, v, hints[k], fields[k].metadata, section, root)
            for k, v in values.items()}


def build_checked(cls: type[StudyConfig], checked: Mapping[str, Any], *,
                  section: str) -> StudyConfig:
    """Build the settings from checked values and apply the cross-field rules."""
    obj = cls(**checked)
    try:
        obj.check()
    except ConfigError as exc:
        raise ConfigError(f"{section}: {exc}") from exc
    return obj


def build_study_config(cls: type[StudyConfig], values: Mapping[str, Any], *,
                       section: str, root: Path) -> StudyConfig:
    """Check ``values`` (one section) against the fields of ``cls`` and build an instance."""
    return build_checked(cls, check_section(cls, values, section=section, root=root),
                         section=section)


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
    why = f" ({meta['why']})" if meta.get("why") else ""
    if "min" in meta:
        lo, strict = meta["min"], meta.get("strict", False)
        if value < lo or (strict and value == lo):
            if strict:
                rule = "positive" if lo == 0 else f"greater than {lo}"
                fix = max(1, abs(value)) if isinstance(value, int) else 0.5
            else:
                rule = "zero or more" if lo == 0 else f"at least {lo}"
                fix = lo if lo else max(1, abs(value))
            raise ConfigError(f"{where} is {value}; it must be {rule}{why}. Use a value such "
                              f"as {fix}.")
    if "max" in meta and value >= meta["max"]:
        raise ConfigError(f"{where} is {value}; it must be below {meta['max']:,}{why}.")
    if meta.get("path") and value:
        p = Path(value).expanduser()
        p = p if p.is_absolute() else root / p
        if not p.exists():
            raise ConfigError(f"{where} is '{value}', but {p} does not exist. Point it at an "
                              "existing folder, or set it to \"\" to use the default search.")
        value = str(p.resolve())
    return value

