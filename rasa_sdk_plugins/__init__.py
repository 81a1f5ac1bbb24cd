"""Extensions of the action server through rasa-sdk's own plugin hook.

rasa-sdk looks for a package named `rasa_sdk_plugins` and calls `init_hooks(manager)`;
its `attach_sanic_app_extensions` hook receives the Sanic app before it serves. Here it
closes the server to everyone but Rasa: every request except `GET /health` needs the
header `X-Action-Token: <ACTION_SERVER_TOKEN>` (Rasa sends it from the `headers` of its
action endpoint in endpoints.yml; Rasa expands an environment variable only when it is a
whole value, hence a header of its own rather than "Bearer ..."). Without the variable the
server refuses to start.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

import pluggy
from sanic import Sanic, response

hookimpl = pluggy.HookimplMarker("rasa_sdk")
TOKEN_VARIABLE = "ACTION_SERVER_TOKEN"  # noqa: S105 - the name of the variable, not a secret
HEADER = "X-Action-Token"
OPEN_PATHS = frozenset({"/health"})


def _token() -> str:
    token = os.environ.get(TOKEN_VARIABLE, "")
    if not token:
        raise RuntimeError(f"{TOKEN_VARIABLE} is not set: the action server would be open")
    return token


class SharedSecret:
    """The plugin: a request middleware that checks the shared secret."""

    @hookimpl
    def attach_sanic_app_extensions(self, app: Sanic) -> None:
        expected = _token().encode()

        @app.on_request
        async def check_secret(request: Any) -> Any:
            if request.path in OPEN_PATHS:
                return None
            given = request.headers.get(HEADER, "").encode()
            if not hmac.compare_digest(given, expected):
                return response.json({"error": "unauthorised"}, status=401)
            return None


def init_hooks(manager: pluggy.PluginManager) -> None:
    manager.register(SharedSecret())
