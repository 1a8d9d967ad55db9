"""Append-only triggers and hash-chain verification against edits, deletions and truncation."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from audit_helpers import POPULATED, populate

from ibkr_mcp.audit import AuditLog, backup, row_hash, verify_file

TABLES = tuple(POPULATED)


@pytest.fixture
async def history(audit: AuditLog) -> Path:
    await populate(audit)
    await audit.close()
    return audit.path


def tampered_copy(src: Path, dest: Path) -> sqlite3.Connection:
    """A copy of ``src`` with the append-only triggers dropped, open for editing."""
    backup(src, dest)
    conn = sqlite3.connect(dest, isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    return conn


@pytest.mark.parametrize("table", TABLES)
def test_update_and_delete_are_rejected_by_the_database(history: Path, table: str) -> None:
    conn = sqlite3.connect(history, isolation_level=None)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="audit is append-only"):
            conn.execute(f"UPDATE {table} SET correlation_id = 'x' WHERE id = 1")
        with pytest.raises(sqlite3.IntegrityError, match="audit is append-only"):
            conn.execute(f"DELETE FROM {table} WHERE id = 1")
        with pytest.raises(sqlite3.IntegrityError, match="audit is append-only"):
            conn.execute(f"DELETE FROM {table}")
        assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == POPULATED[table]
    finally:
        conn.close()
    assert verify_file(history).ok


@pytest.mark.parametrize(
    ("table", "row_id", "column", "value"),
    [
        ("events", 1, "outcome", "error:GATE_REFUSED"),
        ("events", 2, "arguments", '{"symbol":"TSLA"}'),
        ("events", 1, "duration_ms", 1.0),
        ("events", 2, "ts", "2020-01-01T00:00:00.000000+00:00"),
        ("order_events", 1, "quantity", "100"),
        ("order_events", 1, "limit_price", "190.1"),
        ("order_events", 3, "status", "Cancelled"),
        ("order_events", 2, "order_id", 8),
        ("fills", 1, "price", "1.00"),
        ("fills", 2, "commission", None),
        ("fills", 1, "id", 42),
        ("order_events", 4, "prev_hash", "0" * 64),
        ("events", 1, "row_hash", "f" * 64),
    ],
)
def test_edited_row_in_a_copy_is_named_by_verify(
    history: Path, tmp_path: Path, table: str, row_id: int, column: str, value: object
) -> None:
    conn = tampered_copy(history, tmp_path / "copy.db")
    changed = conn.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (value, row_id))
    assert changed.rowcount == 1
    conn.close()
    result = verify_file(tmp_path / "copy.db")
    assert not result.ok
    assert result.first_bad is not None
    assert result.first_bad.table == table
    assert result.first_bad.id == (42 if column == "id" else row_id)
    assert "modified" in result.first_bad.reason
    assert result.rows == sum(POPULATED.values())


def test_edited_and_rehashed_row_is_caught_at_the_next_link(history: Path, tmp_path: Path) -> None:
    conn = tampered_copy(history, tmp_path / "copy.db")
    conn.row_factory = sqlite3.Row
    row = dict(conn.execute("SELECT * FROM order_events WHERE id = 1").fetchone())
    row["quantity"] = "1000"
    conn.execute(
        "UPDATE order_events SET quantity = ?, row_hash = ? WHERE id = 1",
        (row["quantity"], row_hash(row)),
    )
    conn.close()
    result = verify_file(tmp_path / "copy.db")
    assert result.first_bad is not None
    assert (result.first_bad.table, result.first_bad.id) == ("order_events", 2)
    assert "prev_hash" in result.first_bad.reason
    assert "order_events id 1" in result.first_bad.reason


def test_deleted_middle_row_is_detected(history: Path, tmp_path: Path) -> None:
    conn = tampered_copy(history, tmp_path / "copy.db")
    conn.execute("DELETE FROM order_events WHERE id = 2")  # seq 4
    conn.close()
    result = verify_file(tmp_path / "copy.db")
    assert not result.ok and result.first_bad is not None
    assert (result.first_bad.table, result.first_bad.id, result.first_bad.seq) == (
        "order_events",
        3,
        5,
    )
    assert "missing" in result.first_bad.reason
    assert result.rows == sum(POPULATED.values()) - 1


def test_deleted_row_with_renumbered_sequence_still_fails(history: Path, tmp_path: Path) -> None:
    conn = tampered_copy(history, tmp_path / "copy.db")
    conn.execute("DELETE FROM events WHERE id = 1")  # seq 1; then shift every seq down by one
    for table in TABLES:
        conn.execute(f"UPDATE {table} SET seq = seq - 1")
    conn.close()
    result = verify_file(tmp_path / "copy.db")
    assert result.first_bad is not None and result.first_bad.table == "events"
    assert result.first_bad.id == 2


def test_truncation_keeps_a_valid_chain_but_changes_the_head(history: Path, tmp_path: Path) -> None:
    """Deleting the newest rows cannot be seen from inside; the head hash reveals it."""
    original = verify_file(history)
    conn = tampered_copy(history, tmp_path / "copy.db")
    conn.execute("DELETE FROM order_events WHERE seq = (SELECT MAX(seq) FROM order_events)")
    conn.close()
    truncated = verify_file(tmp_path / "copy.db")
    assert truncated.first_bad is None and truncated.rows == original.rows - 1
    assert truncated.head_hash is not None and truncated.head_hash != original.head_hash


def test_missing_triggers_fail_verification(history: Path, tmp_path: Path) -> None:
    assert verify_file(history).warnings == ()
    tampered_copy(history, tmp_path / "copy.db").close()
    result = verify_file(tmp_path / "copy.db")
    assert not result.ok and result.first_bad is None  # the rows are intact, the guard is not
    assert len(result.warnings) == 2 * len(TABLES)
    assert any("events_no_update" in w for w in result.warnings)
