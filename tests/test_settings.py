"""Settings (`pmi/settings.py`): config.yml's defaults, the environment over them, secrets
only from the environment, and a clear error for a bad value."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pmi.settings import ROOT, Settings, SettingsError, load_settings

LANGUAGES = "language: {default: id, languages: [{code: id, name: Bahasa Indonesia}]}\n"
# Every secret the app reads, and where it lands.
SECRETS = {
    "RASA_TOKEN": lambda s: s.rasa.token,
    "METRICS_TOKEN": lambda s: s.app.metrics_token,
    "WEBCHAT_SECRET": lambda s: s.channels.webchat.secret,
    "TELEGRAM_BOT_TOKEN": lambda s: s.channels.telegram.token,
    "TELEGRAM_WEBHOOK_SECRET": lambda s: s.channels.telegram.webhook_secret,
    "WHATSAPP_TOKEN": lambda s: s.channels.whatsapp.token,
    "WHATSAPP_APP_SECRET": lambda s: s.channels.whatsapp.app_secret,
    "WHATSAPP_VERIFY_TOKEN": lambda s: s.channels.whatsapp.verify_token,
}


def _config(tmp_path: Path, text: str = "") -> Path:
    path = tmp_path / "config.yml"
    path.write_text(LANGUAGES + text, encoding="utf-8")
    return path


def test_the_committed_config_loads_with_its_defaults() -> None:
    settings = load_settings(env={})
    assert (settings.app.host, settings.app.port) == ("127.0.0.1", 8080)
    assert settings.database.url == "sqlite:///var/pmi.db"
    assert settings.rasa.retry_seconds == 5
    assert settings.channels.webchat.enabled is False
    assert settings.channels.whatsapp.template_languages["en"] == "en_US"
    assert settings.alerts.staff_telegram_chat_id is None


def test_a_minimal_config_takes_the_code_defaults(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path), env={})
    assert settings.rate_limit.max_messages == 20
    assert settings.console.target_urgent_minutes == 15
    assert settings.handoff.days == [1, 2, 3, 4, 5]
    assert settings.language.supported == ["id"]


def test_content_paths_given_in_the_file_are_made_absolute(tmp_path: Path) -> None:
    text = "content: {replies_file: x/replies.yml}\nmedia: {dir: files}\n"
    settings = load_settings(_config(tmp_path, text), env={})
    assert settings.content.replies_file == ROOT / "x" / "replies.yml"
    assert settings.media.dir == ROOT / "files"


def test_default_content_paths_are_absolute_too() -> None:
    content = load_settings(env={}).content
    assert content.case_labels_file == ROOT / "data" / "case_labels.yml"


def test_the_environment_overrides_the_file() -> None:
    env = {"APP_PORT": "9090", "DATABASE_URL": "sqlite:///other.db", "RASA_URL": "http://r:1"}
    settings = load_settings(env=env)
    assert settings.app.port == 9090
    assert settings.database.url == "sqlite:///other.db"
    assert settings.rasa.url == "http://r:1"


@pytest.mark.parametrize(
    ("var", "value", "read"),
    [
        ("STAFF_TELEGRAM_CHAT_ID", "-1001234", lambda s: s.alerts.staff_telegram_chat_id),
        ("WEBCHAT_ENABLED", "1", lambda s: s.channels.webchat.enabled),
        ("TELEGRAM_BASE_URL", "http://127.0.0.1:9/bot", lambda s: s.channels.telegram.base_url),
        ("WHATSAPP_GRAPH_URL", "http://127.0.0.1:9", lambda s: s.channels.whatsapp.graph_url),
        ("WHATSAPP_PHONE_NUMBER_ID", "1555", lambda s: s.channels.whatsapp.phone_number_id),
    ],
)
def test_nested_settings_come_from_the_environment(
    var: str, value: str, read: Callable[[Settings], object]
) -> None:
    settings = load_settings(env={var: value})
    assert str(read(settings)).lower() in (value.lower(), "true")


def test_an_override_keeps_the_rest_of_its_section() -> None:
    channels = load_settings(env={"TELEGRAM_BOT_TOKEN": "123:abc"}).channels
    assert channels.telegram.token == "123:abc"
    assert channels.telegram.base_url == "https://api.telegram.org/bot"
    assert channels.whatsapp.api_version == "23.0"


def test_an_empty_variable_is_no_override() -> None:
    assert load_settings(env={"APP_PORT": "", "RASA_URL": ""}).app.port == 8080


def test_the_committed_config_holds_no_secret() -> None:
    settings = load_settings(env={})
    for var, read in SECRETS.items():
        assert read(settings) is None, var
    assert settings.console.secret_key is None


def test_each_secret_is_read_from_the_environment() -> None:
    env = {var: f"secret-{n}" for n, var in enumerate(SECRETS)}
    settings = load_settings(env=env)
    for var, read in SECRETS.items():
        assert read(settings) == env[var], var


def test_the_console_key_is_kept_out_of_reprs() -> None:
    settings = load_settings(env={"CONSOLE_SECRET_KEY": "k" * 40})
    key = settings.console.secret_key
    assert key is not None and key.get_secret_value() == "k" * 40
    assert "k" * 40 not in repr(settings) and "k" * 40 not in str(key)


def test_whatsapp_is_on_only_with_its_three_credentials() -> None:
    three = {"WHATSAPP_PHONE_NUMBER_ID": "1", "WHATSAPP_TOKEN": "t", "WHATSAPP_APP_SECRET": "a"}
    assert load_settings(env=three).channels.whatsapp.enabled
    for missing in three:
        rest = {k: v for k, v in three.items() if k != missing}
        assert not load_settings(env=rest).channels.whatsapp.enabled, missing


def test_trusted_proxies_are_split_on_commas() -> None:
    settings = load_settings(env={"TRUSTED_PROXIES": " 10.0.0.0/8 , ::1,"})
    assert settings.app.trusted_proxies == ["10.0.0.0/8", "::1"]


def test_pmi_config_names_another_file(tmp_path: Path) -> None:
    path = _config(tmp_path, "app: {port: 7000}\n")
    assert load_settings(env={"PMI_CONFIG": str(path)}).app.port == 7000


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"APP_PORT": "eighty"}, "app.port"),
        ({"APP_PORT": "70000"}, "app.port"),
        ({"WEBCHAT_ENABLED": "maybe"}, "channels.webchat.enabled"),
        ({"TRUSTED_PROXIES": "caddy"}, "app.trusted_proxies"),
    ],
)
def test_a_bad_environment_value_names_the_setting(env: dict[str, str], field: str) -> None:
    with pytest.raises(SettingsError, match="or environment") as failure:
        load_settings(env=env)
    assert field in str(failure.value)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("rasa: {timeout_seconds: 0}\n", "rasa.timeout_seconds"),
        ("handoff: {start: '8 am'}\n", "use HH:MM"),
        ("app: {colour: blue}\n", "app.colour"),
        ("console: {low_confidence: 2}\n", "console.low_confidence"),
    ],
)
def test_a_bad_file_value_names_the_setting(tmp_path: Path, text: str, field: str) -> None:
    path = _config(tmp_path, text)
    with pytest.raises(SettingsError, match=str(tmp_path)) as failure:
        load_settings(path, env={})
    assert field in str(failure.value)


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("- app\n- rasa\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="expected a mapping"):
        load_settings(path, env={})


def test_an_empty_section_takes_its_environment_override(tmp_path: Path) -> None:
    path = _config(tmp_path, "alerts:\n")
    settings = load_settings(path, env={"STAFF_TELEGRAM_CHAT_ID": "-100"})
    assert settings.alerts.staff_telegram_chat_id == "-100"


@pytest.mark.parametrize(
    ("text", "var"),
    [
        ("rasa:\n  token: abc\n", "RASA_TOKEN"),
        ("channels:\n  telegram:\n    token: '123:abc'\n", "TELEGRAM_BOT_TOKEN"),
        ("console:\n  secret_key: " + "k" * 40 + "\n", "CONSOLE_SECRET_KEY"),
    ],
)
def test_a_secret_written_in_the_file_is_refused(tmp_path: Path, text: str, var: str) -> None:
    with pytest.raises(SettingsError, match=var):
        load_settings(_config(tmp_path, text), env={})


def test_a_missing_config_named_by_pmi_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(env={"PMI_CONFIG": str(tmp_path / "nowhere.yml")})
