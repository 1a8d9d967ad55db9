"""Group commit: appends queue on the event loop; one writer-thread job commits them together."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any, TypeAlias

#: A row's outcome: its id, or the exception refusing it (or failing its transaction).
Outcome: TypeAlias = int | Exception
#: Writes rows in order in one transaction; one outcome per row (``Writer.append_batch``).
WriteBatch: TypeAlias = Callable[[Sequence[tuple[str, Mapping[str, Any]]]], list[Outcome]]
_Item: TypeAlias = tuple[str, Mapping[str, Any], "asyncio.Future[int]"]


class GroupCommit:
    """Rows queued by any coroutine, written by ONE writer-thread job per burst, one commit each.

    Why: one transaction per row made a loaded server spend its time on thread hops (queue put,
    thread wake-up, ``call_soon_threadsafe`` per row) and on commits, with hundreds of rows
    waiting. Now an append only puts its row (and its own future) on a list; the first append
    of a burst submits the drain job. The job takes every row queued at that moment, writes
    them in order in one transaction, and wakes each loop once per batch to hand every row its
    own outcome; it repeats until the list is empty (rows queued during a commit form the next
    batch).

    Args:
        write: Writes a batch (called on the writer thread only).
        settled: Called on the loop with every batch's outcomes, before any of its callers
            resumes (health bookkeeping and logging).
    """

    def __init__(self, write: WriteBatch, settled: Callable[[list[Outcome]], None]) -> None:
        self._write = write
        self._settled = settled
        self._lock = threading.Lock()  # guards _pending and _draining (loop vs writer thread)
        self._pending: list[_Item] = []
        self._draining = False

    def submit(self, pool: Executor, table: str, values: Mapping[str, Any]) -> asyncio.Future[int]:
        """Queue one row; the returned future gets its id or its exception after its commit.

        Args:
            pool: The single-thread writer executor (starts the drain job when none runs).
            table: The chained table.
            values: The row's columns (without the chain fields).
        """
        return self.submit_many(pool, [(table, values)])[0]

    def submit_many(
        self, pool: Executor, rows: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[asyncio.Future[int]]:
        """Queue rows in order, all in the same batch (one transaction, one commit).

        Queued under one lock: the writer cannot take a batch between them.
        """
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[int]] = [loop.create_future() for _ in rows]
        with self._lock:
            self._pending.extend(
                (table, values, future)
                for (table, values), future in zip(rows, futures, strict=True)
            )
            start, self._draining = not self._draining, True
        if start:
            # AuditLog submits only while its pool is open (close() forgets the pool first).
            pool.submit(self._drain)
        return futures

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._draining = False
                    return
            try:
                outcomes = self._write([(table, values) for table, values, _ in batch])
            except Exception as exc:  # noqa: BLE001 - never strand a caller, whatever failed
                outcomes = [exc] * len(batch)
            self._wake(batch, outcomes)

    def _wake(self, batch: list[_Item], outcomes: list[Outcome]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int], Outcome]]] = {}
        for (_, _, future), outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(future.get_loop(), []).append((future, outcome))
        for loop, settled in by_loop.items():
            # A closed loop raises RuntimeError: nobody is waiting there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._settle, settled)

    def _settle(self, settled: list[tuple[asyncio.Future[int], Outcome]]) -> None:
        for future, outcome in settled:
            if future.done():  # the caller was cancelled; the row is written all the same
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        # After the futures (whose callers resume on a later loop turn, i.e. after this): a
        # failing bookkeeping callback must not strand them.
        self._settled([outcome for _, outcome in settled])
