"""Typed application settings: `config.yml` overlaid with environment variables.

Secrets (tokens, passwords) are read only from the environment; the YAML file
holds defaults that are safe to commit.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from pmi.alert_settings import AlertSettings
from pmi.deadline_settings import DeadlineSettings

ROOT = Path(__file__).resolve().parent.parent


class _Section(BaseModel):
    # validate_default: a default path is made absolute like one from config.yml.
    model_config = ConfigDict(extra="forbid", validate_default=True)


class AppSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    public_url: str | None = None
    metrics_token: str | None = None
    # Proxies whose X-Forwarded-For is believed (IPs or networks; TRUSTED_PROXIES, commas).
    trusted_proxies: list[str] = []

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        for network in value if isinstance(value, list) else []:
            ipaddress.ip_network(str(network), strict=False)  # ValueError: not an IP or network
        return value


class DatabaseSettings(_Section):
    url: str = "sqlite:///var/pmi.db"


class RasaSettings(_Section):
    url: str = "http://127.0.0.1:5005"
    token: str | None = None
    timeout_seconds: float = Field(30, gt=0)
    retry_seconds: float = Field(5, gt=0)
    # A message whose turn fails (an action raises): the waits before each further try;
    # after the last, it goes to a person (`pmi.failed_turns`). 5 tries over ~13 minutes.
    failed_turn_backoff_seconds: tuple[float, ...] = (5, 30, 120, 600)


@dataclass(frozen=True)
class Fallbacks:
    """Per language, the languages a text is taken from when it has none, best first."""

    order: dict[str, tuple[str, ...]]
    default: str  # the last resort, also for a language not configured

    def of(self, language: str) -> tuple[str, ...]:
        return (*self.order.get(language, (language,)), self.default)


class LanguageSpec(_Section):
    """One supported language: its code, its name for workers, and its fallbacks."""

    code: str = Field(pattern=r"^[a-z]{2,3}$")  # ISO 639-1 where there is one
    name: str = Field(min_length=1)  # as the worker reads it (language buttons, "my data")
    fallbacks: list[str] = []  # languages to answer in when a text is missing in this one


class LanguageSettings(_Section):
    """The supported languages (config.yml `language.languages`), in the buttons' order."""

    default: str
    languages: list[LanguageSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> LanguageSettings:
        codes = [spec.code for spec in self.languages]
        if len(set(codes)) != len(codes):
            raise ValueError(f"a language is listed twice: {codes}")
        if self.default not in codes:
            raise ValueError(f"the default language {self.default!r} is not in {codes}")
        for spec in self.languages:
            unknown = [lang for lang in spec.fallbacks if lang not in codes or lang == spec.code]
            if unknown:
                raise ValueError(f"{spec.code}: fallbacks {unknown} are not other languages")
        return self

    @property
    def supported(self) -> list[str]:
        return [spec.code for spec in self.languages]

    @property
    def names(self) -> dict[str, str]:
        return {spec.code: spec.name for spec in self.languages}

    @property
    def fallbacks(self) -> Fallbacks:
        order = {
            spec.code: tuple(dict.fromkeys((spec.code, *spec.fallbacks))) for spec in self.languages
        }
        return Fallbacks(order, self.default)


class ContentSettings(_Section):
    knowledge_dir: Path = Path("data/knowledge")
    missions_file: Path = Path("data/missions.yml")
    replies_file: Path = Path("data/replies.yml")
    case_labels_file: Path = Path("data/case_labels.yml")
    case_outcomes_file: Path = Path("data/case_outcomes.yml")
    referral_bodies_file: Path = Path("data/referral_bodies.yml")
    canned_replies_file: Path = Path("data/canned_replies.yml")
    places_file: Path = Path("data/places.yml")
    emergency_lines_file: Path = Path("data/emergency_lines.yml")
    danger_lexicon_file: Path = Path("data/danger_lexicon.yml")
    commands_file: Path = Path("data/commands.yml")
    form_words_file: Path = Path("data/form_words.yml")
    country_names_file: Path = Path("rasa_project/data/nlu/entities.yml")
    country_labels_file: Path = Path("data/country_names.yml")  # names shown, per language
    domain_dir: Path = Path("rasa_project/domain")  # the intents operators may mark messages with

    @field_validator(
        "knowledge_dir",
        "missions_file",
        "replies_file",
        "case_labels_file",
        "case_outcomes_file",
        "referral_bodies_file",
        "canned_replies_file",
        "places_file",
        "emergency_lines_file",
        "danger_lexicon_file",
        "commands_file",
        "form_words_file",
        "country_names_file",
        "country_labels_file",
        "domain_dir",
    )
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value if value.is_absolute() else ROOT / value


class WebchatSettings(_Section):
    """The login-free web chat: off unless enabled (`make run` enables it for local use).

    The abuse limits are kept in memory, per app process.
    """

    enabled: bool = False  # WEBCHAT_ENABLED
    secret: str | None = None  # WEBCHAT_SECRET signs the sender cookie; unset: one per process
    session_hours: float = Field(24, gt=0)  # a sender cookie is refused after this
    sessions_per_ip_hour: int = Field(10, gt=0)
    messages_per_ip_minute: int = Field(30, gt=0)
    messages_per_minute: int = Field(300, gt=0)  # all clients together
    urgent_cases_per_ip_hour: int = Field(3, gt=0)  # beyond: contacts shown, no case, no alert


class TelegramSettings(_Section):
    token: str | None = None
    webhook_secret: str | None = None  # with app.public_url: webhook mode, else polling
    base_url: str = "https://api.telegram.org/bot"


class WhatsAppSettings(_Section):
    """WhatsApp Cloud API; on when the phone number id, token and app secret are all set."""

    phone_number_id: str | None = None
    token: str | None = None  # a system user's access token
    app_secret: str | None = None  # signs webhook bodies (X-Hub-Signature-256)
    verify_token: str | None = None  # echoed in Meta's GET verification handshake
    graph_url: str = "https://graph.facebook.com"
    api_version: str = "23.0"
    # Approved template sent when a reply is due outside the 24-hour window; it invites
    # the worker to write back, which re-opens the window. None: held replies are flagged.
    reopen_template: str | None = None
    template_languages: dict[str, str] = {"id": "id", "en": "en_US", "ms": "ms"}

    @property
    def enabled(self) -> bool:
        return bool(self.phone_number_id and self.token and self.app_secret)


class ChannelSettings(_Section):
    webchat: WebchatSettings = WebchatSettings()
    telegram: TelegramSettings = TelegramSettings()
    whatsapp: WhatsAppSettings = WhatsAppSettings()


class MediaSettings(_Section):
    """Photos, documents and voice notes workers send (kept like case data)."""

    dir: Path = Path("var/media")
    max_bytes: int = Field(16 * 1024 * 1024, gt=0)

    @field_validator("dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return ContentSettings._absolute(value)


class HandoffSettings(_Section):
    """When people answer chats; outside these hours workers are told when and given the hotline."""

    timezone: str = "Asia/Jakarta"
    days: list[int] = [1, 2, 3, 4, 5]  # ISO weekdays, Monday = 1
    start: str = "08:00"
    end: str = "17:00"

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        hours, _, minutes = value.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
            raise ValueError("use HH:MM")
        return value


class ConsoleSettings(_Section):
    session_idle_minutes: float = Field(30, gt=0)
    session_max_hours: float = Field(12, gt=0)
    # Login throttling (`pmi.login_throttle`): failed tries allowed per client address and per
    # account before each further try waits 2, 4, 8 ... seconds (at most login_max_delay).
    login_ip_failures: int = Field(5, gt=0)
    login_account_failures: int = Field(20, gt=0)
    login_max_delay_seconds: float = Field(900, gt=0)
    login_forget_hours: float = Field(24, gt=0)  # a key this long without failures is pruned
    login_audit_minutes: float = Field(15, gt=0)  # failures: one audit entry per key in this time
    login_code_minutes: float = Field(5, gt=0)  # the second step (TOTP code) after the password
    login_enrol_minutes: float = Field(15, gt=0)  # setting up an authenticator at first login
    # CONSOLE_SECRET_KEY (at least 32 characters): encrypts TOTP secrets and keys the login
    # throttle; without it the app keeps a random one in secret_key_file (one app host only).
    secret_key: SecretStr | None = None  # checked at start-up (pmi.console_keys)
    secret_key_file: Path = Path("var/console-secret.key")
    # Time to first acknowledgement before a case shows as overdue.
    target_urgent_minutes: float = Field(15, gt=0)
    target_normal_hours: float = Field(48, gt=0)
    # Transcript search: "low confidence" means Rasa's intent confidence below this.
    low_confidence: float = Field(0.5, ge=0, le=1)


class RetentionSettings(_Section):
    """How long personal data is kept (UU 27/2022: no longer than its purpose needs)."""

    transcript_days: float = Field(180, gt=0)  # messages both ways, unless a case is open
    closed_case_days: float = Field(365, gt=0)  # resolved/closed cases are then anonymised
    interval_hours: float = Field(24, gt=0)  # how often the app runs the job


class RateLimitSettings(_Section):
    """Per-contact inbound limit: beyond it messages are stored but processed later."""

    max_messages: int = Field(20, gt=0)
    window_seconds: float = Field(60, gt=0)
    notice_minutes: float = Field(60, gt=0)  # at most one "slow down" notice per this time


class Settings(_Section):
    app: AppSettings = AppSettings()
    database: DatabaseSettings = DatabaseSettings()
    rasa: RasaSettings = RasaSettings()
    language: LanguageSettings  # no default: the languages are config.yml's
    content: ContentSettings = ContentSettings()
    channels: ChannelSettings = ChannelSettings()
    media: MediaSettings = MediaSettings()
    alerts: AlertSettings = AlertSettings()
    handoff: HandoffSettings = HandoffSettings()
    console: ConsoleSettings = ConsoleSettings()
    deadlines: DeadlineSettings = DeadlineSettings()
    retention: RetentionSettings = RetentionSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()


# Environment variable -> (section, key). Secrets appear only here.
_ENV = {
    "APP_HOST": ("app", "host"),
    "APP_PORT": ("app", "port"),
    "PUBLIC_URL": ("app", "public_url"),
    "METRICS_TOKEN": ("app", "metrics_token"),
    "TRUSTED_PROXIES": ("app", "trusted_proxies"),
    "DATABASE_URL": ("database", "url"),
    "RASA_URL": ("rasa", "url"),
    "RASA_TOKEN": ("rasa", "token"),
    "STAFF_TELEGRAM_CHAT_ID": ("alerts", "staff_telegram_chat_id"),
    "MISSION_STAFF_CHATS": ("alerts", "mission_chats"),
    "CONSOLE_SECRET_KEY": ("console", "secret_key"),
}
# Nested settings set from the environment (secrets and deployment-specific URLs).
_ENV_NESTED = {
    "WEBCHAT_ENABLED": ("channels", "webchat", "enabled"),
    "WEBCHAT_SECRET": ("channels", "webchat", "secret"),
    "TELEGRAM_BOT_TOKEN": ("channels", "telegram", "token"),
    "TELEGRAM_BASE_URL": ("channels", "telegram", "base_url"),
    "TELEGRAM_WEBHOOK_SECRET": ("channels", "telegram", "webhook_secret"),
    "WHATSAPP_PHONE_NUMBER_ID": ("channels", "whatsapp", "phone_number_id"),
    "WHATSAPP_TOKEN": ("channels", "whatsapp", "token"),
    "WHATSAPP_APP_SECRET": ("channels", "whatsapp", "app_secret"),
    "WHATSAPP_VERIFY_TOKEN": ("channels", "whatsapp", "verify_token"),
    "WHATSAPP_GRAPH_URL": ("channels", "whatsapp", "graph_url"),
}


# Settings that are secrets: only the environment may set them, never a file that is committed.
SECRET_VARS = (
    "RASA_TOKEN",
    "METRICS_TOKEN",
    "WEBCHAT_SECRET",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_WEBHOOK_SECRET",
    "WHATSAPP_TOKEN",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "CONSOLE_SECRET_KEY",
)


def _section(data: dict[str, Any], path: Path, *keys: str) -> dict[str, Any]:
    """The (nested) section of the file's data, created if absent or empty."""
    for key in keys:
        value = data.get(key)
        if value is None:
            value = data[key] = {}
        if not isinstance(value, dict):
            raise SettingsError(f"{path}: `{key}` must be a mapping")
        data = value
    return data


def _refuse_secrets_in_file(path: Path, data: dict[str, Any]) -> None:
    for var in SECRET_VARS:
        where = _ENV.get(var) or _ENV_NESTED[var]
        value: Any = data
        for key in where:
            value = value.get(key) if isinstance(value, dict) else None
        if value not in (None, ""):
            raise SettingsError(
                f"{path}: {'.'.join(where)} is a secret: set it in the environment ({var})"
            )


class SettingsError(RuntimeError):
    """Raised when the configuration is invalid; the message says what to fix."""


@cache
def configured_languages() -> LanguageSettings:
    """config.yml's languages, read once, for code that is not handed the settings."""
    return load_settings().language


def load_settings(path: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Load and validate settings; fail fast with a readable message."""
    env = dict(os.environ if env is None else env)
    if path is None and env.get("PMI_CONFIG") and not Path(env["PMI_CONFIG"]).exists():
        raise SettingsError(f"PMI_CONFIG names {env['PMI_CONFIG']}, which does not exist")
    path = path or Path(env.get("PMI_CONFIG", ROOT / "config.yml"))
    data: dict[str, Any] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise SettingsError(f"{path}: expected a mapping at the top level")
        data = loaded
        _refuse_secrets_in_file(path, data)
    for var, (section, key) in _ENV.items():
        if env.get(var):
            _section(data, path, section)[key] = env[var]
    for var, (section, sub, key) in _ENV_NESTED.items():
        if env.get(var):
            _section(data, path, section, sub)[key] = env[var]
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(f"invalid configuration in {path} or environment:\n{exc}") from exc
