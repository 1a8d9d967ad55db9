"""The audit fails loudly: unopenable paths, foreign files, locks, newer schemas."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from audit_helpers import make_clock

from ibkr_mcp.audit import AuditLog, verify_file
from ibkr_mcp.errors import AuditUnavailableError


async def _event(log: AuditLog) -> int:
    return await log.record_event(
        correlation_id="c",
        kind="system",
        tool=None,
        surface="internal",
        arguments=None,
        outcome="ok",
    )


async def test_parent_is_a_file_raises_audit_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a directory")
    log = AuditLog(blocker / "audit.db")
    with pytest.raises(AuditUnavailableError) as info:
        await log.open()
    err = info.value
    assert err.code == "AUDIT_UNAVAILABLE"
    assert str(blocker / "audit.db") in err.message
    assert err.remedy and "writable" in err.remedy
    assert not log.healthy
    with pytest.raises(AuditUnavailableError, match="not open"):
        await _event(log)


async def test_foreign_file_raises_audit_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(AuditUnavailableError) as info:
        await AuditLog(path).open()
    assert "not a database" in info.value.message
    assert info.value.remedy and "move it aside" in info.value.remedy


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(AuditUnavailableError, match="newer"):
        await AuditLog(path).open()


async def test_lock_held_beyond_timeout_raises_then_recovers(db_path: Path) -> None:
    log = AuditLog(db_path, clock=make_clock(), busy_timeout=0.2)
    await log.open()
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        assert await _event(log) == 1
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(AuditUnavailableError) as info:
            await _event(log)
        assert "locked" in info.value.message
        assert info.value.remedy and "lock" in info.value.remedy
        assert not log.healthy and log.last_error
        assert not await log.check_writable()
        holder.execute("ROLLBACK")
        assert await log.check_writable()
        assert log.healthy
        assert await _event(log) == 2
    finally:
        holder.close()
        await log.close()
    assert verify_file(db_path).ok


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
async def test_unwritable_directory_raises_audit_unavailable(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(AuditUnavailableError) as info:
            await AuditLog(locked / "audit.db").open()
        assert info.value.remedy and "writable" in info.value.remedy
    finally:
        locked.chmod(0o755)


def test_verify_missing_or_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(AuditUnavailableError, match="does not exist"):
        verify_file(tmp_path / "missing.db")
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(AuditUnavailableError, match="not an audit database"):
        verify_file(other)
    assert not (tmp_path / "missing.db").exists()
