"""Who a call came from (surface, MCP client, session, correlation id), for every order row."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

#: Set by the registry pipeline for the duration of one call; order rows record it.
call_origin: ContextVar[dict[str, Any] | None] = ContextVar("call_origin", default=None)


def current_origin() -> dict[str, Any] | None:
    """The origin of the call being handled, if any."""
    return call_origin.get()
