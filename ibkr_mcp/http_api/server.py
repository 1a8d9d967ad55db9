"""Run the HTTP API under uvicorn on one event loop (``ibkr-mcp start-api``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ibkr_mcp.config import Settings
from ibkr_mcp.http_api.security import check_bind
from ibkr_mcp.logs import access_log_shown

if TYPE_CHECKING:
    import uvicorn


def build_server(
    settings: Settings, *, host: str | None = None, port: int | None = None, sim: bool = False
) -> uvicorn.Server:
    """A configured ``uvicorn.Server`` (not started) after the bind check.

    Args:
        settings: Effective settings.
        host: Bind address (default ``API_HOST``).
        port: Port (default ``API_PORT``; 0 picks a free one).
        sim: Start the embedded simulator in the app's lifespan.

    Raises:
        BindRefusedError: A non-loopback ``host`` without ``API_TOKEN``.
    """
    import uvicorn

    from ibkr_mcp.http_api.app import create_app

    bind_host = host or settings.API_HOST
    check_bind(bind_host, settings)
    config = uvicorn.Config(
        create_app(settings, sim=sim),
        host=bind_host,
        port=settings.API_PORT if port is None else port,
        loop="asyncio",
        lifespan="on",
        log_config=None,
        # Through loguru (logs.configure_logging): correlation id, escaping. Off when LOG_LEVEL
        # drops the lines anyway: uvicorn would still format their arguments on every request.
        access_log=access_log_shown(settings),
        server_header=False,
        proxy_headers=False,
    )
    return uvicorn.Server(config)


def run_api(
    settings: Settings, *, host: str | None = None, port: int | None = None, sim: bool = False
) -> None:
    """Serve until interrupted (blocking)."""
    build_server(settings, host=host, port=port, sim=sim).run()
