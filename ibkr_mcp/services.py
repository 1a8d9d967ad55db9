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
