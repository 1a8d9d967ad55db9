"""Flow counters from the audit trail: one reader job, notional and currency read by SQLite."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import T0

from ibkr_mcp.audit import AuditLog
from ibkr_mcp.audit.flow import flow_counts


async def _intent(audit: AuditLog, key: str, detail: Any, **extra: Any) -> None:
    fields = {"account": "DU1", "con_id": 1, **extra}
    await audit.record_order_event(
        correlation_id="c", event="intent", idempotency_key=key, side="BUY",
        quantity=Decimal(2), order_type="LMT", limit_price=Decimal("10.5"), detail=detail,
        **fields,
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


def _reference(rows: list[dict[str, Any]], rejected: set[str], account: str, currency: str) -> Any:
    """The counters summed over every intent row of the day (what each order used to read)."""
    from ibkr_mcp.audit.flow import intent_notional

    total = Decimal(0)
    for row in rows:
        if row["account"] == account and row["idempotency_key"] not in rejected:
            value, row_currency = intent_notional(row)
            if value is not None and row_currency in (None, currency):
                total += value
    return len(rows), total, {r["idempotency_key"] for r in rows if r["idempotency_key"]}


async def test_the_day_tally_matches_a_whole_day_sum_across_processes(db_path: Any) -> None:
    # Two processes on one database append intents and rejections in random order; each order's
    # counters (read incrementally per process) equal the sum over every intent of the day.
    import random

    from audit_helpers import make_clock

    rng = random.Random(15)
    clock = make_clock(step_ms=7)
    one, two = AuditLog(db_path, clock=clock), AuditLog(db_path, clock=clock)
    await one.open()
    await two.open()
    try:
        keys: list[str] = []
        for step in range(120):
            writer = rng.choice((one, two))
            if keys and rng.random() < 0.15:
                await writer.record_order_event(
                    correlation_id="c", event="rejected", idempotency_key=rng.choice(keys),
                    status="Rejected",
                )  # fmt: skip
            else:
                key = f"k{step}"
                keys.append(key)
                detail = rng.choice((
                    None,
                    {"notional": str(Decimal(rng.randint(1, 99999)) / 100), "currency": "USD"},
                    {"notional": "12.5", "currency": "EUR"},
                    {"notional": None, "currency": "USD"},
                ))  # fmt: skip
                await writer.record_order_event(
                    correlation_id="c", event="intent", idempotency_key=key,
                    account=rng.choice(("DU1", "DU2")), con_id=1, side="BUY",
                    quantity=Decimal(rng.randint(1, 9)), order_type="LMT",
                    limit_price=Decimal("10.25"), detail=detail,
                )  # fmt: skip
            reader = rng.choice((one, two))
            account, currency = rng.choice(("DU1", "DU2")), rng.choice(("USD", "EUR"))
            now = T0 + timedelta(seconds=step)
            # Two orders at once in one process: both snapshots hold the same new intents.
            counts, again = await asyncio.gather(*(
                flow_counts(
                    reader, now=now, day_start=T0 - timedelta(hours=1), account=account,
                    currency=currency, con_id=2, side="BUY", quantity=Decimal(1),
                    order_type="MKT", idempotency_key=None, duplicate_window_seconds=0,
                    rejection_window_minutes=10, rejections_since=None,
                )
                for _ in range(2)
            ))  # fmt: skip
            assert again.notional_today == counts.notional_today
            rows = await reader.query(
                "SELECT idempotency_key, account, quantity, limit_price,"
                " json_extract(detail, '$.notional') AS notional,"
                " json_extract(detail, '$.currency') AS currency"
                " FROM order_events WHERE event = 'intent' AND json_valid(COALESCE(detail, '{}'))"
                " OR event = 'intent' AND detail IS NULL"
            )
            rejected = {
                r["idempotency_key"]
                for r in await reader.query(
                    "SELECT idempotency_key FROM order_events WHERE event = 'rejected'"
                )
            }
            today, notional, day_keys = _reference(rows, rejected, account, currency)
            assert (counts.orders_today, counts.notional_today, counts.keys_today) == (
                today, notional, day_keys,
            ), step  # fmt: skip
        # A new trading day starts from nothing.
        later = await flow_counts(
            one, now=T0 + timedelta(days=1), day_start=T0 + timedelta(hours=20), account="DU1",
            currency="USD", con_id=2, side="BUY", quantity=Decimal(1), order_type="MKT",
            idempotency_key=None, duplicate_window_seconds=0, rejection_window_minutes=10,
            rejections_since=None,
        )  # fmt: skip
        assert (later.orders_today, later.notional_today, later.keys_today) == (0, 0, frozenset())
    finally:
        await one.close()
        await two.close()


async def test_flow_queries_read_index_ranges_not_the_whole_table(audit: AuditLog) -> None:
    # Each order runs these: a full scan would cost every row ever recorded, per order.
    from ibkr_mcp.audit.flow import (
        _COUNTS,
        _DAY_INTENTS,
        _NEW_INTENTS,
        _ORDER_INTENTS,
        _RECENT_INTENTS,
        _REJECTED_SINCE,
    )

    at = "2026-01-01T00:00:00Z"
    for sql, params in (
        (_DAY_INTENTS, (at,)),
        (_NEW_INTENTS, (7, at)),
        (_COUNTS, (at, at, 7, at)),
        (_RECENT_INTENTS, (at,)),
        (_REJECTED_SINCE, (at, at)),
        (_ORDER_INTENTS, (at, "DU1", 1, "k", 5)),
    ):
        plan = [row["detail"] for row in await audit.query("EXPLAIN QUERY PLAN " + sql, params)]
        assert not [step for step in plan if step.startswith("SCAN")], (sql, plan)


async def test_a_day_without_intents_is_read_once_then_by_watermark(audit: AuditLog) -> None:
    # History of other days only: the first call reads today's intents through the index, and
    # the watermark then moves to the newest row, so later calls read only what came after.
    from ibkr_mcp.audit.flow import _TALLIES

    for n in range(5):
        await _intent(audit, f"old{n}", {"notional": "1", "currency": "USD"})
    later_day = T0 + timedelta(days=1)
    args: dict[str, Any] = {
        "now": later_day + timedelta(hours=1), "day_start": later_day, "account": "DU1",
        "currency": "USD", "con_id": 2, "side": "BUY", "quantity": Decimal(1),
        "order_type": "MKT", "idempotency_key": None, "duplicate_window_seconds": 0,
        "rejection_window_minutes": 10, "rejections_since": None,
    }  # fmt: skip
    counts = await flow_counts(audit, **args)
    assert (counts.orders_today, counts.notional_today) == (0, 0)
    assert _TALLIES[audit].last_id == 5  # the newest row, though not an intent of the day


async def test_a_row_the_tally_cannot_sum_keeps_failing_closed(audit: AuditLog) -> None:
    # An intent whose value overflows the sum must fail every call (the gates then refuse),
    # never be skipped from the second call on.
    import decimal

    await _intent(audit, "big1", {"notional": "9E+999999", "currency": "USD"})
    await _intent(audit, "big2", {"notional": "9E+999999", "currency": "USD"})
    for _ in range(3):
        with pytest.raises(decimal.Overflow):
            await flow_counts(
                audit, now=T0 + timedelta(seconds=5), day_start=T0 - timedelta(hours=1),
                account="DU1", currency="USD", con_id=2, side="BUY", quantity=Decimal(1),
                order_type="MKT", idempotency_key=None, duplicate_window_seconds=0,
                rejection_window_minutes=10, rejections_since=None,
            )  # fmt: skip


async def test_the_day_tally_follows_a_database_replaced_between_opens(tmp_path: Any) -> None:
    import shutil

    from audit_helpers import make_clock

    day = T0 - timedelta(hours=1)
    path, other = tmp_path / "a" / "audit.db", tmp_path / "b" / "audit.db"
    audit = AuditLog(path, clock=make_clock())
    await audit.open()
    await _intent(audit, "k1", {"notional": "100", "currency": "USD"})

    async def value() -> Decimal:
        counts = await flow_counts(
            audit, now=T0 + timedelta(seconds=5), day_start=day, account="DU1", currency="USD",
            con_id=2, side="BUY", quantity=Decimal(1), order_type="MKT", idempotency_key=None,
            duplicate_window_seconds=0, rejection_window_minutes=10, rejections_since=None,
        )  # fmt: skip
        return counts.notional_today

    assert await value() == 100
    # Another database with more rows (ids past the tally's) takes its place between opens.
    async with AuditLog(other, clock=make_clock(step_ms=3)) as second:
        for n, amount in enumerate(("7", "8", "9")):
            await _intent(second, f"x{n}", {"notional": amount, "currency": "USD"})
    await audit.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    shutil.copy(other, path)
    await audit.open()
    try:
        assert await value() == 24
    finally:
        await audit.close()


async def test_recorded_notional_of_one_order_sums_its_intent_and_modifications(
    audit: AuditLog,
) -> None:
    from ibkr_mcp.audit.flow import recorded_notional

    day = T0 - timedelta(hours=1)

    async def recorded(ref: str | None, order_id: int = 5) -> Decimal | None:
        return await recorded_notional(
            audit, order_ref=ref, order_id=order_id, account="DU1", con_id=1, since=day
        )

    await _intent(audit, "order-a", {"notional": "1010", "currency": "USD"})
    await _intent(audit, "mod-a1", {"notional": "200", "currency": "USD"}, order_id=5)
    await _intent(audit, "order-b", {"notional": "7", "currency": "USD"})  # another order
    # Order ids are per API client: another account's or contract's order 5 is not this one.
    await _intent(audit, "mod-x1", {"notional": "90", "currency": "USD"}, order_id=5,
                  account="DU2")  # fmt: skip
    await _intent(audit, "mod-x2", {"notional": "80", "currency": "USD"}, order_id=5, con_id=2)
    assert await recorded("order-a") == 1210
    # Not its own intent today (an earlier day's GTC order, a bracket child): unknown.
    assert await recorded("order-a.sl") is None
    assert await recorded(None, 6) is None
    await _intent(audit, "mod-a2", None, order_id=5)  # an older row: qty × limit (2 × 10.5)
    assert await recorded("order-a") == 1231
    # A modification the broker rejected is out of the day's sum, so out of this one too.
    await audit.record_order_event(
        correlation_id="c", event="rejected", idempotency_key="mod-a1", status="Rejected"
    )
    assert await recorded("order-a") == 1031


async def test_an_intent_on_stale_counts_is_refused_unless_its_key_is_bound(
    audit: AuditLog,
) -> None:
    from ibkr_mcp.audit import StaleCountsError
    from ibkr_mcp.errors import IdempotencyConflictError

    await _intent(audit, "first", None)
    gate_row = audit.event_row(correlation_id="c", kind="gate", tool="place_order",
                               surface="internal", arguments=None, outcome="allowed")  # fmt: skip
    # Judged on counters read before "first": refused, and its gate row with it.
    with pytest.raises(StaleCountsError):
        await _intent(audit, "second", None, counted_through=0, preceded_by=gate_row)
    # The same key bound meanwhile (another process sent it): the caller must replay it, so
    # the bound key is the answer, not "stale" (which would judge it again and refuse it).
    with pytest.raises(IdempotencyConflictError) as bound:
        await _intent(audit, "first", None, counted_through=0)
    assert bound.value.details["already_bound"] is True
    rows = await audit.query("SELECT event, idempotency_key FROM order_events")
    assert [r["idempotency_key"] for r in rows] == ["first"]
    assert await audit.query("SELECT 1 FROM events WHERE kind = 'gate'") == []
    assert audit.newest_intent_id == 1
