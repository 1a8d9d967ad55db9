"""The audit's fills table: one row per execution id and per commission report."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from order_helpers import MKT10, call, preview_and_place


def _fill_rows(db: Any) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT exec_id, kind FROM fills ORDER BY id")]


async def test_repeated_get_executions_add_no_rows(enabled: Any, sim: Any) -> None:
    await preview_and_place(enabled, MKT10, "fills-once-1")
    db = enabled.settings.audit_db_path
    for _ in range(100):  # the live execution and commission rows arrive behind the answer
        if {k for _, k in _fill_rows(db)} == {"execution", "commission"}:
            break
        await asyncio.sleep(0.02)
    for _ in range(3):
        fills = await call(enabled, "get_executions", {})
        assert len(fills.fills) == 1
    from ibkr_mcp.tools.registry import drain_audit

    await drain_audit()
    await asyncio.sleep(0.1)  # let the listeners of the repeated reports run
    rows = _fill_rows(db)
    assert sorted(k for _, k in rows) == ["commission", "execution"], rows
    assert len({e for e, _ in rows}) == 1


async def test_record_fill_twice_returns_the_first_row(tmp_path: Any) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from ibkr_mcp.audit import AuditLog

    async with AuditLog(tmp_path / "audit.db") as log:
        fill = {"correlation_id": None, "exec_id": "e.1", "order_id": 1, "perm_id": 2,
                "account": "DU1", "symbol": "AAPL", "side": "BOT", "quantity": Decimal(1),
                "price": Decimal("1.5"), "exec_time": datetime(2026, 1, 1, tzinfo=UTC)}  # fmt: skip
        first = await log.record_fill(kind="execution", **fill)
        again = await log.record_fill(kind="execution", **fill)
        report = await log.record_fill(kind="commission", commission=Decimal(1), **fill)
        assert again == first and report != first
        assert await log.record_fill(kind="commission", commission=Decimal(1), **fill) == report
        assert log.verify().ok
