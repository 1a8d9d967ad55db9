"""Audit database schema: three append-only tables, their triggers, and the runbook's views."""

from __future__ import annotations

import sqlite3
from typing import Final

#: Bumped (with a migration) whenever the schema changes; stored in ``PRAGMA user_version``.
SCHEMA_VERSION: Final[int] = 1

#: Chain bookkeeping columns every table carries. ``seq`` is the position in the ONE global
#: chain that spans all tables; ``id`` is the per-table row id.
_CHAIN_HEAD: Final[dict[str, type]] = {"id": int, "seq": int, "ts": str}
_CHAIN_TAIL: Final[dict[str, type]] = {"prev_hash": str, "row_hash": str}

_EVENTS: Final[dict[str, type]] = {
    "correlation_id": str,
    "kind": str,  # tool_call | gate | system
    "tool": str,
    "surface": str,  # mcp | http | cli | internal
    "arguments": str,  # JSON, secrets masked
    "outcome": str,  # ok | error:<CODE> | allowed | refused | ...
    "duration_ms": float,
    "safety": str,  # JSON snapshot of the effective safety settings
    "detail": str,  # JSON
}

_ORDER_EVENTS: Final[dict[str, type]] = {
    "correlation_id": str,
    "event": str,  # intent | sent | dry_run | refused | rejected | status | ...
    "token_id": str,
    "idempotency_key": str,
    "fingerprint": str,
    "order_id": int,
    "perm_id": int,
    "account": str,
    "symbol": str,
    "con_id": int,
    "side": str,
    "quantity": str,  # exact decimal text
    "order_type": str,
    "limit_price": str,  # exact decimal text
    "tif": str,
    "status": str,
    "detail": str,  # JSON
}

_FILLS: Final[dict[str, type]] = {
    "correlation_id": str,
    "kind": str,  # execution | commission
    "exec_id": str,
    "order_id": int,
    "perm_id": int,
    "account": str,
    "symbol": str,
    "side": str,
    "quantity": str,  # exact decimal text
    "price": str,
    "commission": str,
    "commission_currency": str,
    "realized_pnl": str,
    "exec_time": str,  # ISO-8601 UTC
    "order_ref": str,
}

#: Column definitions per table, in column order.
TABLES: Final[dict[str, dict[str, type]]] = {
    name: {**_CHAIN_HEAD, **body, **_CHAIN_TAIL}
    for name, body in (("events", _EVENTS), ("order_events", _ORDER_EVENTS), ("fills", _FILLS))
}

_NOT_NULL: Final[dict[str, tuple[str, ...]]] = {
    "events": ("kind", "surface", "outcome"),
    "order_events": ("event",),
    "fills": ("kind", "exec_id"),
}

_INDEXES: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "events": (("correlation_id",), ("ts",)),
    "order_events": (
        ("idempotency_key", "seq"),
        ("order_id", "seq"),
        ("correlation_id",),
        # Flow counters and approvals read by event and time (issue 14).
        ("event", "ts"),
        # Rejections by status and time: a scan of the whole table per order before (issue 15).
        ("status", "ts"),
    ),
    "fills": (("exec_id",), ("order_id",), ("correlation_id",)),
}

#: The tables and views ``export`` accepts.
EXPORTABLE: Final[tuple[str, ...]] = ("events", "order_events", "fills", "orders", "audit")

# One row per logical order: rows are grouped by idempotency key (status rows that only carry an
# order id inherit the key of an earlier row with that id), showing the first row's order terms
# and the latest status. Columns are named like the runbook's queries expect.
ORDERS_VIEW: Final[str] = """
WITH keyed AS (
  SELECT oe.id, oe.seq, oe.order_id, oe.perm_id, oe.status,
         COALESCE(
           NULLIF(oe.idempotency_key, ''),
           (SELECT k.idempotency_key FROM order_events AS k
             WHERE k.order_id = oe.order_id AND NULLIF(k.idempotency_key, '') IS NOT NULL
             ORDER BY k.seq DESC LIMIT 1),
           'order:' || oe.order_id,
           'row:' || oe.id
         ) AS order_key
  FROM order_events AS oe
), grouped AS (
  SELECT order_key, MIN(seq) AS first_seq, MAX(seq) AS last_seq,
         MAX(CASE WHEN status IS NOT NULL THEN seq END) AS status_seq,
         MAX(order_id) AS order_id, MAX(perm_id) AS perm_id, COUNT(*) AS events
  FROM keyed GROUP BY order_key
)
SELECT g.order_id AS orderId,
       g.perm_id AS permId,
       COALESCE(f.symbol, l.symbol) AS symbol,
       COALESCE(f.side, l.side) AS action,
       COALESCE(f.quantity, l.quantity) AS quantity,
       COALESCE(f.order_type, l.order_type) AS orderType,
       COALESCE(f.limit_price, l.limit_price) AS limitPrice,
       COALESCE(f.tif, l.tif) AS tif,
       COALESCE(s.status, l.event) AS status,
       l.ts AS timestamp,
       f.ts AS created,
       l.event AS lastEvent,
       g.events AS events,
       COALESCE(f.account, l.account) AS account,
       COALESCE(f.con_id, l.con_id) AS conId,
       f.idempotency_key AS idempotencyKey,
       f.correlation_id AS correlation_id
FROM grouped AS g
JOIN order_events AS f ON f.seq = g.first_seq
JOIN order_events AS l ON l.seq = g.last_seq
LEFT JOIN order_events AS s ON s.seq = g.status_seq
""".strip()

# Every row of every table, with the runbook's column names; ``action`` is the tool (tool calls),
# ``gate:<tool>``/``system:<tool>``, ``order:<event>`` or ``fill:<kind>``.
AUDIT_VIEW: Final[str] = """
SELECT 'events' AS source, id, seq, ts AS timestamp, correlation_id,
       CASE WHEN json_valid(arguments) THEN COALESCE(
              json_extract(arguments, '$.order_id'), json_extract(arguments, '$.orderId'))
       END AS orderId,
       CASE WHEN kind = 'tool_call' THEN tool ELSE kind || COALESCE(':' || tool, '') END AS action,
       outcome, surface, NULL AS symbol, detail
FROM events
UNION ALL
SELECT 'order_events', id, seq, ts, correlation_id, order_id, 'order:' || event,
       COALESCE(status, event), NULL, symbol, detail
FROM order_events
UNION ALL
SELECT 'fills', id, seq, ts, correlation_id, order_id, 'fill:' || kind,
       exec_id, NULL, symbol, NULL
FROM fills
""".strip()


def _trigger_sql(table: str) -> tuple[str, ...]:
    return tuple(
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
        "BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END"
        for op in ("UPDATE", "DELETE")
    )


class SchemaTooNewError(Exception):
    """The database was written by a newer version of this program."""


_SQL_TYPES: Final[dict[type, str]] = {int: "INTEGER", str: "TEXT", float: "REAL"}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _create_table_sql(name: str, columns: dict[str, type], not_null: set[str]) -> str:
    parts = []
    for column, kind in columns.items():
        if column == "id":
            parts.append(f"   {_quote(column)} INTEGER PRIMARY KEY")
        else:
            null = " NOT NULL" if column in not_null else ""
            parts.append(f"   {_quote(column)} {_SQL_TYPES[kind]}{null}")
    body = ",\n".join(parts)
    return f"CREATE TABLE IF NOT EXISTS {_quote(name)} (\n{body}\n)"


def _create_index_sql(table: str, columns: tuple[str, ...], *, unique: bool = False) -> str:
    index = _quote(f"{table}_{'_'.join(columns)}")
    cols = ", ".join(_quote(c) for c in columns)
    kind = "UNIQUE INDEX" if unique else "INDEX"
    return f"CREATE {kind} IF NOT EXISTS {index}\n    ON {_quote(table)} ({cols})"


def _replace_view(conn: sqlite3.Connection, name: str, select: str) -> None:
    create = f"CREATE VIEW {_quote(name)} AS {select}"
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?", (name,)
    ).fetchone()
    if row is not None:
        if row[0] == create:
            return
        conn.execute(f"DROP VIEW {_quote(name)}")
    conn.execute(create)


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create tables, indexes, triggers and views if missing (idempotent, one transaction).

    ``conn`` must be in autocommit mode (``isolation_level=None``) and already in WAL mode.

    Raises:
        SchemaTooNewError: If ``PRAGMA user_version`` is newer than :data:`SCHEMA_VERSION`.
        sqlite3.Error: If the database cannot be written.
    """
    # IMMEDIATE: two processes starting at once must not both decide to create the schema.
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"schema version {version} is newer than supported ({SCHEMA_VERSION})"
            )
        # Plain SQL, every statement idempotent: a start-up must not pay for a schema library
        # (sqlite-utils took ~70 ms to import on every open).
        for name, columns in TABLES.items():
            not_null = {"seq", "ts", "prev_hash", "row_hash", *_NOT_NULL[name]}
            conn.execute(_create_table_sql(name, columns, not_null))
            conn.execute(_create_index_sql(name, ("seq",), unique=True))
            for cols in _INDEXES[name]:
                conn.execute(_create_index_sql(name, cols))
            for statement in _trigger_sql(name):
                conn.execute(statement)
        # Views hold no data: replaced whenever their definition changed (no-op otherwise).
        _replace_view(conn, "orders", ORDERS_VIEW)
        _replace_view(conn, "audit", AUDIT_VIEW)
        if version < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
