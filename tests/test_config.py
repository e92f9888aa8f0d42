"""Configuration: profiles, and an error naming the key and the fix for every bad input."""

from __future__ import annotations

import pytest

from analysis.config import load_config
from analysis.errors import ConfigError, UnknownProfileError
from tests.conftest import ROOT


def write(tmp_path, text: str):
    path = tmp_path / "analysis.toml"
    path.write_text(text)
    return path


def test_project_config_loads_every_profile():
    for profile in ("default", "quick"):
        cfg = load_config(ROOT / "analysis.toml", profile=profile)
        assert cfg.profile == profile
        assert cfg.study("data_overview").source == "auto"


def test_profile_overrides_default(tmp_path):
    path = write(tmp_path, "[studies.data_overview]\nsynthetic_users = 500\n"
                           "[profiles.quick.data_overview]\nsynthetic_users = 50\n")
    assert load_config(path, profile="default").study("data_overview").synthetic_users == 500
    assert load_config(path, profile="quick").study("data_overview").synthetic_users == 50


def test_profile_from_environment(tmp_path, monkeypatch):
    path = write(tmp_path, "[profiles.quick.data_overview]\nseed = 3\n")
    monkeypatch.setenv("ANALYSIS_PROFILE", "quick")
    assert load_config(path).profile == "quick"


def test_unknown_profile(tmp_path):
    with pytest.raises(UnknownProfileError, match="Unknown profile 'fast'.*default"):
        load_config(write(tmp_path, ""), profile="fast")


def test_unknown_study(tmp_path):
    with pytest.raises(ConfigError, match="Unknown study 'dml' in \\[studies\\].*Known studies"):
        load_config(write(tmp_path, "[studies.dml]\nseed = 1\n"))


def test_unknown_study_in_profile(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown study 'nope' in \[profiles.quick\]"):
        load_config(write(tmp_path, "[profiles.quick.nope]\nseed = 1\n"))


def test_unknown_key(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown key 'n_user' in \[studies.data_overview\]"
                                          r".*Valid keys:.*synthetic_users"):
        load_config(write(tmp_path, "[studies.data_overview]\nn_user = 5\n"), profile="default")


def test_negative_size(tmp_path):
    with pytest.raises(ConfigError, match="'synthetic_ratings' in .* is -5; it must be positive"):
        load_config(write(tmp_path, "[studies.data_overview]\nsynthetic_ratings = -5\n"),
                    profile="default")


def test_bad_size_in_profile_names_the_profile_section(tmp_path):
    with pytest.raises(ConfigError, match=r"'synthetic_users' in \[profiles.quick.data_overview\]"
                                          r" is 0; it must be at least 10"):
        load_config(write(tmp_path, "[profiles.quick.data_overview]\nsynthetic_users = 0\n"),
                    profile="quick")


def test_missing_path(tmp_path):
    with pytest.raises(ConfigError, match=r"'path' .* is 'no/such/folder', but .* does not "
                                          r"exist.*set it to \"\""):
        load_config(write(tmp_path, '[studies.data_overview]\npath = "no/such/folder"\n'),
                    profile="default")


def test_relative_path_resolves_against_project_root(tmp_path):
    (tmp_path / "ml").mkdir()
    cfg = load_config(write(tmp_path, '[studies.data_overview]\npath = "ml"\n'),
                    profile="default")
    assert cfg.study("data_overview").path == str((tmp_path / "ml").resolve())


def test_wrong_type(tmp_path):
    with pytest.raises(ConfigError, match="'seed' in .* must be int, got 'x'"):
        load_config(write(tmp_path, '[studies.data_overview]\nseed = "x"\n'),
                    profile="default")


def test_bad_choice(tmp_path):
    with pytest.raises(ConfigError, match="'source' .* is 'kaggle'; use one of 'auto', 'real'"):
        load_config(write(tmp_path, '[studies.data_overview]\nsource = "kaggle"\n'),
                    profile="default")


def test_unknown_section(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown section\(s\) \['study'\]"):
        load_config(write(tmp_path, "[study.data_overview]\nseed = 1\n"))


def test_invalid_toml(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML.*Fix the syntax"):
        load_config(write(tmp_path, "[studies.data_overview\n"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_config_env_pointing_nowhere(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALYSIS_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="ANALYSIS_CONFIG points at .* not a file"):
        load_config()
