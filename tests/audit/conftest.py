"""Fixtures for the audit trail tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from audit_helpers import make_clock

from ibkr_mcp.audit import AuditLog


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "audit.db"


@pytest.fixture
async def audit(db_path: Path) -> AsyncIterator[AuditLog]:
    log = AuditLog(db_path, clock=make_clock())
    await log.open()
    try:
        yield log
    finally:
        await log.close()
