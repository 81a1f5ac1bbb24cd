"""Prometheus metrics of the app: messages in and out, turn latency, queues, urgent cases.

`GET /metrics` needs `METRICS_TOKEN` as a bearer token when one is configured, from every
client; without one it answers only a loopback client that came through no proxy (no
`X-Forwarded-For` or `Forwarded` header: behind a proxy on the same host, every request
comes from loopback).
"""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy.ext.asyncio import AsyncSession

from pmi.depths import read_depths


class Metrics:
    """The app's metrics, in a registry of their own (one per app, not process-global)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.inbound = Counter(
            "pmi_messages_in", "Inbound messages stored", ["channel"], registry=r
        )
        self.outbound = Counter(
            "pmi_messages_out", "Replies delivered to a channel", ["channel"], registry=r
        )
        self.turn_seconds = Histogram(
            "pmi_turn_seconds",
            "From taking a stored message to having its replies stored (Rasa included)",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )
        self.rasa_unavailable = Counter(
            "pmi_rasa_unavailable", "Turns that found Rasa or the actions unavailable", registry=r
        )
        self.turns_failed = Counter(
            "pmi_turns_failed", "Turns Rasa answered as failed (an action raised)", registry=r
        )
        self.turns_given_up = Counter(
            "pmi_turns_given_up",
            "Messages given up after failed turns and handed to a person",
            registry=r,
        )
        self.inbound_pending = Gauge(
            "pmi_inbound_pending", "Messages waiting to be processed", registry=r
        )
        self.outbox_pending = Gauge("pmi_outbox_pending", "Replies waiting to be sent", registry=r)
        self.urgent_open = Gauge(
            "pmi_urgent_cases_unacknowledged", "Urgent cases nobody acknowledged", registry=r
        )

    async def refresh(self, s: AsyncSession) -> None:
        """Read the queue depths and open urgent cases from the database."""
        depths = await read_depths(s)
        self.inbound_pending.set(depths.inbound_pending)
        self.outbox_pending.set(depths.outbox_pending)
        self.urgent_open.set(depths.urgent_unacknowledged)


PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def allowed(request: web.Request, token: str | None) -> bool:
    """The bearer token when one is set; else a loopback peer with no proxy header."""
    if token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def render(metrics: Metrics) -> web.Response:
    response = web.Response(body=generate_latest(metrics.registry))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response
