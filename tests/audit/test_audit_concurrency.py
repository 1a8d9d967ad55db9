"""Two real processes (and two logs in one process) appending to one file keep one chain."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

from audit_helpers import make_clock

from ibkr_mcp.audit import AuditLog, verify_file

ROWS_PER_PROCESS = 200

WORKER = textwrap.dedent(
    """
    import asyncio, sys, time
    from decimal import Decimal
    from pathlib import Path
    from ibkr_mcp.audit import AuditLog

    async def main(path: Path, name: str, rows: int, go: Path) -> None:
        log = AuditLog(path, busy_timeout=30)
        await log.open()
        deadline = time.monotonic() + 30
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        for i in range(rows):
            if i % 4 == 3:
                await log.record_order_event(
                    correlation_id=name, event="intent", idempotency_key=f"{name}-{i}",
                    quantity=Decimal(i), detail={"i": i},
                )
            else:
                await log.record_event(
                    correlation_id=name, kind="tool_call", tool="hammer", surface="internal",
                    arguments={"i": i}, outcome="ok",
                )
        await log.close()

    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])))
    """
)


def _sequence_of(path: Path, name: str) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT seq, json_extract(arguments, '$.i') FROM events WHERE correlation_id = ? "
            "UNION ALL SELECT seq, json_extract(detail, '$.i') FROM order_events "
            "WHERE correlation_id = ? ORDER BY 1",
            (name, name),
        ).fetchall()
    finally:
        conn.close()
    return [int(i) for _, i in rows]


def test_two_processes_hammering_one_file_keep_one_valid_chain(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    go = tmp_path / "go"
    asyncio.run(_create(db))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(db), name, str(ROWS_PER_PROCESS), str(go)],
            stderr=subprocess.PIPE,
        )
        for name in ("p0", "p1")
    ]
    time.sleep(0.3)  # both processes importing/opening; the go file releases them together
    go.touch()
    for proc in procs:
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr.decode()
    result = verify_file(db)
    assert result.ok, result.first_bad
    assert result.rows == 2 * ROWS_PER_PROCESS
    for name in ("p0", "p1"):
        assert _sequence_of(db, name) == list(range(ROWS_PER_PROCESS))


async def _create(db: Path) -> None:
    log = AuditLog(db)
    await log.open()
    await log.close()


async def test_two_logs_in_one_loop_interleave_into_one_chain(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    a, b = AuditLog(db, clock=make_clock()), AuditLog(db, clock=make_clock())
    await a.open()
    await b.open()
    try:
        await asyncio.gather(
            *(
                log.record_order_event(
                    correlation_id=name,
                    event="status",
                    idempotency_key=name,
                    order_id=i,
                    quantity=Decimal("0.5"),
                )
                for i in range(40)
                for name, log in (("a", a), ("b", b))
            )
        )
    finally:
        await a.close()
        await b.close()
    result = verify_file(db)
    assert result.ok and result.rows == 80
