"""The whole stack on one machine: build its services, start, stop, kill and restart them.

Used by `make bench`, the evaluations and the scale-out and fault suites. Every process
listens on a free port of 127.0.0.1 and writes its own log file under the stack's work
directory (devtools/service.py).

    migrate(database_url)                         # devtools.databases
    stack = Stack(workdir, database_url)
    actions = stack.action_server()
    rasa = stack.rasa()                           # or several: stack.rasa("rasa2", endpoints=...)
    telegram = FakeTelegram(); await telegram.start()
    app = stack.app(rasa_url=rasa.url, telegram=telegram)  # webhook mode, as in production
    stack.start_all(); await stack.ready()        # wait_ready() outside asyncio
    load = TelegramLoad(telegram, [app.url + WEBHOOK_PATH], stack.webhook_secret, http)
    turns = await load.run(conversations, concurrency=10, duration=30)   # devtools.load
    tally = await reconcile(database_url, turns, load.received)   # devtools.reconcile
    app.kill(); app.restart()                     # a crash and a recovery
    stack.peak_rss_mb()                           # {"rasa": 812.4, ...}
    stack.stop_all()
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devtools.model import ROOT, SERVE_ENV, ensure_model, rasa_env
from devtools.net import free_port
from devtools.service import Service

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
HEADER = "X-Action-Token"  # the action server's shared secret (rasa_sdk_plugins)
# Rasa's plain REST channel beside the app's own (benchmarks: "Rasa alone").
DEV_CREDENTIALS = ROOT / "rasa_project" / "credentials.dev.yml"


@dataclass
class Stack:
    """Builds the stack's services; each one is started, stopped and killed on its own.

    `database_url` is used by the action server and the apps (migrate it first with
    `migrate()`); each Rasa server keeps its conversations in a SQLite tracker store of its
    own (rasa_project/endpoints.yml, as `make run`) unless an endpoints file says otherwise
    (`endpoints_file()` writes one).
    """

    workdir: Path
    database_url: str
    model: Path | None = None
    rasa_token: str = field(default_factory=lambda: secrets.token_hex(24))
    action_token: str = field(default_factory=lambda: secrets.token_hex(24))
    webhook_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    env: dict[str, str] = field(default_factory=dict)  # added to every process's environment
    services: dict[str, Service] = field(default_factory=dict)
    action_url: str | None = None  # the first action server's webhook

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = rasa_env()
        env.update(
            DATABASE_URL=self.database_url,
            PYTHONUNBUFFERED="1",
            PTB_TIMEDELTA="1",
            SANIC_HOST="127.0.0.1",
            RASA_TOKEN=self.rasa_token,
            ACTION_SERVER_TOKEN=self.action_token,
        )
        if self.action_url:
            env["ACTION_SERVER_URL"] = self.action_url
        env.update(self.env)
        env.update(extra or {})
        return env

    def _add(self, service: Service) -> Service:
        if service.name in self.services:
            raise ValueError(f"a service named {service.name!r} exists already")
        self.services[service.name] = service
        return service

    def action_server(self, name: str = "actions", env: dict[str, str] | None = None) -> Service:
        """The rasa-sdk action server (actions/); the Rasa servers added later call it."""
        port = free_port()
        url = f"http://127.0.0.1:{port}/webhook"
        self.action_url = self.action_url or url
        argv = [sys.executable, "-m", "actions.server", "-p", str(port)]
        return self._add(
            Service(
                name,
                argv,
                self._env(env),
                port,
                f"http://127.0.0.1:{port}/health",
                self.workdir / f"{name}.log",
            )
        )

    def rasa(
        self,
        name: str = "rasa",
        *,
        endpoints: Path | None = None,
        model: Path | None = None,
        env: dict[str, str] | None = None,
        api: bool = False,
        credentials: Path | None = None,
    ) -> Service:
        """A Rasa server with the trained model, as `make run` serves it.

        By default its conversations go to a SQLite tracker store of its own in the stack's
        folder (rasa_project/endpoints.yml); `endpoints` names another file. `api`: also
        Rasa's HTTP API behind the token (tools that read trackers or time NLU alone);
        `credentials`: e.g. credentials.dev.yml for the plain REST channel.
        """
        if self.action_url is None and env is None:
            raise RuntimeError("add the action server first (its URL goes to Rasa)")
        port = free_port()
        model = model or self.model or ensure_model()
        argv = [
            str(ROOT / ".venv-rasa" / "bin" / "rasa"), "run", "-i", "127.0.0.1", "-p", str(port),
            "-m", str(model),
            "--endpoints", str(endpoints or ROOT / "rasa_project" / "endpoints.yml"),
            "--credentials", str(credentials or ROOT / "rasa_project" / "credentials.yml"),
        ]  # fmt: skip
        if api:
            argv += ["--enable-api", "--auth-token", self.rasa_token]
        from pmi.db import private_file

        tracker = self.workdir / f"{name}-tracker.db"
        private_file(tracker)  # as `make run`: the worker's conversations, owner only
        extra = {"RASA_TRACKER_DB": str(tracker), **SERVE_ENV}
        return self._add(
            Service(
                name,
                argv,
                self._env({**extra, **(env or {})}),
                port,
                f"http://127.0.0.1:{port}/webhooks/relay/",  # 200 once the model is loaded
                self.workdir / f"{name}.log",
            )
        )

    def app(
        self,
        name: str = "app",
        *,
        rasa_url: str,
        telegram: Any | None = None,
        webhook: bool = True,
        env: dict[str, str] | None = None,
    ) -> Service:
        """The app (`python -m bot`); with `telegram` (a FakeTelegram) its Telegram channel.

        Webhook mode by default (the production mode): updates are POSTed to
        `service.url + WEBHOOK_PATH` with `stack.webhook_secret`; `webhook=False` polls.
        """
        port = free_port()
        extra = {
            "APP_HOST": "127.0.0.1",
            "APP_PORT": str(port),
            "RASA_URL": rasa_url,
        }
        if telegram is not None:
            extra.update(TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_BASE_URL=telegram.base_url)
            if webhook:
                extra.update(
                    PUBLIC_URL=f"http://127.0.0.1:{port}",
                    TELEGRAM_WEBHOOK_SECRET=self.webhook_secret,
                )
        extra.update(env or {})
        return self._add(
            Service(
                name,
                [sys.executable, "-m", "bot"],
                self._env(extra),
                port,
                f"http://127.0.0.1:{port}/readyz",
                self.workdir / f"{name}.log",
            )
        )

    def endpoints_file(
        self,
        name: str,
        *,
        tracker_store: dict[str, Any] | None = None,
        lock_store: dict[str, Any] | None = None,
    ) -> Path:
        """Write a Rasa endpoints file (action server + optional tracker/lock store)."""
        data: dict[str, Any] = {
            "action_endpoint": {
                "url": "${ACTION_SERVER_URL}",
                "headers": {HEADER: "${ACTION_SERVER_TOKEN}"},
            }
        }
        if tracker_store:
            data["tracker_store"] = tracker_store
        if lock_store:
            data["lock_store"] = lock_store
        path = self.workdir / f"{name}.endpoints.yml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    def start_all(self) -> None:
        for service in self.services.values():
            if not service.running:
                service.start()

    def wait_ready(self, timeout: float = 300) -> dict[str, float]:
        """Wait for every running service; return the seconds each took from its start."""
        return {s.name: s.wait_ready(timeout) for s in self.services.values() if s.proc is not None}

    async def ready(self, within: float = 300) -> dict[str, float]:
        """`wait_ready` for asyncio code: all started services, concurrently."""
        started = [s for s in self.services.values() if s.proc is not None]
        times = await asyncio.gather(*(s.ready(within) for s in started))
        return {s.name: t for s, t in zip(started, times, strict=True)}

    def stop_all(self) -> None:
        # Apps first (they call Rasa), then Rasa, then the action server.
        order = sorted(
            self.services.values(),
            key=lambda s: 0 if s.argv[-1] == "bot" else 2 if "actions.server" in s.argv else 1,
        )
        for service in order:
            service.stop()

    def peak_rss_mb(self) -> dict[str, float]:
        return {name: round(s.peak_rss_mb(), 1) for name, s in self.services.items()}

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop_all()
