"""Audit row kinds and the checked, encoded columns of an order event row."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, NotRequired, TypeAlias, TypedDict

from ibkr_mcp.audit._codec import JsonText, dec_text, opt_int, to_json
from ibkr_mcp.origin import current_origin

EVENT_KINDS: Final[frozenset[str]] = frozenset({"tool_call", "gate", "system"})
SURFACES: Final[frozenset[str]] = frozenset({"mcp", "http", "cli", "internal"})
ORDER_EVENT_KINDS: Final[frozenset[str]] = frozenset(
    {
        "preview",
        "intent",
        "sent",
        "dry_run",
        "refused",
        "rejected",
        "status",
        "cancel_requested",
        "uncertain",
        "duplicate",
        # Human approval (issue 14): queued, decided, or expired unsent.
        "pending_approval",
        "approved",
        "denied",
        "expired",
    }
)
FILL_KINDS: Final[frozenset[str]] = frozenset({"execution", "commission"})


#: A row ready to queue: its table and its checked, encoded columns (``AuditLog.event_row``).
Row: TypeAlias = tuple[str, dict[str, Any]]


class EventFields(TypedDict):
    """The fields of an ``events`` row (``AuditLog.record_event`` / ``event_row``).

    Attributes:
        correlation_id: The call's correlation id.
        kind: ``tool_call``, ``gate`` or ``system``.
        tool: Tool (or gate) name.
        surface: ``mcp``, ``http``, ``cli`` or ``internal``.
        arguments: The call's arguments (secret-named keys are masked).
        outcome: ``ok``, ``error:<CODE>``, ``allowed``, ``refused``, ...
        duration_ms: How long the call took.
        safety: Snapshot of the effective safety settings (or its ``JsonText``).
        detail: Any extra JSON-safe context (secret-named keys are masked).
    """

    correlation_id: str
    kind: str
    tool: str | None
    surface: str
    arguments: Mapping[str, Any] | None
    outcome: str
    duration_ms: NotRequired[float | None]
    safety: NotRequired[Mapping[str, str] | JsonText | None]
    detail: NotRequired[Mapping[str, Any] | None]


def check(value: str, allowed: frozenset[str], field: str) -> str:
    if value not in allowed:
        raise ValueError(f"{field} must be one of {sorted(allowed)}, got {value!r}")
    return value


def order_values(
    *,
    correlation_id: str | None,
    event: str,
    idempotency_key: str | None,
    fingerprint: str | None,
    order_id: int | None,
    perm_id: int | None,
    account: str | None,
    symbol: str | None,
    con_id: int | None,
    side: str | None,
    quantity: Decimal | None,
    order_type: str | None,
    limit_price: Decimal | None,
    tif: str | None,
    status: str | None,
    token_id: str | None,
    detail: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """An ``order_events`` row's columns, checked and encoded (``AuditLog.record_order_event``)."""
    origin = current_origin()
    if origin is not None and (detail is None or "origin" not in detail):
        # Every order row names where it came from (surface, MCP client, session).
        detail = {**(detail or {}), "origin": origin}
    return {
        "correlation_id": correlation_id,
        "event": check(event, ORDER_EVENT_KINDS, "event"),
        "token_id": token_id,
        "idempotency_key": idempotency_key,
        "fingerprint": fingerprint,
        "order_id": opt_int(order_id, "order_id"),
        "perm_id": opt_int(perm_id, "perm_id"),
        "account": account,
        "symbol": symbol,
        "con_id": opt_int(con_id, "con_id"),
        "side": side,
        "quantity": dec_text(quantity, "quantity"),
        "order_type": order_type,
        "limit_price": dec_text(limit_price, "limit_price"),
        "tif": tif,
        "status": status,
        "detail": to_json(detail),
    }
