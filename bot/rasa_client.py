"""Client of the Rasa server's relay channel (`rasa_project/channels/relay.py`).

Each call carries the stored inbound message's id, so asking again after a crash
returns the turn Rasa already ran instead of running it twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)


class RasaUnavailable(Exception):
    """Rasa (or the action server behind it) could not answer; the message must be retried."""


class TurnFailed(RasaUnavailable):
    """Rasa answered that this message's turn failed (HTTP 500: an action raised, or Rasa
    itself did): retried a few times with backoff, then handed to a person (`bot.relay`)."""


@dataclass(frozen=True)
class BotReply:
    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Turn:
    """Rasa's answer to one message: the replies and what NLU understood."""

    replies: list[BotReply]
    intent: str | None = None
    confidence: float | None = None
    replayed: bool = False  # Rasa had already handled this message (the app retried)


def _reply(raw: dict[str, Any]) -> BotReply | None:
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        return None
    buttons = [
        {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
        for b in raw.get("buttons") or []
        if isinstance(b, dict) and b.get("title")
    ]
    return BotReply(text=text, buttons=buttons)


async def _failure(resp: aiohttp.ClientResponse) -> str:
    """What failed, for the staff who take the message over (no message text in it)."""
    try:
        body = await resp.json(content_type=None)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("actions"), list):
        return "action failed: " + ", ".join(str(a) for a in body["actions"])[:200]
    return "rasa answered HTTP 500"


class RasaClient:
    """Sends one user message to Rasa and returns the bot's replies."""

    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, timeout: float, token: str | None = None
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/") + "/webhooks/relay"
        self._url = self._base + "/webhook"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # The relay channel's token, in a header (never in a URL, where proxies log it).
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST to the relay channel; the JSON answer, or None if Rasa could not do it."""
        try:
            async with self._http.post(
                self._base + path, json=body, headers=self._headers, timeout=self._timeout
            ) as resp:
                if resp.status != 200:
                    logger.warning("rasa %s answered HTTP %s", path, resp.status)
                    return None
                answer = await resp.json()
                return answer if isinstance(answer, dict) else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            logger.warning("rasa %s unreachable: %s", path, exc.__class__.__name__)
            return None

    async def forget(self, sender: str) -> bool:
        """Delete a conversation from Rasa's tracker store; True once Rasa confirmed it."""
        return await self._post("/erase", {"sender": sender}) is not None

    async def prune(self, before: float) -> int | None:
        """Delete Rasa's events older than `before` (UNIX time); how many, None on failure."""
        answer = await self._post("/prune", {"before": before})
        return int(answer.get("pruned", 0)) if answer is not None else None

    async def send(
        self, sender: str, text: str, message_id: int | str, metadata: dict[str, Any]
    ) -> Turn:
        """Run (or replay) the turn of one stored message; RasaUnavailable to retry later."""
        payload = {
            "sender": sender,
            "message": text,
            "metadata": {**metadata, "message_id": str(message_id)},
        }
        try:
            async with self._http.post(
                self._url, json=payload, headers=self._headers, timeout=self._timeout
            ) as resp:
                if resp.status == 500:
                    raise TurnFailed(await _failure(resp))
                if resp.status != 200:
                    raise RasaUnavailable(f"rasa answered HTTP {resp.status}")
                body = await resp.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise RasaUnavailable(f"rasa unreachable: {exc.__class__.__name__}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("replies"), list):
            raise RasaUnavailable("rasa answered an unexpected body")
        replies = [r for r in (_reply(i) for i in body["replies"] if isinstance(i, dict)) if r]
        confidence = body.get("confidence")
        return Turn(
            replies=replies,
            intent=body.get("intent") if isinstance(body.get("intent"), str) else None,
            confidence=float(confidence) if isinstance(confidence, int | float) else None,
            replayed=bool(body.get("replayed")),
        )
