"""The runbook's queries against the ``orders`` and ``audit`` views."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from audit_helpers import populate

from ibkr_mcp.audit import AuditLog


@pytest.fixture
async def history(audit: AuditLog) -> Path:
    await populate(audit)
    return audit.path


def _query(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, object]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def test_orders_view_answers_the_runbook_query(history: Path) -> None:
    rows = _query(history, "SELECT * FROM orders ORDER BY timestamp DESC LIMIT 10")
    assert [(r["orderId"], r["symbol"], r["action"], r["status"]) for r in rows] == [
        (None, "MSFT", "SELL", "dry_run"),
        (7, "AAPL", "BUY", "Filled"),
    ]
    placed = rows[1]
    assert placed["quantity"] == "10" and placed["limitPrice"] == "190.10"
    assert placed["events"] == 4  # intent, sent and two status rows, grouped by key / order id
    assert placed["idempotencyKey"] == "key-1" and placed["correlation_id"] == "c-order"
    assert str(placed["created"]) < str(placed["timestamp"])
    assert rows[0]["quantity"] == "0.1"


def test_audit_view_answers_the_runbook_query(history: Path) -> None:
    rows = _query(
        history,
        "SELECT correlation_id, orderId, action, timestamp FROM audit "
        "WHERE correlation_id = ? ORDER BY timestamp",
        ("c-order",),
    )
    assert [(r["orderId"], r["action"]) for r in rows] == [
        (None, "gate:place_order"),
        (None, "order:intent"),
        (7, "order:sent"),
        (7, "fill:execution"),
        (7, "fill:commission"),
    ]
    quote = _query(history, "SELECT action, outcome FROM audit WHERE correlation_id = 'c-quote'")
    assert quote == [{"action": "get_quote", "outcome": "ok"}]


async def test_audit_view_takes_order_id_from_tool_arguments(audit: AuditLog) -> None:
    await audit.record_event(
        correlation_id="c-cancel",
        kind="tool_call",
        tool="cancel_order",
        surface="cli",
        arguments={"order_id": 7},
        outcome="ok",
    )
    rows = _query(audit.path, "SELECT orderId, action FROM audit WHERE correlation_id='c-cancel'")
    assert rows == [{"orderId": 7, "action": "cancel_order"}]


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="sqlite3 command line tool missing")
def test_runbook_command_line_works(history: Path) -> None:
    out = subprocess.run(
        ["sqlite3", str(history), "SELECT * FROM orders ORDER BY timestamp DESC LIMIT 10"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    assert "MSFT|SELL" in out and "7||AAPL|BUY|10|LMT|190.10|DAY|Filled" in out


async def test_preview_and_keyless_status_rows_group_into_one_order(audit: AuditLog) -> None:
    await audit.record_order_event(
        correlation_id="p",
        event="preview",
        idempotency_key=None,
        symbol="IBM",
        side="BUY",
        quantity=Decimal("1"),
        token_id="tok_1",
    )
    await audit.record_order_event(
        correlation_id="c",
        event="intent",
        idempotency_key="k9",
        symbol="IBM",
        side="BUY",
        quantity=Decimal("1"),
        detail={"request_fingerprint": "abc"},
    )
    await audit.record_order_event(
        correlation_id="c", event="sent", idempotency_key="k9", order_id=11
    )
    await audit.record_order_event(  # broker status rows may carry an empty order_ref
        correlation_id=None, event="status", idempotency_key="", order_id=11, status="Submitted"
    )
    rows = _query(audit.path, "SELECT orderId, lastEvent, status, events FROM orders")
    assert {"orderId": 11, "lastEvent": "status", "status": "Submitted", "events": 3} in rows
    assert {"orderId": None, "lastEvent": "preview", "status": "preview", "events": 1} in rows
    assert len(rows) == 2
    keyed = await audit.order_events_for_key("k9")
    assert orjson.loads(keyed[0]["detail"]) == {"request_fingerprint": "abc"}


async def test_views_are_replaced_when_their_definition_changes(db_path: Path) -> None:
    async with AuditLog(db_path):
        pass
    conn = sqlite3.connect(db_path)
    conn.execute("DROP VIEW orders")
    conn.execute("CREATE VIEW orders AS SELECT 1 AS stale")
    conn.commit()
    conn.close()
    async with AuditLog(db_path):
        pass
    columns = _columns(db_path)
    assert "stale" not in columns and columns[:4] == ["orderId", "permId", "symbol", "action"]


def _columns(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [d[0] for d in conn.execute("SELECT * FROM orders LIMIT 0").description]
    finally:
        conn.close()
