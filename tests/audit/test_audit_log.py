"""AuditLog: records, reads, exact decimals, timestamps, masking, ordering, threading."""

from __future__ import annotations

import asyncio
import enum
import re
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from audit_helpers import POPULATED, T0, make_clock, populate

from ibkr_mcp.audit import AuditLog, token_id
from ibkr_mcp.errors import AuditUnavailableError

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")


def _rows(path: Path, table: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY seq").fetchall()
    finally:
        conn.close()


async def test_records_land_in_their_tables_with_one_chain(audit: AuditLog) -> None:
    await populate(audit)
    for table, count in POPULATED.items():
        assert len(_rows(audit.path, table)) == count
    result = audit.verify()
    assert result.ok, result.first_bad
    assert result.rows == sum(POPULATED.values())
    seqs = sorted(r["seq"] for t in POPULATED for r in _rows(audit.path, t))
    assert seqs == list(range(1, result.rows + 1))


async def test_ids_are_per_table_and_returned(audit: AuditLog) -> None:
    first = await audit.record_event(
        correlation_id="a",
        kind="system",
        tool=None,
        surface="internal",
        arguments=None,
        outcome="started",
    )
    order = await audit.record_order_event(correlation_id="a", event="intent", idempotency_key="k")
    second = await audit.record_event(
        correlation_id="a",
        kind="system",
        tool=None,
        surface="internal",
        arguments=None,
        outcome="stopped",
    )
    assert (first, order, second) == (1, 1, 2)


async def test_decimals_are_stored_exactly_as_text(audit: AuditLog) -> None:
    await audit.record_order_event(
        correlation_id="c",
        event="intent",
        idempotency_key="k",
        quantity=Decimal("0.1"),
        limit_price=Decimal("190.10"),
    )
    await audit.record_fill(
        correlation_id="c",
        kind="commission",
        exec_id="e",
        order_id=None,
        perm_id=None,
        account=None,
        symbol=None,
        side=None,
        quantity=Decimal("1E+2"),
        price=Decimal("1E-8"),
        commission=Decimal("0.35"),
    )
    order = _rows(audit.path, "order_events")[0]
    assert (order["quantity"], order["limit_price"]) == ("0.1", "190.10")
    fill = _rows(audit.path, "fills")[0]
    assert (fill["quantity"], fill["price"], fill["commission"]) == ("100", "0.00000001", "0.35")
    assert Decimal(order["quantity"]) + Decimal("0.2") == Decimal("0.3")


async def test_inexact_money_is_refused_and_nothing_written(audit: AuditLog) -> None:
    with pytest.raises(TypeError, match="quantity must be a Decimal"):
        await audit.record_order_event(
            correlation_id="c",
            event="intent",
            idempotency_key="k",
            quantity=0.1,  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError, match="finite"):
        await audit.record_fill(
            correlation_id="c",
            kind="execution",
            exec_id="e",
            order_id=1,
            perm_id=1,
            account=None,
            symbol=None,
            side=None,
            quantity=Decimal("1"),
            price=Decimal("NaN"),
        )
    assert await audit.recent() == []


async def test_unknown_enumerations_are_refused(audit: AuditLog) -> None:
    with pytest.raises(ValueError, match="kind"):
        await audit.record_event(
            correlation_id="c",
            kind="chat",
            tool=None,
            surface="mcp",
            arguments=None,
            outcome="ok",
        )
    with pytest.raises(ValueError, match="surface"):
        await audit.record_event(
            correlation_id="c",
            kind="tool_call",
            tool="x",
            surface="smtp",
            arguments=None,
            outcome="ok",
        )
    with pytest.raises(ValueError, match="event"):
        await audit.record_order_event(correlation_id="c", event="filled", idempotency_key=None)
    with pytest.raises(ValueError, match="kind"):
        await audit.record_fill(
            correlation_id="c",
            kind="trade",
            exec_id="e",
            order_id=None,
            perm_id=None,
            account=None,
            symbol=None,
            side=None,
            quantity=None,
            price=None,
        )
    assert await audit.recent() == []


async def test_timestamps_are_utc_iso_with_offset(db_path: Path) -> None:
    eastern = timezone(timedelta(hours=-5))
    log = AuditLog(db_path, clock=lambda: datetime(2026, 11, 25, 9, 3, 12, 5, tzinfo=eastern))
    await log.open()
    try:
        await log.record_fill(
            correlation_id=None,
            kind="execution",
            exec_id="e",
            order_id=1,
            perm_id=2,
            account="DU1",
            symbol="AAPL",
            side="BOT",
            quantity=Decimal(1),
            price=Decimal(2),
            exec_time=datetime(2026, 11, 25, 10, 0, tzinfo=eastern),
        )
    finally:
        await log.close()
    row = _rows(db_path, "fills")[0]
    assert row["ts"] == "2026-11-25T14:03:12.000005+00:00"
    assert row["exec_time"] == "2026-11-25T15:00:00.000000+00:00"
    assert TS.match(row["ts"]) and TS.match(row["exec_time"])


async def test_secrets_are_masked_and_tokens_reduced_to_ids(audit: AuditLog) -> None:
    secret_token = "conf-TOKEN-0123456789abcdef"
    await audit.record_event(
        correlation_id="c",
        kind="tool_call",
        tool="place_order",
        surface="http",
        arguments={
            "symbol": "AAPL",
            "confirmation_token": secret_token,
            "nested": {"password": "hunter2", "api_token": "bearer-xyz", "list": [{"secret": 1}]},
            "token_id": "tok_keep",
        },
        outcome="ok",
        detail={"Authorization": "Bearer abc", "confirm_token": secret_token},
    )
    row = (await audit.recent(1))[0]
    args = orjson.loads(row["arguments"])
    assert args["symbol"] == "AAPL"
    assert args["confirmation_token"] == token_id(secret_token)
    assert args["nested"] == {"password": "***", "api_token": "***", "list": [{"secret": "***"}]}
    assert args["token_id"] == "tok_keep"
    assert orjson.loads(row["detail"]) == {
        "Authorization": "***",
        "confirm_token": token_id(secret_token),
    }
    await audit.close()
    raw = b"".join(p.read_bytes() for p in audit.path.parent.iterdir())
    for secret in (secret_token, "hunter2", "bearer-xyz", "Bearer abc"):
        assert secret.encode() not in raw


async def test_recent_is_newest_first_across_tables(audit: AuditLog) -> None:
    await populate(audit)
    rows = await audit.recent(3)
    assert [r["table"] for r in rows] == ["order_events", "order_events", "fills"]
    assert [r["seq"] for r in rows] == [9, 8, 7]
    assert rows[0]["event"] == "dry_run" and rows[0]["quantity"] == "0.1"
    scoped = await audit.recent(50, correlation_id="c-order")
    assert [r["seq"] for r in scoped] == [7, 6, 4, 3, 2]
    assert {r["correlation_id"] for r in scoped} == {"c-order"}
    gate = scoped[-1]
    assert gate["table"] == "events" and orjson.loads(gate["safety"]) == {"orders_enabled": "true"}
    assert await audit.recent(0) == []


async def test_order_events_for_key_and_latest(audit: AuditLog) -> None:
    await populate(audit)
    events = await audit.order_events_for_key("key-1")
    assert [e["event"] for e in events] == ["intent", "sent"]
    assert events[0]["limit_price"] == "190.10" and events[0]["token_id"] == "tok_abc"
    assert await audit.order_events_for_key("nope") == []
    latest = await audit.latest_order_event(7)
    assert latest is not None and latest["status"] == "Filled"
    assert await audit.latest_order_event(12345) is None


async def test_concurrent_calls_keep_submission_order(audit: AuditLog) -> None:
    ids = await asyncio.gather(
        *(
            audit.record_event(
                correlation_id=f"c{i}",
                kind="tool_call",
                tool="t",
                surface="mcp",
                arguments={"i": i},
                outcome="ok",
            )
            for i in range(50)
        )
    )
    assert ids == list(range(1, 51))
    rows = _rows(audit.path, "events")
    assert [r["correlation_id"] for r in rows] == [f"c{i}" for i in range(50)]
    assert audit.verify().ok


async def test_writes_run_on_the_dedicated_writer_thread(db_path: Path) -> None:
    threads: set[str] = set()

    def clock() -> datetime:
        threads.add(threading.current_thread().name)
        return T0

    log = AuditLog(db_path, clock=clock)
    await log.open()
    try:
        for _ in range(3):
            await log.record_event(
                correlation_id="c",
                kind="system",
                tool=None,
                surface="internal",
                arguments=None,
                outcome="ok",
            )
    finally:
        await log.close()
    assert len(threads) == 1
    (name,) = threads
    assert name.startswith("audit-writer") and name != threading.main_thread().name


async def test_reopen_continues_the_chain(db_path: Path) -> None:
    for round_ in range(2):
        log = AuditLog(db_path, clock=make_clock())
        await log.open()
        await log.open()  # idempotent
        await populate(log, key=f"key-{round_}")
        await log.close()
        result = log.verify()
        assert result.ok and result.rows == sum(POPULATED.values()) * (round_ + 1)


async def test_not_open_raises_audit_unavailable(db_path: Path) -> None:
    log = AuditLog(db_path)
    assert not log.healthy
    with pytest.raises(AuditUnavailableError, match="not open"):
        await log.record_event(
            correlation_id="c",
            kind="system",
            tool=None,
            surface="internal",
            arguments=None,
            outcome="ok",
        )
    with pytest.raises(AuditUnavailableError):
        await log.recent()


async def test_healthy_and_check_writable(audit: AuditLog) -> None:
    assert audit.healthy
    assert await audit.check_writable()
    assert audit.healthy and audit.last_error is None
    await audit.close()
    assert not audit.healthy
    assert not await audit.check_writable()


async def test_duration_is_stored_as_real(audit: AuditLog) -> None:
    await audit.record_event(
        correlation_id="c",
        kind="tool_call",
        tool="t",
        surface="cli",
        arguments={},
        outcome="ok",
        duration_ms=3,
    )
    row = _rows(audit.path, "events")[0]
    assert row["duration_ms"] == 3.0 and isinstance(row["duration_ms"], float)
    assert row["arguments"] == "{}"
    assert audit.verify().ok


async def test_async_context_manager_opens_and_closes(db_path: Path) -> None:
    async with AuditLog(db_path, clock=make_clock()) as log:
        assert log.healthy
        await log.record_event(
            correlation_id="c",
            kind="system",
            tool=None,
            surface="internal",
            arguments=None,
            outcome="ok",
        )
    assert not log.healthy
    assert log.verify().rows == 1


class Side(enum.Enum):
    BUY = "BUY"


async def test_non_str_values_in_text_columns_still_verify(audit: AuditLog) -> None:
    await audit.record_order_event(
        correlation_id="c",
        event="intent",
        idempotency_key="k",
        side=Side.BUY,  # type: ignore[arg-type]
        account=1234,  # type: ignore[arg-type]
    )
    row = _rows(audit.path, "order_events")[0]
    assert (row["side"], row["account"]) == ("BUY", "1234")
    assert audit.verify().ok
    with pytest.raises(ValueError, match="integer range"):
        await audit.record_order_event(
            correlation_id="c", event="status", idempotency_key="k", order_id=2**64
        )
    with pytest.raises(TypeError, match="order_id"):
        await audit.record_order_event(
            correlation_id="c",
            event="status",
            idempotency_key="k",
            order_id="7",  # type: ignore[arg-type]
        )


async def test_a_key_binds_one_intent_across_writers(db_path: Path) -> None:
    from ibkr_mcp.errors import IdempotencyConflictError

    first, second = AuditLog(db_path), AuditLog(db_path)
    await first.open()
    await second.open()
    try:
        await first.record_order_event(correlation_id="a", event="intent", idempotency_key="k-1")
        with pytest.raises(IdempotencyConflictError) as info:
            await second.record_order_event(
                correlation_id="b", event="intent", idempotency_key="k-1"
            )
        assert info.value.details["already_bound"] is True
        # Other events for the key, and intents for other keys, still append.
        await second.record_order_event(correlation_id="b", event="sent", idempotency_key="k-1")
        await second.record_order_event(correlation_id="b", event="intent", idempotency_key="k-2")
    finally:
        await first.close()
        await second.close()
    assert first.verify().ok
