"""IB's historical-data pacing rules, applied on our side before a request is sent."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Final

#: No identical request within this many seconds (IB answers 162 with a lockout otherwise).
IDENTICAL_SECONDS: Final = 15.0
#: Fewer than six requests for one contract / exchange / tick type within two seconds.
SAME_SERIES_LIMIT: Final = 5
SAME_SERIES_SECONDS: Final = 2.0
#: At most 60 requests within ten minutes.
WINDOW_LIMIT: Final = 60
WINDOW_SECONDS: Final = 600.0
#: At most 50 historical requests open at once (all bar sizes).
MAX_OPEN: Final = 50
#: IB's pacing rules apply to bars of this size or smaller.
SMALL_BAR_SECONDS: Final = 30


@dataclass
class HistoricalPacer:
    """Plans send times that keep within IB's historical pacing rules.

    ``plan`` returns how long a request must wait; ``reserve`` books that send time so
    concurrent requests see each other. Times are from ``clock`` (injectable for tests).
    """

    clock: Callable[[], float] = time.monotonic
    _all: deque[float] = field(default_factory=deque)
    _series: dict[Hashable, deque[float]] = field(default_factory=dict)
    _identical: dict[Hashable, float] = field(default_factory=dict)

    def plan(self, identical: Hashable, series: Hashable, small: bool) -> float:
        """Seconds to wait before sending (0 when it may go now)."""
        now = self.clock()
        self._forget(now)
        at = now
        if small:
            last = self._identical.get(identical)
            if last is not None:
                at = max(at, last + IDENTICAL_SECONDS)
            times = self._series.get(series)
            if times is not None and len(times) >= SAME_SERIES_LIMIT:
                at = max(at, times[-SAME_SERIES_LIMIT] + SAME_SERIES_SECONDS)
            if len(self._all) >= WINDOW_LIMIT:
                at = max(at, self._all[-WINDOW_LIMIT] + WINDOW_SECONDS)
        return at - now

    def reserve(self, identical: Hashable, series: Hashable, small: bool, wait: float) -> None:
        """Book a send ``wait`` seconds from now (call right after ``plan``)."""
        if not small:
            return
        at = self.clock() + wait
        self._identical[identical] = max(self._identical.get(identical, at), at)
        self._series.setdefault(series, deque()).append(at)
        self._all.append(at)

    def _forget(self, now: float) -> None:
        while self._all and self._all[0] <= now - WINDOW_SECONDS:
            self._all.popleft()
        for key in [k for k, t in self._series.items() if not t or t[-1] <= now - 2.0]:
            del self._series[key]
        for key in [k for k, t in self._identical.items() if t <= now - IDENTICAL_SECONDS]:
            del self._identical[key]
        for times in self._series.values():
            while times and times[0] <= now - SAME_SERIES_SECONDS:
                times.popleft()
