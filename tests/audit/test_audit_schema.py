"""The audit schema is plain, idempotent SQL: pinned as created, unchanged by a second open."""

from __future__ import annotations

import sqlite3
from typing import Any

from ibkr_mcp.audit._schema import ORDERS_VIEW, SCHEMA_VERSION, ensure_schema
from ibkr_mcp.audit._store import SECOND_DECISION_SQL, SECOND_INTENT_SQL


def _master(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    return list(conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name"))


def test_schema_as_created_is_pinned(snapshot: Any) -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    ensure_schema(conn)
    assert _master(conn) == snapshot
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_second_open_changes_nothing_and_restores_what_was_dropped() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    ensure_schema(conn)
    created = _master(conn)
    ensure_schema(conn)
    assert _master(conn) == created
    # A dropped append-only trigger comes back; a view with an old definition is replaced.
    conn.execute("DROP TRIGGER order_events_no_delete")
    conn.execute('DROP VIEW "orders"')
    conn.execute('CREATE VIEW "orders" AS SELECT 1 AS stale')
    ensure_schema(conn)
    assert _master(conn) == created
    view = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'orders'").fetchone()[0]
    assert view == f'CREATE VIEW "orders" AS {ORDERS_VIEW}'


def test_key_checks_under_the_write_lock_use_the_key_index() -> None:
    # The (event, ts) index would make them scan every intent ever recorded (issue 15).
    conn = sqlite3.connect(":memory:", isolation_level=None)
    ensure_schema(conn)
    for sql, params in (
        (SECOND_INTENT_SQL, ("k",)),
        (SECOND_DECISION_SQL, ("k", "approved", "denied", "expired")),
    ):
        plan = " ".join(str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        assert "order_events_idempotency_key_seq" in plan, plan
