"""Group commit: rows queued together commit in one transaction, each with its own outcome."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import T0, make_clock

from ibkr_mcp.audit import AuditLog, verify_file
from ibkr_mcp.audit._schema import TABLES
from ibkr_mcp.audit._store import Writer
from ibkr_mcp.errors import AuditUnavailableError, IdempotencyConflictError


def _gated_clock() -> tuple[Callable[[], datetime], threading.Event, threading.Event]:
    """A clock whose FIRST call (on the writer thread) signals ``entered`` and waits for ``gate``.

    Holding the writer inside its first batch lets the test queue every other row meanwhile:
    they then all form the next batch, by construction rather than by timing.
    """
    entered, gate = threading.Event(), threading.Event()
    tick = make_clock()
    first = [True]

    def clock() -> datetime:
        if first[0]:
            first[0] = False
            entered.set()
            gate.wait(30)
        return tick()

    return clock, entered, gate


@asynccontextmanager
async def held_writer(
    db_path: Path,
) -> AsyncIterator[tuple[AuditLog, asyncio.Task[int], threading.Event]]:
    """An open log whose writer is held inside a batch holding only row ``c0``.

    Yields the log, the task appending ``c0`` and the gate that releases the writer; the log
    is closed on exit.
    """
    clock, entered, gate = _gated_clock()
    log = AuditLog(db_path, clock=clock)
    await log.open()
    try:
        first = asyncio.create_task(_event(log, 0))
        await asyncio.get_running_loop().run_in_executor(None, entered.wait, 30)
        yield log, first, gate
    finally:
        await log.close()


def _event(log: AuditLog, i: int) -> Any:
    return log.record_event(
        correlation_id=f"c{i}",
        kind="tool_call",
        tool="get_quote",
        surface="http",
        arguments={"i": i},
        outcome="ok",
    )


def _fill(log: AuditLog, exec_id: str) -> Any:
    return log.record_fill(
        correlation_id="c",
        kind="execution",
        exec_id=exec_id,
        order_id=7,
        perm_id=9,
        account="DU1",
        symbol="AAPL",
        side="BOT",
        quantity=Decimal("1"),
        price=Decimal("190.05"),
        exec_time=T0,
    )


def _values(table: str, **given: Any) -> dict[str, Any]:
    """Every column of ``table`` but the chain's own, as ``AuditLog`` hands them to the writer."""
    chain = {"id", "seq", "ts", "prev_hash", "row_hash"}
    return {c: given.get(c) for c in TABLES[table] if c not in chain}


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_a_refused_row_in_a_batch_fails_only_its_own_caller(db_path: Path) -> None:
    async with held_writer(db_path) as (log, first, gate):
        tasks = [
            asyncio.create_task(coro)
            for coro in (
                log.record_order_event(correlation_id="a", event="intent", idempotency_key="k"),
                _event(log, 1),
                log.record_order_event(correlation_id="b", event="intent", idempotency_key="k"),
                log.record_order_event(correlation_id="a", event="approved", idempotency_key="k"),
                log.record_order_event(correlation_id="b", event="denied", idempotency_key="k"),
                _fill(log, "0001.01"),
                _fill(log, "0001.01"),
                log.record_order_event(
                    correlation_id="a", event="status", order_id=2**64, idempotency_key="k"
                ),
                _event(log, 2),
            )
        ]
        await asyncio.sleep(0)  # every task has queued its row: they form one batch
        gate.set()
        assert await first == 1
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    intent, event1, second_intent, approved, denied, fill, repeat, too_big, event2 = outcomes
    assert (intent, event1, approved, fill, repeat, event2) == (1, 2, 2, 1, 1, 3)
    assert isinstance(second_intent, IdempotencyConflictError)
    assert second_intent.details["already_bound"] is True
    assert isinstance(denied, IdempotencyConflictError)
    assert denied.details["already_decided"] == "approved"
    assert isinstance(too_big, ValueError) and "integer range" in str(too_big)
    # The refused rows took no place in the chain: seq runs without a gap over the others.
    seqs = _rows(
        db_path,
        "SELECT seq FROM events UNION ALL SELECT seq FROM order_events "
        "UNION ALL SELECT seq FROM fills ORDER BY 1",
    )
    assert [s for (s,) in seqs] == list(range(1, 7))
    result = verify_file(db_path)
    assert result.ok and result.rows == 6


async def test_concurrent_batched_appends_from_two_logs_keep_one_chain(db_path: Path) -> None:
    a, b = AuditLog(db_path, clock=make_clock()), AuditLog(db_path, clock=make_clock())
    await a.open()
    await b.open()

    def burst(log: AuditLog, name: str) -> list[Any]:
        calls: list[Any] = []
        for i in range(150):
            if i % 5 == 0:
                calls.append(
                    log.record_order_event(
                        correlation_id=name, event="intent", idempotency_key=f"{name}-{i}"
                    )
                )
            elif i % 7 == 0:
                calls.append(_fill(log, f"{name}.{i // 14}"))  # every id twice
            else:
                calls.append(_event(log, i))
        return calls

    try:
        results = await asyncio.gather(*burst(a, "a"), *burst(b, "b"), return_exceptions=True)
    finally:
        await a.close()
        await b.close()
    assert not [r for r in results if isinstance(r, BaseException)]
    fills = [i for i in range(150) if i % 7 == 0 and i % 5 != 0]
    distinct = len({i // 14 for i in fills})
    assert distinct < len(fills)  # some executions are reported twice
    counts = {t: _rows(db_path, f"SELECT COUNT(*) FROM {t}")[0][0] for t in ("events", "fills")}
    assert counts == {"events": 2 * (150 - 30 - len(fills)), "fills": 2 * distinct}
    result = verify_file(db_path)
    assert result.ok and result.rows == 2 * (150 - len(fills) + distinct)


async def test_ids_follow_submission_order_within_and_across_batches(db_path: Path) -> None:
    async with held_writer(db_path) as (log, first, gate):
        tasks = [asyncio.create_task(_event(log, i)) for i in range(1, 40)]
        await asyncio.sleep(0)
        gate.set()
        ids = await asyncio.gather(first, *tasks)
    assert ids == list(range(1, 41))
    rows = _rows(db_path, "SELECT json_extract(arguments, '$.i') FROM events ORDER BY seq")
    assert [i for (i,) in rows] == list(range(40))


async def test_a_failed_batch_fails_every_caller_in_it_then_recovers(db_path: Path) -> None:
    log = AuditLog(db_path, clock=make_clock(), busy_timeout=0.2)
    await log.open()
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        outcomes = await asyncio.gather(
            *(_event(log, i) for i in range(5)),
            log.record_order_event(correlation_id="a", event="intent", idempotency_key="k"),
            return_exceptions=True,
        )
        assert all(isinstance(o, AuditUnavailableError) for o in outcomes)
        assert len({id(o) for o in outcomes}) == len(outcomes)  # each caller its own error
        assert not log.healthy and log.last_error and "locked" in log.last_error
        holder.execute("ROLLBACK")
        assert (
            await log.record_order_event(correlation_id="a", event="intent", idempotency_key="k")
            == 1
        )
        assert log.healthy
    finally:
        holder.close()
        await log.close()
    assert verify_file(db_path).rows == 1


def test_writer_batch_outcomes_are_per_row(db_path: Path) -> None:
    writer = Writer(db_path, clock=make_clock(), busy_timeout=1.0, events_synchronous="NORMAL")
    system = _values("events", kind="system", surface="internal", outcome="ok")
    (not_open,) = writer.append_batch([("events", system)])
    assert isinstance(not_open, AuditUnavailableError)
    writer.open()
    try:
        intent = _values("order_events", event="intent", idempotency_key="k")
        outcomes = writer.append_batch(
            [
                ("order_events", intent),
                ("order_events", intent),
                ("events", system),
                ("events", {**system, "duration_ms": "not a number"}),
                ("events", system),
            ]
        )
        assert writer.append_batch([]) == []
    finally:
        writer.close()
    assert outcomes[0] == 1 and isinstance(outcomes[1], IdempotencyConflictError)
    assert outcomes[2] == 1 and isinstance(outcomes[3], ValueError) and outcomes[4] == 2
    assert verify_file(db_path).rows == 3


# The child appends a burst of NORMAL events and one order intent in ONE batch (queued while the
# writer is held in its first batch, which holds row c0 alone), and SIGKILLs itself the moment
# the intent's await returns: the intent (and every row before it) must already be committed.
CHILD = textwrap.dedent(
    """
    import asyncio, itertools, os, signal, sys, threading
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    from ibkr_mcp.audit import AuditLog

    entered, gate, first, ticks = threading.Event(), threading.Event(), [True], itertools.count()

    def clock():
        if first[0]:
            first[0] = False
            entered.set()
            gate.wait(30)
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(milliseconds=next(ticks))

    def event(log, i):
        return log.record_event(correlation_id=f"c{i}", kind="tool_call", tool="t",
                                surface="http", arguments={"i": i}, outcome="ok")

    async def intent_then_die(log):
        await log.record_order_event(correlation_id="x", event="intent", idempotency_key="k")
        os.kill(os.getpid(), signal.SIGKILL)

    async def main(path):
        log = AuditLog(path, clock=clock)
        await log.open()
        tasks = [asyncio.create_task(event(log, 0))]
        await asyncio.get_running_loop().run_in_executor(None, entered.wait, 30)
        tasks += [asyncio.create_task(event(log, i)) for i in range(1, 20)]
        tasks.append(asyncio.create_task(intent_then_die(log)))
        tasks += [asyncio.create_task(event(log, i)) for i in range(20, 30)]
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(*tasks)

    asyncio.run(main(Path(sys.argv[1])))
    """
)


def test_a_durable_row_is_committed_before_its_await_returns(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(db)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    intents = _rows(db, "SELECT correlation_id, seq FROM order_events WHERE event = 'intent'")
    assert [c for c, _ in intents] == ["x"]
    (seq,) = [s for _, s in intents]
    before = _rows(db, f"SELECT COUNT(*) FROM events WHERE seq < {seq}")[0][0]
    assert before == 20  # the events queued ahead of it, in the same batch
    assert verify_file(db).ok


@pytest.mark.parametrize("cancel_first", [True, False])
async def test_a_cancelled_caller_does_not_lose_or_break_the_batch(
    db_path: Path, cancel_first: bool
) -> None:
    async with held_writer(db_path) as (log, first, gate):
        tasks = [asyncio.create_task(_event(log, i)) for i in range(1, 6)]
        await asyncio.sleep(0)
        (first if cancel_first else tasks[2]).cancel()
        gate.set()
        done = await asyncio.gather(first, *tasks, return_exceptions=True)
    cancelled = 1 if cancel_first else 4
    assert [isinstance(d, asyncio.CancelledError) for d in done] == [
        i == cancelled for i in range(1, 7)
    ]
    assert [d for d in done if isinstance(d, int)] == [i for i in range(1, 7) if i != cancelled]
    assert verify_file(db_path).rows == 6  # the cancelled caller's row is written all the same


class _CountingWriter(Writer):
    """Records how many rows each transaction held."""

    batches: list[int]

    def append_batch(self, rows: Any) -> list[int | Exception]:
        self.batches.append(len(rows))
        return super().append_batch(rows)


def _gate_row(log: AuditLog, i: int) -> Any:
    return log.event_row(
        correlation_id=f"g{i}", kind="gate", tool="place_order", surface="internal",
        arguments={"i": i}, outcome="allowed",
    )  # fmt: skip


def _intent(log: AuditLog, key: str, gate: Any, **extra: Any) -> Any:
    return log.record_order_event(
        correlation_id="c", event="intent", idempotency_key=key, quantity=Decimal("1"),
        preceded_by=gate, **extra,
    )  # fmt: skip


async def test_a_preceding_row_commits_in_its_order_rows_transaction(db_path: Path) -> None:
    log = AuditLog(db_path, clock=make_clock())
    writer = _CountingWriter(db_path, clock=make_clock(), busy_timeout=5.0,
                             events_synchronous="NORMAL")  # fmt: skip
    writer.batches = []
    log._writer = writer  # counts its transactions (the writer is looked up per batch)
    await log.open()
    try:
        await _intent(log, "k1", _gate_row(log, 1))
        # A refused intent (the key is bound) still writes the row before it.
        with pytest.raises(IdempotencyConflictError):
            await _intent(log, "k1", _gate_row(log, 2))
        # An intent refused before queueing (a float quantity) too: that row is queued alone.
        with pytest.raises(TypeError):
            await _intent(log, "k2", _gate_row(log, 3), limit_price=1.5)
        await log.record_event(correlation_id="end", kind="system", tool=None,
                               surface="internal", arguments=None, outcome="ok")  # fmt: skip
    finally:
        await log.close()
    # g3 is queued alone; the last event may join its batch (not awaited in between).
    assert writer.batches[:2] == [2, 2] and sum(writer.batches) == 6
    events = _rows(db_path, "SELECT correlation_id, seq FROM events ORDER BY seq")
    intents = _rows(db_path, "SELECT seq FROM order_events WHERE event = 'intent'")
    assert [c for c, _ in events] == ["g1", "g2", "g3", "end"]
    assert intents == [(events[0][1] + 1,)]  # right after its gate row, in one chain
    assert verify_file(db_path).ok
