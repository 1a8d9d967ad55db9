"""The day's completed orders and executions for the order path, kept current incrementally."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Final

from ibkr_mcp.gateway.records import FillRecord, OrderRecord
from ibkr_mcp.models import DONE_STATUSES, Fill, OrderInfo

#: Executions are asked again from this long before the newest one a read returned (IB's clock):
#: a read returns every fill up to its own time, so only fills of that same second could still be
#: reported after it. IB stamps executions in whole seconds, so one second back includes them all
#: whether IB's time filter is inclusive or not (2 s re-reported ~2x the fills, issue 15).
EXEC_OVERLAP: Final = timedelta(seconds=1)
#: Final statuses: an order in one of them belongs to the completed list.
DONE: Final[frozenset[str]] = DONE_STATUSES


def order_key(info: OrderInfo | OrderRecord) -> tuple[int, ...]:
    """One order's identity: its perm id, else (client id, order id)."""
    return (info.perm_id,) if info.perm_id else (info.client_id or 0, info.order_id)


class DayBook:
    """What the order path asks of the broker's day, without rereading the whole day each time.

    Every order call needs the day's completed orders and executions (the idempotency lookup by
    orderRef, the flow limits' orders of the day). Asking IB for all of them on every call costs
    time in proportion to the orders of the day (ib_async decodes ~0.4 ms per completed order),
    so a day of N orders costs O(N²). Instead the day is read whole once per session, then:

    - this client's order changes and fills arrive as events (``note_order`` / ``note_fill``);
    - executions are asked again incrementally (``ExecutionFilter.time`` = ``fills_since``);
    - every client's open orders are asked fresh on each order call (a short list); an order of
      another client seen open and gone at the next read joins the completed list as last seen
      (``note_open``);
    - optionally, the whole day is reread in the background once the last whole read is older
      than ``refresh_seconds`` (``stale``). Off by default: a whole reread makes ib_async decode
      and hold the whole day at once (memory and CPU growing with the day's orders) and only adds
      another client's orders that finished unfilled without ever being seen open.

    A session loss (``reset``) forgets everything: the next order call reads the day whole again.
    Orders and fills are held as compact records (``records.py``): a day of thousands of orders
    stays a few MB, and the order path reads the fields it needs without rebuilding models.

    Args:
        refresh_seconds: Age after which the whole day is reread in the background (0: never).
        whole: Order calls read the whole day from the broker every time (no book).
        clock: Monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        refresh_seconds: float,
        *,
        whole: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.refresh_seconds = refresh_seconds
        self.whole = whole
        self.clock = clock
        self.generation = 0
        self._completed: dict[tuple[int, ...], OrderRecord] | None = None
        self._completed_at = 0.0
        self._open: dict[tuple[int, ...], OrderRecord] = {}
        self._fills: dict[str, FillRecord] | None = None
        #: orderRef -> exec ids of ``_fills``: the order path looks its key up on every call.
        self._by_ref: dict[str, set[str]] = {}
        self._newest_read: datetime | None = None

    @property
    def enabled(self) -> bool:
        """Whether the order path may use this book (not ``whole``)."""
        return not self.whole

    def reset(self) -> None:
        """The session was lost: forget the day (reads in flight are discarded too)."""
        self.generation += 1
        self._completed = None
        self._open = {}
        self._fills = None
        self._by_ref = {}
        self._newest_read = None

    # --- completed orders -----------------------------------------------------------------

    def completed(self) -> list[OrderRecord] | None:
        """The day's completed orders as known, or ``None`` before the first whole read."""
        return None if self._completed is None else list(self._completed.values())

    def stale(self) -> bool:
        """Whether a background whole reread is due (never with ``refresh_seconds`` 0)."""
        if self.refresh_seconds <= 0:
            return False
        return self.clock() - self._completed_at >= self.refresh_seconds

    def set_completed(self, infos: Iterable[OrderInfo], generation: int) -> None:
        """A whole read of completed orders started in ``generation`` finished."""
        if generation != self.generation:
            return
        known = self._completed or {}
        fresh = {order_key(info): OrderRecord.of(info) for info in infos}
        # An order this client saw finish after the read was sent is kept, not lost.
        for key, info in known.items():
            fresh.setdefault(key, info)
        self._completed = fresh
        self._completed_at = self.clock()

    def note_open(self, infos: Iterable[OrderInfo], generation: int) -> None:
        """A read of every client's open orders: an order gone since the last one finished."""
        if generation != self.generation:
            return
        now = {order_key(info): OrderRecord.of(info) for info in infos}
        if self._completed is not None:
            for key, info in self._open.items():
                if key not in now:
                    # Its final state is unknown here (another client's order gets no status
                    # event): kept as last seen; executions tell whether it filled.
                    self._completed.setdefault(key, info)
        self._open = now

    def same(self, record: OrderRecord) -> OrderRecord | None:
        """The completed record equal to ``record``, if held (so one object serves both)."""
        if self._completed is None:
            return None
        known = self._completed.get(record.key)
        return known if known == record else None

    def note_order(self, info: OrderInfo) -> None:
        """An order status event: a finished order joins the completed list at once."""
        if self._completed is not None and info.status in DONE:
            self._completed[order_key(info)] = OrderRecord.of(info)

    # --- executions -----------------------------------------------------------------------

    def fills(self, account: str | None = None, order_ref: str | None = None) -> list[Fill] | None:
        """The day's executions as known, or ``None`` if unread.

        Args:
            account: Only this account's.
            order_ref: Only those of orders with this ``orderRef``.
        """
        if self._fills is None:
            return None
        held = self._fills
        records = (
            (held[e] for e in self._by_ref.get(order_ref, ())) if order_ref else iter(held.values())
        )
        chosen = [
            f.fill()
            for f in records
            if (not account or f.account == account) and (not order_ref or f.order_ref == order_ref)
        ]
        return sorted(chosen, key=lambda f: (f.time, f.exec_id))

    def fills_since(self) -> datetime | None:
        """Where the next incremental executions read starts, or ``None`` for a whole read.

        Measured on IB's clock (the newest execution a read returned), never on ours.
        """
        if self._fills is None or self._newest_read is None:
            return None
        return self._newest_read - EXEC_OVERLAP

    def add_fills(
        self,
        fills: Iterable[Fill],
        generation: int,
        *,
        whole: bool,
        settled: Iterable[datetime] = (),
    ) -> None:
        """An executions read sent in ``generation`` finished.

        Args:
            fills: What the broker answered (that the book did not already hold settled).
            generation: ``generation`` when the read was sent.
            whole: The read asked for the whole day (else only since ``fills_since``).
            settled: The times of the fills it answered that the book held settled (not passed
                again, see ``settled_at``): they still move the next read's start forward.
        """
        if generation != self.generation or (self._fills is None and not whole):
            return
        if self._fills is None:
            self._fills, self._by_ref = {}, {}
        times = list(settled)
        for fill in fills:
            self._keep(fill)
            times.append(fill.time)
        newest = max(times, default=None)
        if newest is not None and (self._newest_read is None or newest > self._newest_read):
            self._newest_read = newest

    def settled_at(self, exec_id: str) -> datetime | None:
        """The time of the execution if held with its commission (nothing more can change)."""
        known = None if self._fills is None else self._fills.get(exec_id)
        return known.time if known is not None and known.commission is not None else None

    def note_fill(self, fill: Fill) -> None:
        """An execution or commission event of this client."""
        self._keep(fill)

    def _keep(self, fill: Fill) -> None:
        book = self._fills
        if book is None:
            return  # nothing is known before the first whole read
        # A fill read without its commission never replaces one that has it.
        known = book.get(fill.exec_id)
        if known is None or fill.commission is not None or known.commission is None:
            record = FillRecord.of(fill)
            # The exec id string is kept once (the key is the record's own).
            book[record.exec_id] = record
            if record.order_ref:
                self._by_ref.setdefault(record.order_ref, set()).add(record.exec_id)


def ib_filter_time(at: datetime) -> str:
    """IB's ``ExecutionFilter.time`` text: ``yyyymmdd-hh:mm:ss`` in UTC."""
    return at.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")
