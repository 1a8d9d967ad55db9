"""Shared helpers for the audit trail tests (a unique module name: test dirs have no __init__)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ibkr_mcp.audit import AuditLog

T0 = datetime(2026, 11, 25, 14, 3, 12, 123456, tzinfo=UTC)


def make_clock(start: datetime = T0, step_ms: int = 1) -> Callable[[], datetime]:
    """A deterministic clock that advances by ``step_ms`` on every call."""
    counter = itertools.count()
    return lambda: start + timedelta(milliseconds=step_ms * next(counter))


async def populate(log: AuditLog, key: str = "key-1") -> None:
    """A small realistic history: a quote, a previewed+placed order with status and fill."""
    await log.record_event(
        correlation_id="c-quote",
        kind="tool_call",
        tool="get_quote",
        surface="mcp",
        arguments={"symbol": "AAPL"},
        outcome="ok",
        duration_ms=12.5,
    )
    await log.record_event(
        correlation_id="c-order",
        kind="gate",
        tool="place_order",
        surface="http",
        arguments=None,
        outcome="allowed",
        safety={"orders_enabled": "true"},
        detail={"gate": "max_quantity"},
    )
    await log.record_order_event(
        correlation_id="c-order",
        event="intent",
        idempotency_key=key,
        fingerprint="fp1",
        account="DU1234567",
        symbol="AAPL",
        con_id=265598,
        side="BUY",
        quantity=Decimal("10"),
        order_type="LMT",
        limit_price=Decimal("190.10"),
        tif="DAY",
        token_id="tok_abc",
    )
    await log.record_order_event(
        correlation_id="c-order", event="sent", idempotency_key=key, order_id=7
    )
    await log.record_order_event(
        correlation_id=None, event="status", idempotency_key=None, order_id=7, status="Submitted"
    )
    await log.record_fill(
        correlation_id="c-order",
        kind="execution",
        exec_id=f"0001.01.{key}",
        order_id=7,
        perm_id=99,
        account="DU1234567",
        symbol="AAPL",
        side="BOT",
        quantity=Decimal("10"),
        price=Decimal("190.05"),
        exec_time=T0,
    )
    await log.record_fill(
        correlation_id="c-order",
        kind="commission",
        exec_id=f"0001.01.{key}",
        order_id=7,
        perm_id=99,
        account="DU1234567",
        symbol="AAPL",
        side=None,
        quantity=None,
        price=None,
        commission=Decimal("1.0000001"),
        commission_currency="USD",
        realized_pnl=Decimal("0"),
    )
    await log.record_order_event(
        correlation_id=None, event="status", idempotency_key=None, order_id=7, status="Filled"
    )
    await log.record_order_event(
        correlation_id="c-dry",
        event="dry_run",
        idempotency_key="key-2",
        symbol="MSFT",
        side="SELL",
        quantity=Decimal("0.1"),
        order_type="MKT",
    )


#: Rows written by ``populate`` per table.
POPULATED = {"events": 2, "order_events": 5, "fills": 2}
