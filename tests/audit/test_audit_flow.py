"""Flow counters from the audit trail: one reader job, notional and currency read by SQLite."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from audit_helpers import T0

from ibkr_mcp.audit import AuditLog
from ibkr_mcp.audit.flow import flow_counts


async def _intent(audit: AuditLog, key: str, detail: Any, **extra: Any) -> None:
    await audit.record_order_event(
        correlation_id="c", event="intent", idempotency_key=key, account="DU1", con_id=1,
        side="BUY", quantity=Decimal(2), order_type="LMT", limit_price=Decimal("10.5"),
        detail=detail, **extra,
    )  # fmt: skip


async def test_counts_read_notional_and_currency_from_each_intent(audit: AuditLog) -> None:
    await _intent(audit, "k1", {"notional": Decimal("100.25"), "currency": "USD"})
    await _intent(audit, "k2", None)  # an older row: qty × limit
    await _intent(audit, "k3", {"notional": "7", "currency": "EUR"})  # another currency
    await _intent(audit, "k4", ["not", "an", "object"])  # no notional: qty × limit
    await _intent(audit, "k5", {"notional": "50", "currency": "USD"})
    await audit.record_order_event(
        correlation_id="c", event="rejected", idempotency_key="k5", status="Rejected"
    )
    counts = await flow_counts(
        audit, now=T0 + timedelta(seconds=1), day_start=T0 - timedelta(hours=1), account="DU1",
        currency="USD", con_id=2, side="BUY", quantity=Decimal(1), order_type="MKT",
        idempotency_key="k9", duplicate_window_seconds=0, rejection_window_minutes=10,
        rejections_since=None,
    )  # fmt: skip
    assert counts.orders_today == counts.orders_last_minute == 5
    assert counts.notional_today == Decimal("100.25") + 2 * Decimal("21")  # k5 was rejected
    assert counts.rejections_in_window == 1
    assert counts.keys_today == {"k1", "k2", "k3", "k4", "k5"}


async def test_query_many_answers_each_statement_in_order(audit: AuditLog) -> None:
    await _intent(audit, "k1", None)
    ones, keys, none = await audit.query_many(
        ("SELECT 1 AS one", ()),
        ("SELECT idempotency_key FROM order_events WHERE event = ?", ("intent",)),
        ("SELECT id FROM fills", ()),
    )
    assert ones == [{"one": 1}]
    assert keys == [{"idempotency_key": "k1"}]
    assert none == []
