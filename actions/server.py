"""The action server: rasa-sdk's Sanic app, with the actions' resources opened at start-up.

`python -m actions.server -p 5055` (rasa-sdk's own options) replaces `python -m rasa_sdk
--actions actions`. It serves the same app (`/webhook`, `/health`, the shared-secret plugin
of `rasa_sdk_plugins`) and adds what rasa-sdk has no place for: logging is configured when
the process starts, not when the actions are imported, and each server process opens its
settings, engine and content before it serves (`actions.db.Resources`) and disposes of the
engine when it stops.

Sanic runs the app in worker processes it spawns: the app factory (`create_app`) is run
again in each of them, and the resources are opened in its `before_server_start` hook.
"""

from __future__ import annotations

import argparse
import logging
import os
import warnings
from functools import partial

from rasa_sdk import utils
from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME, DEFAULT_ENDPOINTS_PATH
from rasa_sdk.endpoint import create_app_for_serve, create_argument_parser, create_ssl_config
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic
from sanic.worker.loader import AppLoader

from actions import db
from pmi.jsonlog import configure_logging
from pmi.logs import install_masking
from pmi.settings import Settings, load_settings

logger = logging.getLogger(__name__)


def configure_process() -> None:
    """Mask personal data in every log record; LOG_FORMAT=json re-formats the handlers.

    rasa-sdk 3.21 was verified against the Rasa 3.6.21 server; its warning on every call
    that the versions differ is silenced on purpose.
    """
    warnings.filterwarnings(
        "ignore", message="Your versions of rasa and rasa_sdk might not be compatible"
    )
    install_masking()
    configure_logging(text_default=False)  # text logging is rasa-sdk's own


def create_app(
    executor: ActionExecutor,
    settings: Settings,
    cors_origins: str | list[str] | None = "*",
    auto_reload: bool = False,
    endpoints: str = DEFAULT_ENDPOINTS_PATH,
) -> Sanic:
    """rasa-sdk's app, whose start-up opens the resources and whose shutdown closes them."""
    configure_process()  # in each worker process too
    app = create_app_for_serve(
        executor, cors_origins=cors_origins, auto_reload=auto_reload, endpoints=endpoints
    )

    async def open_resources(app: Sanic) -> None:
        app.ctx.resources = db.Resources.open(settings)
        db.install(app.ctx.resources)

    async def close_resources(app: Sanic) -> None:
        db.install(None)
        await app.ctx.resources.close()

    app.register_listener(open_resources, "before_server_start")
    app.register_listener(close_resources, "after_server_stop")
    return app


def _configure_logging(args: argparse.Namespace) -> None:
    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(
        logging.getLogger(APPLICATION_ROOT_LOGGER_NAME),
        args.log_file,
        args.loglevel,
        args.logging_config_file,
    )
    utils.update_sanic_log_level()
    configure_process()


def main(argv: list[str] | None = None) -> None:
    """Run the action server (the options of `python -m rasa_sdk`)."""
    args = create_argument_parser().parse_args(argv)
    _configure_logging(args)
    settings = load_settings()  # fail fast, before any worker starts
    executor = ActionExecutor()
    executor.register_package(args.actions_module or args.actions or "actions")
    loader = AppLoader(
        factory=partial(
            create_app,
            executor,
            settings,
            cors_origins=args.cors,
            auto_reload=args.auto_reload,
            endpoints=args.endpoints,
        )
    )
    app = loader.load()
    app.prepare(
        host=os.environ.get("SANIC_HOST", "0.0.0.0"),  # noqa: S104 - rasa-sdk's default
        port=args.port,
        ssl=create_ssl_config(args.ssl_certificate, args.ssl_keyfile, args.ssl_password),
        workers=utils.number_of_sanic_workers(),
    )
    logger.info("action server listening on port %s", args.port)
    Sanic.serve(primary=app, app_loader=loader)


if __name__ == "__main__":
    main()
