"""Admission for market-data requests: a message rate, open-request slots, and shedding."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Final

from ibkr_mcp.errors import OverloadedError

#: Set while serving a market-data tool call: its broker requests queue and may be shed.
#: Everything else (an order's reference quote, the gates, the emergency stop) is urgent and
#: never waits behind market data.
_BULK: ContextVar[bool] = ContextVar("ibkr_market_data_bulk", default=False)


@contextmanager
def market_data_call() -> Iterator[None]:
    """Mark the current call as a market-data request (queued, paced, sheddable)."""
    token = _BULK.set(True)
    try:
        yield
    finally:
        _BULK.reset(token)


def is_bulk() -> bool:
    """Whether the current call is a market-data request (see ``market_data_call``)."""
    return _BULK.get()


#: Weight of the newest sample in the running average of one request's service time.
EWMA_WEIGHT: Final = 0.2
#: Answers per second are measured over this many seconds, from at least MIN_ANSWERS answers.
ANSWER_WINDOW: Final = 5.0
MIN_ANSWERS: Final = 20
#: Service time assumed before anything was measured (a snapshot on a healthy gateway).
INITIAL_SERVICE_SECONDS: Final = 0.25


class MarketDataLimiter:
    """Keeps market data from crowding out orders, and refuses what cannot be served in time.

    ib_async sends at most 45 messages per second and queues the rest in one FIFO, orders
    included; market data paced below that (``rate``) leaves orders, cancels and the emergency
    stop an empty queue. A request whose estimated wait plus service time exceeds its timeout
    is refused at once (``OVERLOADED`` with ``retry_after_seconds``) instead of timing out.

    Args:
        rate: Market-data messages per second (at most this many in any one-second window).
        max_inflight: Requests open at the gateway at once.
        max_calls: Market-data calls in the process at once (more are refused at once).
        clock: Monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        *,
        rate: float,
        max_inflight: int,
        max_calls: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.per_window = max(1, math.floor(rate))
        self.max_inflight = max_inflight
        self.clock = clock
        self.waiting = 0
        self.inflight = 0
        self.shed = 0
        self.service_seconds = INITIAL_SERVICE_SECONDS
        self.callers = 0
        self.max_calls = max_calls
        self._sent: deque[float] = deque()
        self._answered: deque[float] = deque()
        self._slots = asyncio.Semaphore(max_inflight)
        self._turn = asyncio.Lock()

    def estimate_wait(self) -> float:
        """Seconds a request arriving now would wait before being sent."""
        ahead = self.waiting + 1
        by_rate = max(0, ahead - self._free_in_window()) / self.rate
        free_slots = self.max_inflight - self.inflight
        by_slots = 0.0
        if ahead > free_slots:
            by_slots = math.ceil((ahead - free_slots) / self.max_inflight) * self.service_seconds
        return max(by_rate, by_slots)

    def caller_wait(self) -> float:
        """Little's law over market-data calls: callers in the process / answers per second.

        This sees the whole queue (the HTTP server, the pipeline, the event loop), not only
        the broker requests: under a flood the wait is there long before it is at IB.
        """
        now = self.clock()
        while self._answered and self._answered[0] <= now - ANSWER_WINDOW:
            self._answered.popleft()
        if len(self._answered) < MIN_ANSWERS:
            return 0.0
        rate = len(self._answered) / ANSWER_WINDOW
        return self.callers / rate

    @asynccontextmanager
    async def caller(self, timeout: float, what: str) -> AsyncIterator[None]:
        """Count one market-data call; refuse it at once if the queue cannot finish in time."""
        if not is_bulk():
            yield
            return
        wait = self.caller_wait()
        if wait > timeout or self.callers >= self.max_calls:
            # Past max_calls every extra call slows the one event loop that also serves
            # orders: refuse it now, cheaply, rather than let it wait its turn.
            self._shed(max(wait, 1.0), timeout, what)
        self.callers += 1
        try:
            yield
        finally:
            self.callers -= 1
            self._answered.append(self.clock())

    def _free_in_window(self) -> int:
        now = self.clock()
        while self._sent and self._sent[0] <= now - 1.0:
            self._sent.popleft()
        return self.per_window - len(self._sent)

    def admit(self, timeout: float, what: str) -> None:
        """Refuse at once (``OverloadedError``) if ``what`` cannot be served within ``timeout``."""
        wait = self.estimate_wait()
        if wait + self.service_seconds <= timeout:
            return
        self._shed(wait, timeout, what)

    def _shed(self, wait: float, timeout: float, what: str) -> None:
        self.shed += 1
        retry = round(max(1.0, wait), 1)
        raise OverloadedError(
            f"{what}: the market-data queue is full ({max(self.waiting, self.callers)} waiting, "
            f"{self.inflight} open; about {wait:.1f} s to wait, more than the {timeout:g} s "
            "timeout).",
            remedy=f"Retry in about {math.ceil(retry)} s, ask for fewer symbols at once, or "
            "set QUOTE_CACHE_SECONDS so repeated quotes are served from the cache.",
            details={
                "retry_after_seconds": retry,
                "queue_waiting": self.waiting,
                "queue_open": self.inflight,
                "timeout_seconds": timeout,
            },
        )

    @asynccontextmanager
    async def slot(self, timeout: float, what: str) -> AsyncIterator[None]:
        """Admit, wait for a rate token and an open slot, then hold the slot while inside.

        An urgent caller (not inside ``market_data_call``) goes straight through: the rate
        leaves it headroom under ib_async's 45 messages per second.
        """
        if not is_bulk():
            self.note_sent()
            yield
            return
        self.admit(timeout, what)
        self.waiting += 1
        try:
            await self._slots.acquire()
            try:
                async with self._turn:
                    await self._take_token()
            except BaseException:
                self._slots.release()
                raise
        finally:
            self.waiting -= 1
        self.inflight += 1
        started = self.clock()
        try:
            yield
        finally:
            self.inflight -= 1
            self._slots.release()
            elapsed = self.clock() - started
            self.service_seconds += EWMA_WEIGHT * (elapsed - self.service_seconds)

    async def _take_token(self) -> None:
        while self._free_in_window() <= 0:
            await asyncio.sleep(max(0.001, self._sent[0] + 1.0 - self.clock()))
        self._sent.append(self.clock())

    def note_sent(self) -> None:
        """Count one more market-data message sent inside a slot (a delayed-data retry)."""
        self._free_in_window()
        self._sent.append(self.clock())
