"""``slmkit serve``: the app under uvicorn, with a drain on SIGTERM and a clean exit code."""

from __future__ import annotations

import copy
import logging
import signal
from typing import TYPE_CHECKING, Any

from ..errors import SlmkitError

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["serve"]

log = logging.getLogger("slmkit.server")

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(
    app: FastAPI, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info"
) -> int:
    """Serve ``app`` (from :func:`create_app`) until SIGTERM or Ctrl-C; return the exit code.

    On the signal uvicorn stops accepting connections and waits for the answers in flight
    (streams included) to finish, then the models are closed: exit code 0. Exit code 1 when
    the default model fails to load at startup.
    """
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=log_config(),
        timeout_graceful_shutdown=None,  # finish every stream in flight
        server_header=False,
    )
    server = uvicorn.Server(config)
    failed: list[SlmkitError] = []

    def stop(error: SlmkitError) -> None:
        failed.append(error)
        server.should_exit = True

    pool = app.state.pool
    pool.default.on_failure.append(stop)
    names = ", ".join(model.name for model in pool)
    log.info(
        "serving %s on http://%s:%d/v1 (%s)",
        names,
        host,
        port,
        "API key required" if app.state.requires_key else "no API key",
    )
    if not app.state.requires_key and host not in LOOPBACK:
        log.warning("listening on %s without an API key: anyone who can reach it may use it", host)
    # uvicorn re-raises the signal it drained on; with these handlers that is a no-op
    # instead of death by SIGTERM, so a drained shutdown exits 0.
    previous = {sig: signal.signal(sig, _drained) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if failed or not server.started else 0


def _drained(signum: int, frame: object) -> None:
    """uvicorn already shut down gracefully for this signal; nothing more to do."""


def log_config() -> dict[str, Any]:
    """uvicorn's logging, plus slmkit.server's lines in the same format.

    The access log shows the request line and status only, never headers, so an
    Authorization header cannot reach it; keys are not accepted in the query string.
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["slmkit"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
