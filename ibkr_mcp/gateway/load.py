"""Admission for market-data requests: a message rate, open-request slots, and shedding."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final

from ibkr_mcp.errors import OverloadedError

#: Weight of the newest sample in the running average of one request's service time.
EWMA_WEIGHT: Final = 0.2
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
        clock: Monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        *,
        rate: float,
        max_inflight: int,
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
        self._sent: deque[float] = deque()
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
        self.shed += 1
        retry = round(max(1.0, wait), 1)
        raise OverloadedError(
            f"{what}: the market-data queue is full ({self.waiting} waiting, {self.inflight} "
            f"open; about {wait:.1f} s to wait, more than the {timeout:g} s timeout).",
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
        """Admit, wait for a rate token and an open slot, then hold the slot while inside."""
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
