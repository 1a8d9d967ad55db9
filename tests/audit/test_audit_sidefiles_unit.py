"""The side-file watch never adopts a -wal/-shm replaced after a use's check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ibkr_mcp.audit._sidefiles import SideFileError, SideFiles


def _replace(path: Path) -> None:
    spare = path.with_name("spare")
    spare.write_bytes(b"")
    os.replace(spare, path)


def test_a_file_replaced_during_a_use_is_not_adopted(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    wal = Path(f"{db}-wal")
    wal.write_bytes(b"x" * 64)
    watch = SideFiles(db)
    watch.remember()
    watch.check()  # a use starts: the file is the one remembered
    _replace(wal)  # ... and is replaced before the use records what it saw
    watch.remember()
    assert watch.poisoned
    with pytest.raises(SideFileError, match="replaced"):
        watch.check()


def test_a_file_first_seen_after_a_use_is_remembered(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    watch = SideFiles(db)
    watch.remember()  # no side files yet
    Path(f"{db}-wal").write_bytes(b"")
    watch.remember()
    watch.check()
    _replace(Path(f"{db}-wal"))
    with pytest.raises(SideFileError, match="replaced"):
        watch.check()
