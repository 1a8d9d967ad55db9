"""Hash-chain verification: recompute every row hash and check the links, in global order."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ibkr_mcp.audit._codec import GENESIS_HASH, row_hash
from ibkr_mcp.audit._store import CHAIN_TABLES, chain_rows, open_readonly, row_dict, unavailable
from ibkr_mcp.audit.keys import KEYED_PREFIX


@dataclass(frozen=True, slots=True)
class BadRow:
    """The first row that breaks the chain.

    Attributes:
        table: Table holding the row.
        id: The row's ``id`` in that table.
        reason: What is wrong, in words.
        seq: The row's position in the global chain.
    """

    table: str
    id: int | None
    reason: str
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of verifying an audit database.

    Attributes:
        ok: True when every row's hash and link are intact and every append-only trigger
            is in place.
        rows: Rows in the chain (all tables).
        first_bad: The first broken row, if any.
        head_hash: ``row_hash`` of the newest row; record it elsewhere to detect truncation.
        warnings: Problems that are not broken rows (a missing append-only trigger, which
            also makes ``ok`` false).
    """

    ok: bool
    rows: int
    first_bad: BadRow | None
    head_hash: str | None = None
    warnings: tuple[str, ...] = ()


def _trigger_warnings(conn: sqlite3.Connection) -> tuple[str, ...]:
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    return tuple(
        f"append-only trigger {t}_no_{op} is missing"
        for t in CHAIN_TABLES
        for op in ("update", "delete")
        if f"{t}_no_{op}" not in present
    )


def verify_connection(conn: sqlite3.Connection, key: bytes | None = None) -> VerifyResult:
    """Verify the chain through an open connection (read-only use).

    Every row is checked in ``seq`` order across all tables: ``seq`` must be 1, 2, 3, ... with
    no gap, ``prev_hash`` must equal the previous row's ``row_hash`` (the first row's is 64
    zeros), and ``row_hash`` must equal the SHA-256 of the row's canonical JSON, or for a
    keyed row (``k1:``) its HMAC-SHA256 under ``key``. Once a keyed row appears every later
    row must be keyed (a row re-hashed without the key is detected); a keyed row cannot be
    checked without the key, which fails verification.
    """
    keyed_seen = False
    unkeyed = 0
    expected_seq = 1
    prev_hash = GENESIS_HASH
    prev_label = "the genesis value"
    first_bad: BadRow | None = None
    rows = 0
    for table, raw in chain_rows(conn):
        rows += 1
        if first_bad is not None:
            continue
        row = row_dict(raw)
        seq, rid = row.get("seq"), row.get("id")
        reason: str | None = None
        stored = str(row.get("row_hash") or "")
        is_keyed = stored.startswith(KEYED_PREFIX)
        if is_keyed and key is None:
            reason = "row is keyed (HMAC) but no audit key was given (AUDIT_KEY_FILE)"
        elif not is_keyed and keyed_seen:
            reason = "row is not keyed although earlier rows are (re-hashed without the key?)"
        elif stored != row_hash(row, key if is_keyed else None):
            reason = "row_hash does not match the row's contents (row was modified)"
        elif seq != expected_seq:
            gap = isinstance(seq, int) and seq > expected_seq
            what = "row(s) missing (deleted?)" if gap else "sequence out of order"
            reason = f"seq {seq} where {expected_seq} was expected: {what}"
        elif row.get("prev_hash") != prev_hash:
            reason = (
                f"prev_hash does not match the row_hash of {prev_label} "
                "(that row was altered and re-hashed, or rows were removed)"
            )
        if reason is not None:
            first_bad = BadRow(table=table, id=rid, reason=reason, seq=seq)
            continue
        keyed_seen = keyed_seen or is_keyed
        unkeyed += 0 if is_keyed else 1
        expected_seq += 1
        prev_hash = str(row["row_hash"])
        prev_label = f"{table} id {rid} (seq {seq})"
    head = None if rows == 0 or first_bad is not None else prev_hash
    missing = _trigger_warnings(conn)
    notes: tuple[str, ...] = ()
    if key is not None and unkeyed and first_bad is None:
        notes = (f"{unkeyed} row(s) at the start of the chain predate the audit key",)
    return VerifyResult(
        # Without its triggers the trail is no longer append-only: that fails verification.
        ok=first_bad is None and not missing,
        rows=rows,
        first_bad=first_bad,
        head_hash=head,
        warnings=missing + notes,
    )


def verify_file(path: Path, key: bytes | None = None) -> VerifyResult:
    """Verify the audit database at ``path`` (opened read-only; safe while the server runs).

    Raises:
        AuditUnavailableError: If the file is missing or is not an audit database.
    """
    conn = open_readonly(Path(path))
    try:
        conn.execute("BEGIN")  # one snapshot for all three tables while the server appends
        return verify_connection(conn, key)
    except sqlite3.Error as exc:
        raise unavailable(Path(path), exc, "verify") from exc
    finally:
        conn.close()
