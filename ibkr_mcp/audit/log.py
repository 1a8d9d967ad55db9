"""``AuditLog``: the async, append-only, hash-chained audit trail used by every surface."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, Unpack

from loguru import logger

from ibkr_mcp.audit._batch import GroupCommit, Outcome
from ibkr_mcp.audit._codec import dec_text, opt_float, opt_int, to_json, utc_iso, utc_now
from ibkr_mcp.audit._rows import (
    EVENT_KINDS,
    FILL_KINDS,
    SURFACES,
    EventFields,
    Row,
    check,
    order_values,
)
from ibkr_mcp.audit._store import (
    COUNTED_THROUGH,
    StaleCountsError,
    Synchronous,
    Writer,
    connect,
    query,
    recent_rows,
    snapshot_queries,
    unavailable,
)
from ibkr_mcp.audit.verify import VerifyResult, verify_file
from ibkr_mcp.errors import AuditUnavailableError

T = TypeVar("T")


def _log_failure(table: str, future: asyncio.Future[int]) -> None:
    if not future.cancelled() and (exc := future.exception()) is not None:
        if isinstance(exc, StaleCountsError):
            return  # refused with its intent row, on purpose: the order is judged again
        logger.error("audit {} row failed: {}", table, exc)


class AuditLog:
    """Append-only, hash-chained SQLite audit trail (WAL), safe to share between processes.

    All writes go through ONE dedicated writer thread (rows keep their submission order and the
    event loop never blocks on SQLite); reads use a second connection on another thread.
    Order rows (``order_events``, ``fills``) commit with ``synchronous=FULL``: when
    ``record_order_event`` returns, the row is on disk. Tool-call/gate rows use
    ``events_synchronous`` (default NORMAL: still atomic and chained, and made durable by the
    next order row's FULL commit, which syncs the whole WAL).

    Args:
        path: The SQLite file (created with its directory if missing).
        clock: Returns the current aware datetime (tests inject a fixed clock).
        busy_timeout: Seconds to wait for another process's write lock before failing.
        events_synchronous: ``synchronous`` mode for the ``events`` table ("NORMAL" or "FULL").
        key: The chain's HMAC key (``audit/keys.py``); rows are then ``k1:`` HMAC-SHA256.
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], datetime] | None = None,
        busy_timeout: float = 5.0,
        events_synchronous: Synchronous = "NORMAL",
        key: bytes | None = None,
    ) -> None:
        self._path = Path(path)
        self._key = key
        self._clock = clock or utc_now
        self._busy_timeout = busy_timeout
        self._writer = Writer(
            self._path,
            clock=self._clock,
            busy_timeout=busy_timeout,
            events_synchronous=events_synchronous,
            key=key,
        )
        self._write_pool: ThreadPoolExecutor | None = None
        self._read_pool: ThreadPoolExecutor | None = None
        self._reader: sqlite3.Connection | None = None
        self._healthy = False
        self._last_error: str | None = None
        self._newest_intent = 0
        # Through a lambda: the writer is looked up per batch (bench_audit swaps it).
        self._group = GroupCommit(lambda rows: self._writer.append_batch(rows), self._settled)

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def healthy(self) -> bool:
        """True when open and the last write (or probe) succeeded."""
        return self._healthy

    @property
    def last_error(self) -> str | None:
        """The message of the last write failure (None after a success)."""
        return self._last_error

    async def open(self) -> None:
        """Create the directory, schema, triggers and views; switch to WAL (idempotent).

        Raises:
            AuditUnavailableError: If the database cannot be opened or written.
        """
        if self._write_pool is not None:
            return
        self._write_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-writer")
        self._read_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-reader")
        try:
            await self._on_writer(self._writer.open)
            self._reader = await self._on_reader(self._open_reader)
        except BaseException:
            await self.close()
            raise
        logger.info("Audit log open at {}", self._path)

    async def __aenter__(self) -> AuditLog:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _open_reader(self) -> sqlite3.Connection:
        try:
            conn = connect(self._path, busy_timeout=self._busy_timeout)
            conn.execute("PRAGMA query_only=1")
        except sqlite3.Error as exc:
            raise unavailable(self._path, exc, "open", self._busy_timeout) from exc
        return conn

    async def close(self) -> None:
        """Finish pending writes and close both connections (idempotent)."""
        write_pool, read_pool, reader = self._write_pool, self._read_pool, self._reader
        self._write_pool = self._read_pool = self._reader = None
        self._healthy = False
        loop = asyncio.get_running_loop()
        if write_pool is not None:
            await loop.run_in_executor(write_pool, self._writer.close)
            write_pool.shutdown(wait=True)
        if read_pool is not None:
            if reader is not None:
                await loop.run_in_executor(read_pool, self._writer.side_files.retire, reader)
            read_pool.shutdown(wait=True)

    async def _on_writer(self, fn: Callable[[], T]) -> T:
        if self._write_pool is None:
            raise self._not_open()
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._write_pool, fn)
        except AuditUnavailableError as exc:
            self._healthy = False
            self._last_error = exc.message
            logger.error("Audit write failed: {}", exc)
            raise
        self._healthy = True
        self._last_error = None
        return result

    def _not_open(self) -> AuditUnavailableError:
        return AuditUnavailableError(
            f"The audit log {self._path} is not open.",
            remedy="Call AuditLog.open() at startup before recording anything.",
            details={"path": str(self._path)},
        )

    async def _on_reader(self, fn: Callable[[], T]) -> T:
        if self._read_pool is None:
            raise AuditUnavailableError(
                f"The audit log {self._path} is not open.",
                remedy="Call AuditLog.open() at startup before reading.",
                details={"path": str(self._path)},
            )
        return await asyncio.get_running_loop().run_in_executor(self._read_pool, fn)

    async def check_writable(self) -> bool:
        """Probe the write lock now; updates :attr:`healthy` (never raises)."""
        try:
            await self._on_writer(self._writer.probe)
        except AuditUnavailableError:
            return False
        return True

    # --- writes ---------------------------------------------------------------------------

    async def _append(self, table: str, values: dict[str, Any]) -> int:
        if self._write_pool is None:
            raise self._not_open()
        # Group commit: the row joins whatever the writer commits next (see _batch.py).
        return await self._group.submit(self._write_pool, table, values)

    def _settled(self, outcomes: list[Outcome]) -> None:
        failed = [o for o in outcomes if isinstance(o, AuditUnavailableError)]
        if failed:
            self._healthy = False
            self._last_error = failed[-1].message
            logger.error("Audit write failed ({} row(s)): {}", len(failed), failed[-1])
        elif any(isinstance(o, int) for o in outcomes):
            self._healthy = True
            self._last_error = None

    def event_row(self, **fields: Unpack[EventFields]) -> Row:
        """An ``events`` row, checked and encoded, not yet queued (see ``record_event``).

        Raises:
            ValueError: For an unknown ``kind``/``surface`` or an empty ``outcome``.
        """
        if not fields["outcome"]:
            raise ValueError("outcome must not be empty")
        values = {
            "correlation_id": fields["correlation_id"],
            "kind": check(fields["kind"], EVENT_KINDS, "kind"),
            "tool": fields["tool"],
            "surface": check(fields["surface"], SURFACES, "surface"),
            "arguments": to_json(fields["arguments"]),
            "outcome": fields["outcome"],
            "duration_ms": opt_float(fields.get("duration_ms")),
            "safety": to_json(fields.get("safety")),
            "detail": to_json(fields.get("detail")),
        }
        return "events", values

    def queue_event(self, **fields: Unpack[EventFields]) -> asyncio.Future[int]:
        """Queue an ``events`` row nobody waits for; its failure is logged, never raised.

        For the tool-call row behind every answer: queued in place, with no task of its own
        (a task per call cost the event loop two more turns, issue 15).

        Raises:
            AuditUnavailableError: If the log is not open.
            ValueError: For an unknown ``kind``/``surface`` or an empty ``outcome``.
        """
        future = self._submit_logged([self.event_row(**fields)])
        future.add_done_callback(partial(_log_failure, "events"))
        return future

    async def record_event(self, **fields: Unpack[EventFields]) -> int:
        """Append a tool call, gate decision or system event; returns its ``events.id``.

        Args:
            **fields: The row's fields (see ``EventFields``).

        Raises:
            AuditUnavailableError: If the row could not be committed.
            ValueError: For an unknown ``kind``/``surface`` or an empty ``outcome``.
        """
        return await self._append(*self.event_row(**fields))

    async def record_order_event(
        self,
        *,
        correlation_id: str | None,
        event: str,
        idempotency_key: str | None,
        fingerprint: str | None = None,
        order_id: int | None = None,
        perm_id: int | None = None,
        account: str | None = None,
        symbol: str | None = None,
        con_id: int | None = None,
        side: str | None = None,
        quantity: Decimal | None = None,
        order_type: str | None = None,
        limit_price: Decimal | None = None,
        tif: str | None = None,
        status: str | None = None,
        token_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
        preceded_by: Row | None = None,
        counted_through: int | None = None,
    ) -> int:
        """Append one order event (a NEW row per transition); durable when this returns.

        ``token_id`` must be an id of the confirmation token (see ``audit.token_id``), never
        the token. Pass ``idempotency_key`` on every row of an order when known, so the
        ``orders`` view groups them. ``preceded_by``: a row (``event_row``, e.g. the gate
        decision) written just before this one in the same transaction, so one durable commit
        holds both; its own failure is logged, not raised here. ``counted_through``: the
        newest row the flow counters this order was judged on were read through; if an intent
        was recorded after it, neither this row nor ``preceded_by`` is written and
        ``StaleCountsError`` is raised (judge the order again), checked under the write lock.

        Returns:
            The new ``order_events.id``.

        Raises:
            AuditUnavailableError: If the row could not be committed (send no order then).
            ValueError: For an unknown ``event``.
            TypeError: For a float quantity/price (use Decimal).
        """
        try:
            values = order_values(
                correlation_id=correlation_id, event=event, idempotency_key=idempotency_key,
                fingerprint=fingerprint, order_id=order_id, perm_id=perm_id, account=account,
                symbol=symbol, con_id=con_id, side=side, quantity=quantity,
                order_type=order_type, limit_price=limit_price, tif=tif, status=status,
                token_id=token_id, detail=detail,
            )  # fmt: skip
        except BaseException:
            if preceded_by is not None and self._write_pool is not None:
                # Written all the same; nobody awaits it: its failure is logged.
                alone = self._submit_logged([preceded_by])
                alone.add_done_callback(partial(_log_failure, preceded_by[0]))
            raise
        if counted_through is not None:
            values[COUNTED_THROUGH] = counted_through
            if preceded_by is not None:
                preceded_by = (preceded_by[0], {**preceded_by[1], COUNTED_THROUGH: counted_through})
        if preceded_by is None:
            row_id = await self._append("order_events", values)
        else:
            row_id = await self._submit_logged([preceded_by, ("order_events", values)])
        if event == "intent" and row_id > self._newest_intent:
            self._newest_intent = row_id
        return row_id

    @property
    def newest_intent_id(self) -> int:
        """The id of the newest intent row this process recorded (0: none yet).

        Flow counters read through an older row do not hold it (``counted_through``).
        """
        return self._newest_intent

    def _submit_logged(self, rows: list[Row]) -> asyncio.Future[int]:
        """Queue rows in one batch; every row's failure but the last one's is logged here."""
        if self._write_pool is None:
            raise self._not_open()
        futures = self._group.submit_many(self._write_pool, rows)
        for (table, _), future in zip(rows[:-1], futures, strict=False):
            future.add_done_callback(partial(_log_failure, table))
        return futures[-1]

    async def record_fill(
        self,
        *,
        correlation_id: str | None,
        kind: str,
        exec_id: str,
        order_id: int | None,
        perm_id: int | None,
        account: str | None,
        symbol: str | None,
        side: str | None,
        quantity: Decimal | None,
        price: Decimal | None,
        commission: Decimal | None = None,
        commission_currency: str | None = None,
        realized_pnl: Decimal | None = None,
        exec_time: datetime | None = None,
        order_ref: str | None = None,
    ) -> int:
        """Append an execution, or a commission report for an execution (once per exec id).

        IB repeats both on every executions request: a repeat writes nothing and returns the
        id of the row already recording it.

        Returns:
            The ``fills.id`` of the row recording it.

        Raises:
            AuditUnavailableError: If the row could not be committed.
            ValueError: For an unknown ``kind`` or empty ``exec_id``.
            TypeError: For float money values (use Decimal).
        """
        if not exec_id:
            raise ValueError("exec_id must not be empty")
        values = {
            "correlation_id": correlation_id,
            "kind": check(kind, FILL_KINDS, "kind"),
            "exec_id": exec_id,
            "order_id": opt_int(order_id, "order_id"),
            "perm_id": opt_int(perm_id, "perm_id"),
            "account": account,
            "symbol": symbol,
            "side": side,
            "quantity": dec_text(quantity, "quantity"),
            "price": dec_text(price, "price"),
            "commission": dec_text(commission, "commission"),
            "commission_currency": commission_currency,
            "realized_pnl": dec_text(realized_pnl, "realized_pnl"),
            "exec_time": None if exec_time is None else utc_iso(exec_time),
            "order_ref": order_ref,
        }
        return await self._append("fills", values)

    # --- reads ----------------------------------------------------------------------------

    def _read(self, sql: str, params: Any) -> list[dict[str, Any]]:
        if self._reader is None:
            raise AuditUnavailableError(f"The audit log {self._path} is not open.")
        try:
            self._writer.side_files.check()
            return query(self._reader, sql, params)
        except sqlite3.Error as exc:
            raise unavailable(self._path, exc, "read", self._busy_timeout) from exc

    async def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        """Run a read-only query on the reader connection (rows as stored)."""
        return await self._on_reader(partial(self._read, sql, params))

    async def query_many(self, *statements: tuple[str, Any]) -> list[list[dict[str, Any]]]:
        """Run read-only queries in one reader job, on one snapshot; their rows, in order.

        One hop to the reader thread instead of one per query (each hop waits for the loop).
        """
        return await self._on_reader(partial(self._read_many, statements))

    def _read_many(self, statements: tuple[tuple[str, Any], ...]) -> list[list[dict[str, Any]]]:
        if self._reader is None:
            raise AuditUnavailableError(f"The audit log {self._path} is not open.")
        try:
            self._writer.side_files.check()
            return snapshot_queries(self._reader, statements)
        except sqlite3.Error as exc:
            raise unavailable(self._path, exc, "read", self._busy_timeout) from exc

    async def order_events_for_key(self, idempotency_key: str) -> list[dict[str, Any]]:
        """Every order event with this idempotency key, oldest first (rows as stored)."""
        return await self._on_reader(
            partial(
                self._read,
                "SELECT * FROM order_events WHERE idempotency_key = ? ORDER BY seq",
                (idempotency_key,),
            )
        )

    async def latest_order_event(self, order_id: int) -> dict[str, Any] | None:
        """The newest order event for a broker order id, or None."""
        rows = await self._on_reader(
            partial(
                self._read,
                "SELECT * FROM order_events WHERE order_id = ? ORDER BY seq DESC LIMIT 1",
                (order_id,),
            )
        )
        return rows[0] if rows else None

    async def recent(
        self, limit: int = 50, *, correlation_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` rows across all tables, newest first, each with ``table``.

        Rows are as stored: decimals as text, ``arguments``/``safety``/``detail`` as JSON text.
        """

        def run() -> list[dict[str, Any]]:
            if self._reader is None:
                raise AuditUnavailableError(f"The audit log {self._path} is not open.")
            try:
                self._writer.side_files.check()
                return recent_rows(self._reader, max(0, limit), correlation_id)
            except sqlite3.Error as exc:
                raise unavailable(self._path, exc, "read", self._busy_timeout) from exc

        return await self._on_reader(run)

    def verify(self) -> VerifyResult:
        """Verify the whole chain (synchronous; opens its own read-only connection)."""
        return verify_file(self._path, self._key)
