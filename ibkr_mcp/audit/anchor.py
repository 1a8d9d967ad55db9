"""Anchors: the head of the chain written down elsewhere, so truncation after it is detected."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from ibkr_mcp.audit._store import CHAIN_TABLES, open_readonly, unavailable


def _head(conn: sqlite3.Connection) -> dict[str, Any] | None:
    best: sqlite3.Row | None = None
    for table in CHAIN_TABLES:
        row = conn.execute(
            f"SELECT seq, row_hash, ts FROM {table} ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is not None and (best is None or row["seq"] > best["seq"]):
            best = row
    if best is None:
        return None
    return {"seq": best["seq"], "hash": best["row_hash"], "time": best["ts"]}


def head_anchor(path: Path) -> dict[str, Any] | None:
    """The newest row as ``{"seq", "hash", "time"}`` (``None`` for an empty trail).

    Raises:
        AuditUnavailableError: If the database cannot be read.
    """
    conn = open_readonly(Path(path))
    try:
        return _head(conn)
    except sqlite3.Error as exc:
        raise unavailable(Path(path), exc, "read") from exc
    finally:
        conn.close()


def anchor_line(anchor: dict[str, Any]) -> str:
    """One JSON line for an anchor file."""
    return orjson.dumps(anchor, option=orjson.OPT_SORT_KEYS).decode()


def check_anchors(path: Path, anchors: Path) -> list[str]:
    """Problems with the trail against every anchor line of ``anchors`` (empty: all extended).

    Each anchored row must still exist with the same hash; a verified chain that holds it then
    extends everything that was anchored.

    Raises:
        AuditUnavailableError: If the database cannot be read.
        OSError: If the anchor file cannot be read.
    """
    problems: list[str] = []
    conn = open_readonly(Path(path))
    try:
        for number, line in enumerate(anchors.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                anchor = orjson.loads(line)
                seq, want = int(anchor["seq"]), str(anchor["hash"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                problems.append(f"anchor line {number} is not a valid anchor")
                continue
            found = None
            for table in CHAIN_TABLES:
                row = conn.execute(f"SELECT row_hash FROM {table} WHERE seq = ?", (seq,)).fetchone()
                if row is not None:
                    found = str(row[0])
                    break
            if found is None:
                problems.append(f"anchor line {number}: row seq {seq} is gone (truncated)")
            elif found != want:
                problems.append(f"anchor line {number}: row seq {seq} has a different hash")
    except sqlite3.Error as exc:
        raise unavailable(Path(path), exc, "read") from exc
    finally:
        conn.close()
    return problems
