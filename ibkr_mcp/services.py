"""The services every tool handler receives: settings, gateway, audit, tokens, clock, metrics."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ibkr_mcp.audit import AuditLog
    from ibkr_mcp.config import Settings
    from ibkr_mcp.gateway.base import Gateway
    from ibkr_mcp.safety.tokens import TokenStore


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass
class Services:
    """Injected into every handler; built once per process by ``runtime.open_runtime``."""

    settings: Settings
    gateway: Gateway
    audit: AuditLog
    tokens: TokenStore
    now: Callable[[], datetime] = field(default=utc_now)
    simulator: object | None = None
    #: This process's id: an order queued for approval is sent by the server that queued it.
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


class ServicesHandle:
    """The process's services, possibly still opening: MCP answers the handshake meanwhile.

    ``serve`` builds the MCP server on a handle and opens the runtime concurrently, so
    ``initialize`` and ``tools/list`` never wait for the gateway, the audit file or the
    simulator. The first call that needs the services awaits them, bounded by ``timeout``.
    """

    def __init__(self, settings: Settings, *, timeout: float) -> None:
        """Create an empty handle.

        Args:
            settings: The effective settings (readable before the services exist).
            timeout: Seconds a call waits for the services before failing with a clear error.
        """
        import asyncio

        self.settings = settings
        self.timeout = timeout
        self._ready: asyncio.Event = asyncio.Event()
        self._services: Services | None = None
        self._error: BaseException | None = None

    @classmethod
    def ready(cls, services: Services) -> ServicesHandle:
        """A handle on services that are already open."""
        handle = cls(services.settings, timeout=0.0)
        handle.set(services)
        return handle

    def set(self, services: Services) -> None:
        """The runtime is open: release every waiting call."""
        self._services = services
        self._ready.set()

    def fail(self, error: BaseException) -> None:
        """The runtime could not open: every waiting and later call gets a clear error."""
        self._error = error
        self._ready.set()

    @property
    def current(self) -> Services | None:
        """The services if open, else None (never waits)."""
        return self._services

    async def get(self) -> Services:
        """The services, waiting for them to open (at most ``timeout`` seconds).

        Raises:
            GatewayUnavailableError: The runtime is not open in time, or failed to open.
        """
        if self._services is not None:  # every call after start-up: no await, no import
            return self._services
        import asyncio

        from ibkr_mcp.errors import GatewayUnavailableError, IbkrMcpError

        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), self.timeout)
            except TimeoutError:
                raise GatewayUnavailableError(
                    f"the server is still starting after {self.timeout:.0f} s",
                    remedy="Retry in a few seconds; check the server's stderr log if it persists.",
                ) from None
        if self._services is not None:
            return self._services
        if isinstance(self._error, IbkrMcpError):
            raise self._error
        raise GatewayUnavailableError(
            f"the server's runtime failed to start: {self._error}",
            remedy="Check the server's stderr log and configuration, then restart it.",
        )
