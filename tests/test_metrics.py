"""Prometheus metrics of the app."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from devtools.net import free_port
from tests.support import make_settings, post_chat


def _value(body: str, name: str) -> float:
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


async def test_metrics_count_messages_queues_and_rasa_outages(app_db) -> None:
    settings = make_settings(app_db, f"http://127.0.0.1:{free_port()}")  # Rasa is down
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        await post_chat(client, "m1", {"text": "halo", "id": "1"})
        await post_chat(client, "m1", {"text": "halo", "id": "1"})  # dup
        resp = await client.get("/metrics")
        assert resp.status == 200
        body = await resp.text()
    assert _value(body, 'pmi_messages_in_total{channel="webchat"}') == 1
    assert _value(body, 'pmi_messages_out_total{channel="webchat"}') == 1  # the holding reply
    assert _value(body, "pmi_rasa_unavailable_total") >= 1
    assert _value(body, "pmi_inbound_pending") == 1
    assert _value(body, "pmi_urgent_cases_unacknowledged") == 0


async def test_metrics_need_the_token_when_one_is_set(app_db) -> None:
    settings = make_settings(app_db)
    settings.app.metrics_token = "scrape-me"
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        assert (await client.get("/metrics")).status == 403
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 403
        ok = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert ok.status == 200


async def test_metrics_without_a_token_answer_loopback_only_not_through_a_proxy(app_db) -> None:
    """Behind a proxy on the same host every request comes from loopback: a forwarding
    header says it came from elsewhere."""
    async with TestClient(TestServer(create_app(make_settings(app_db)), host="127.0.0.1")) as c:
        assert (await c.get("/metrics")).status == 200
        for header in (
            {"X-Forwarded-For": "203.0.113.9"},
            {"X-Forwarded-For": "127.0.0.1"},
            {"Forwarded": "for=203.0.113.9;proto=https"},
        ):
            assert (await c.get("/metrics", headers=header)).status == 403, header
        # A token header proves nothing when no token is configured.
        assert (await c.get("/metrics", headers={"Authorization": "Bearer x"})).status == 200


async def test_with_a_token_even_loopback_needs_it(app_db) -> None:
    settings = make_settings(app_db)
    settings.app.metrics_token = "scrape-me"
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        assert (await client.get("/metrics")).status == 403  # loopback, no proxy header
        forwarded = {"Authorization": "Bearer scrape-me", "X-Forwarded-For": "203.0.113.9"}
        assert (await client.get("/metrics", headers=forwarded)).status == 200
