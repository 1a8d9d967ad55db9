"""Offline audit operations on a database file: tail, export (CSV/JSONL) and online backup."""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, TextIO

import orjson

from ibkr_mcp.audit._schema import EXPORTABLE, TABLES
from ibkr_mcp.audit._store import chain_rows, open_readonly, row_dict, unavailable
from ibkr_mcp.errors import AuditUnavailableError


def tail(path: Path, n: int = 20) -> list[dict[str, Any]]:
    """The last ``n`` rows across all tables, oldest first, each with ``table`` (as stored).

    Raises:
        AuditUnavailableError: If the database cannot be read.
    """
    path = Path(path)
    conn = open_readonly(path)
    try:
        conn.execute("BEGIN")  # one snapshot across the three tables
        newest: list[dict[str, Any]] = []
        for table, row in chain_rows(conn, descending=True):
            if len(newest) >= max(0, n):
                break
            newest.append(row_dict(row, table=table))
        newest.reverse()
        return newest
    except sqlite3.Error as exc:
        raise unavailable(path, exc, "read") from exc
    finally:
        conn.close()


def _rows(conn: sqlite3.Connection, table: str | None) -> Iterator[dict[str, Any]]:
    if table is None:
        for name, row in chain_rows(conn):
            yield row_dict(row, table=name)
    elif table in TABLES or table == "audit":
        for row in conn.execute(f"SELECT * FROM {table} ORDER BY seq"):
            yield row_dict(row)
    else:  # the orders view has no seq
        for row in conn.execute(f"SELECT * FROM {table} ORDER BY created, timestamp"):
            yield row_dict(row)


def _columns(conn: sqlite3.Connection, table: str | None) -> list[str]:
    if table is None:
        names = ["table"]
        for cols in TABLES.values():
            names.extend(c for c in cols if c not in names and not c.endswith("_hash"))
        return [*names, "prev_hash", "row_hash"]
    cursor = conn.execute(f"SELECT * FROM {table} LIMIT 0")
    return [d[0] for d in cursor.description]


def export(
    path: Path, fmt: Literal["csv", "jsonl"], out: TextIO, *, table: str | None = None
) -> int:
    """Write the audit rows to ``out`` as CSV or JSON Lines; returns the number of rows.

    Without ``table`` every chained row is written in global ``seq`` order with a ``table``
    column (CSV: the union of all columns, empty when a table lacks one). JSONL keeps stored
    values exactly (JSON columns stay JSON text), so exported rows can be re-hashed.

    Args:
        path: The audit database.
        fmt: ``csv`` or ``jsonl``.
        out: A text stream to write to.
        table: One of ``events``, ``order_events``, ``fills``, ``orders``, ``audit``.

    Raises:
        ValueError: For an unknown format or table.
        AuditUnavailableError: If the database cannot be read.
    """
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"fmt must be 'csv' or 'jsonl', got {fmt!r}")
    if table is not None and table not in EXPORTABLE:
        raise ValueError(f"table must be one of {list(EXPORTABLE)}, got {table!r}")
    path = Path(path)
    conn = open_readonly(path)
    count = 0
    try:
        # One read transaction: a consistent snapshot even while the server appends.
        conn.execute("BEGIN")
        if fmt == "jsonl":
            for row in _rows(conn, table):
                out.write(orjson.dumps(row).decode())
                out.write("\n")
                count += 1
        else:
            writer = csv.DictWriter(out, fieldnames=_columns(conn, table), lineterminator="\n")
            writer.writeheader()
            for row in _rows(conn, table):
                writer.writerow(row)
                count += 1
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise unavailable(path, exc, "export") from exc
    finally:
        conn.close()
    return count


def backup(path: Path, dest: Path) -> None:
    """Copy the audit database to ``dest`` with SQLite's online backup API.

    Safe while the server is appending: the copy is a consistent snapshot (WAL included).

    Raises:
        FileExistsError: If ``dest`` exists (backups are never overwritten).
        AuditUnavailableError: If the source cannot be read or the copy cannot be written.
    """
    path, dest = Path(path), Path(dest)
    if dest.exists():
        raise FileExistsError(f"backup destination {dest} already exists; choose a new name")
    src = open_readonly(path)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        target = sqlite3.connect(str(dest))
        try:
            src.backup(target)
        finally:
            target.close()
    except (sqlite3.Error, OSError) as exc:
        dest.unlink(missing_ok=True)
        raise AuditUnavailableError(
            f"Cannot back up the audit database {path} to {dest}: {exc}",
            remedy="Check that the destination directory is writable and has free space.",
            details={"path": str(path), "dest": str(dest), "error": str(exc)},
        ) from exc
    finally:
        src.close()
