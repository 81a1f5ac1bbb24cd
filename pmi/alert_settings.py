"""Settings of staff alerts (config.yml `alerts`, STAFF_TELEGRAM_CHAT_ID, MISSION_STAFF_CHATS),
read by `bot.alerts`: when to repeat and escalate, which chat each mission's alerts and daily
overdue list go to."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class AlertSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    ack_timeout_minutes: float = Field(15, gt=0)
    check_seconds: float = Field(30, gt=0)
    fallback_route: str | None = None  # default: the missions directory's default route
    staff_telegram_chat_id: str | None = None
    # A staff chat per mission (MISSION_STAFF_CHATS="KBRI-KUALA-LUMPUR=-100123,..."); a
    # mission without one gets its daily overdue list in the shared staff chat.
    mission_chats: dict[str, str] = {}
    overdue_digest_hour: int = Field(1, ge=0, le=23)  # UTC hour of the daily overdue list
    console_url: str = "http://127.0.0.1:8080/console"

    @field_validator("mission_chats", mode="before")
    @classmethod
    def _chats(cls, value: Any) -> Any:
        if isinstance(value, str):
            pairs = [part.split("=", 1) for part in value.split(",") if part.strip()]
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError("MISSION_STAFF_CHATS: MISSION-CODE=chat id, separated by commas")
            value = {code.strip(): chat.strip() for code, chat in pairs}
        return value

    def chat_of(self, mission_code: str) -> str | None:
        return self.mission_chats.get(mission_code) or self.staff_telegram_chat_id
