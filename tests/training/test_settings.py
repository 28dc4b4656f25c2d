"""Settings: every app variable read in one place, with a clear message for a bad value."""

from dataclasses import fields

import pytest

from training.paths import REPO_ROOT
from training.settings import Settings


def test_defaults_without_any_variable():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.max_upload_bytes == 200 * 1024 * 1024
    assert not settings.in_space and not settings.install_allowed
    assert settings.server_name == "127.0.0.1"


def test_each_field_is_read_from_its_variable():
    env = {
        "TUNESMITH_MAX_UPLOAD_MB": "0.5",
        "TUNESMITH_CONCURRENCY": "4",
        "TUNESMITH_DEFAULT_MODEL": "tiny",
        "TUNESMITH_PUSH_WITH_SPACE_TOKEN": "1",
        "TUNESMITH_ALLOW_INSTALL": "0",
        "SPACE_ID": "someone/tunesmith",
        "TUNESMITH_BROWSER_SECRET": "s3cr3t-key",
    }
    settings = Settings.from_env(env)
    assert settings.max_upload_bytes == 512 * 1024
    assert settings.concurrency == 4 and settings.default_model == "tiny"
    assert settings.push_with_space_token and not settings.allow_install
    assert settings.in_space and settings.install_allowed  # a Space owns its machine
    assert settings.server_name == "0.0.0.0"
    assert settings.browser_secret() == "s3cr3t-key"
    assert "s3cr3t" not in repr(settings)  # the secret never reaches a log line


def test_every_field_names_its_variable_and_says_what_it_is_for():
    for f in fields(Settings):
        assert f.metadata["env"] and f.metadata["help"], f.name


def test_blank_values_keep_the_default():
    assert Settings.from_env({"TUNESMITH_CONCURRENCY": "  "}).concurrency == 2


def test_a_bad_value_names_the_variable():
    with pytest.raises(ValueError, match="TUNESMITH_CONCURRENCY='two' is not a valid int"):
        Settings.from_env({"TUNESMITH_CONCURRENCY": "two"})


def test_the_generated_browser_secret_survives_a_restart(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    first = Settings().browser_secret()
    assert len(first) >= 24 and Settings().browser_secret() == first
    assert (tmp_path / "browser_secret").stat().st_mode & 0o077 == 0


def test_the_readme_lists_every_setting_with_its_help():
    readme = (REPO_ROOT / "README.md").read_text()
    for f in fields(Settings):
        assert f"| `{f.metadata['env']}` |" in readme, f.metadata["env"]
        assert f.metadata["help"] in readme, f.metadata["env"]


def test_the_server_key_is_private_to_the_owner_and_kept_across_restarts():
    import stat

    from training.paths import home

    key = Settings().server_key()
    assert len(key) >= 32 and Settings().server_key() == key
    mode = stat.S_IMODE((home() / "server_key").stat().st_mode)
    assert mode == 0o600
    assert key.decode() != Settings().browser_secret()  # the browser's key is public
