"""The audit schema is plain, idempotent SQL: pinned as created, unchanged by a second open."""

from __future__ import annotations

import sqlite3
from typing import Any

from ibkr_mcp.audit._schema import ORDERS_VIEW, SCHEMA_VERSION, ensure_schema


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
