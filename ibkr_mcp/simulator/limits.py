"""IB's limits as IB enforces them: historical pacing, market data lines, client message rate.

Time here is a monotonic clock in seconds (injectable), not the simulated market clock: a
gateway's pacing counts real requests in real time, also while the market clock is frozen.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ibkr_mcp.simulator._error_texts import (
    DELAYED_AVAILABLE,
    SIMULTANEOUS_HISTORICAL_TEXT,
    ib_text,
)

PACING_CODE = 162
PACING_TEXT = ib_text(PACING_CODE) or ""
NOT_SUBSCRIBED_CODE, DELAYED_INSTEAD_CODE = 354, 10167
NOT_SUBSCRIBED_TEXT = ib_text(NOT_SUBSCRIBED_CODE) or ""
DELAYED_INSTEAD_TEXT = ib_text(DELAYED_INSTEAD_CODE) or ""
LINES_CODE = 101
LINES_TEXT = ib_text(LINES_CODE) or ""
RATE_CODE = 100
RATE_TEXT = ib_text(RATE_CODE) or ""
#: Bar sizes IB calls "small" (30 seconds or less): the hard pacing rules apply to them only.
SMALL_BARS = frozenset({"1 secs", "5 secs", "10 secs", "15 secs", "30 secs"})
#: IB: no identical request within 15 s; not 6+ for one contract/exchange/tick type in 2 s;
#: not more than 60 requests in any 10 minutes (BID_ASK counts twice).
IDENTICAL_WINDOW = 15.0
SAME_CONTRACT_WINDOW, SAME_CONTRACT_MAX = 2.0, 5
TEN_MINUTES, TEN_MINUTE_MAX = 600.0, 60
#: Simultaneous open historical requests per gateway; the next one gets 322 with IB's text.
MAX_OPEN_HISTORICAL = 50
SIMULTANEOUS_CODE = 322
#: Market data subscription gaps (per login, so per simulated gateway), IB's code for a live
#: request: none (354; delayed → 10167), api (10089: a subscription, but not for the API;
#: delayed → 10167), partial (10090) and partial-api (10091): part of the data is missing,
#: subscription-independent ticks still stream, no delayed data for it.
GapKind = Literal["none", "api", "partial", "partial-api"]
GAP_KINDS: tuple[GapKind, ...] = ("none", "api", "partial", "partial-api")
NO_DELAYED_CODE, COMPETING_CODE = 10168, 10197
#: Messages a client may send per second (and in one burst); beyond it IB answers error 100.
MESSAGE_RATE = 50
#: A client still over the rate this long after its first violation is disconnected.
RATE_DISCONNECT_AFTER = 2.0

Verdict = Literal["ok", "reject", "disconnect"]


@dataclass(frozen=True)
class DataVerdict:
    """What a reqMktData gets under the login's subscriptions.

    ``error``: IB's (code, text) to send first, if any; ``serve``: whether the request then
    streams at all; ``prices``: whether it carries price/size ticks (false: only the
    subscription-independent ones).
    """

    error: tuple[int, str] | None = None
    serve: bool = True
    prices: bool = True


@dataclass
class _Rate:
    """A token bucket: ``rate`` tokens per second, at most ``rate`` saved up (one second's worth).

    A bucket rather than a strict sliding window because the gateway sees arrival times: a
    client pacing its sends at 45 per second (ib_async) may see two of its batches arrive a
    little closer than one second apart, and IB does not punish that.
    """

    tokens: float
    last: float
    first_violation: float | None = None
    last_violation: float = field(default=float("-inf"))


class Limits:
    """The limits of one simulated gateway (shared by all its clients)."""

    def __init__(
        self,
        pacing: bool = True,
        market_data_lines: int = 100,
        message_rate: int = MESSAGE_RATE,
        monotonic: Callable[[], float] = time.monotonic,
        no_live_data: Iterable[str] = (),
        gaps: Mapping[str, GapKind] | None = None,
        delayed_data: bool = True,
        historical_seconds: float = 0.0,
    ) -> None:
        self.pacing = pacing
        #: Symbols this "account" has no live market data subscription for (354 / 10167).
        self.no_live_data = frozenset(s.upper() for s in no_live_data)
        #: symbol → which subscription the login lacks for it (see ``GapKind``).
        self.gaps: dict[str, GapKind] = {s: "none" for s in self.no_live_data}
        self.gaps.update({k.upper(): v for k, v in (gaps or {}).items()})
        #: Whether the login may see delayed data (false: 10168 instead of delayed ticks).
        self.delayed_data = delayed_data
        #: A live session of the same user elsewhere takes live data (10197); a drill sets it.
        self.competing_session = False
        #: How long historical answers take (0: at once); open ones count toward the 50.
        self.historical_seconds = historical_seconds
        self.market_data_lines = market_data_lines
        self.message_rate = message_rate
        self.now = monotonic
        self._identical: dict[Hashable, float] = {}
        self._same: dict[Hashable, deque[float]] = {}
        self._all: deque[float] = deque()
        self._rates: dict[int, _Rate] = {}
        # Open requests per client (keepUpToDate ones, and unanswered ones under
        # historical_seconds): open until answered, cancelled or the client goes.
        self._open_bars: dict[int, set[int]] = {}

    @property
    def open_historical(self) -> int:
        """Historical requests open now, across clients (IB admits 50)."""
        return sum(len(ids) for ids in self._open_bars.values())

    def historical_opened(self, client_id: int, req_id: int) -> None:
        """A keepUpToDate request got its bars and stays open."""
        self._open_bars.setdefault(client_id, set()).add(req_id)

    def historical_closed(self, client_id: int, req_id: int) -> None:
        """cancelHistoricalData: the request's place is free again."""
        self._open_bars.get(client_id, set()).discard(req_id)

    def reset(self) -> None:
        """Forget every counter (a gateway restart)."""
        self._identical.clear()
        self._same.clear()
        self._all.clear()
        self._rates.clear()
        self._open_bars.clear()

    # -- historical pacing -----------------------------------------------------------------------
    def historical(
        self, identity: Hashable, contract_key: Hashable, bar_size: str, what_to_show: str
    ) -> tuple[int, str] | None:
        """Admit one historical request, or IB's error (code, text) for breaking a rule.

        Args:
            identity: everything that makes two requests identical (contract, end, duration,
                bar size, what to show, RTH).
            contract_key: contract, exchange and tick type (what_to_show).
            bar_size: the request's bar size ("1 secs" … "1 month").
            what_to_show: TRADES, MIDPOINT, BID_ASK …
        """
        if self.open_historical >= MAX_OPEN_HISTORICAL:
            return SIMULTANEOUS_CODE, SIMULTANEOUS_HISTORICAL_TEXT
        if not self.pacing or bar_size.strip().lower() not in SMALL_BARS:
            return None
        now = self.now()
        last = self._identical.get(identity)
        if last is not None and now - last < IDENTICAL_WINDOW:
            return PACING_CODE, PACING_TEXT
        same = self._same.setdefault(contract_key, deque())
        _expire(same, now, SAME_CONTRACT_WINDOW)
        if len(same) >= SAME_CONTRACT_MAX:
            return PACING_CODE, PACING_TEXT
        _expire(self._all, now, TEN_MINUTES)
        weight = 2 if what_to_show.upper() == "BID_ASK" else 1
        if len(self._all) + weight > TEN_MINUTE_MAX:
            return PACING_CODE, PACING_TEXT
        self._identical[identity] = now
        same.append(now)
        self._all.extend([now] * weight)
        if len(self._identical) > 4 * TEN_MINUTE_MAX:
            cutoff = now - IDENTICAL_WINDOW
            self._identical = {k: t for k, t in self._identical.items() if t >= cutoff}
        return None

    # -- market data subscriptions ---------------------------------------------------------------
    def market_data(self, symbol: str, listing: str, live: bool) -> DataVerdict:
        """IB's answer to a reqMktData for ``symbol`` (``live``: market data type 1 or 2).

        Args:
            symbol: the instrument's symbol.
            listing: its primary exchange (IB names it in 10089's text).
            live: whether live (or frozen) data was asked for, not delayed.
        """
        if live and self.competing_session:
            return DataVerdict((COMPETING_CODE, ib_text(COMPETING_CODE) or ""), serve=False)
        kind = self.gaps.get(symbol.upper())
        if kind is None:
            return DataVerdict()
        if kind in ("partial", "partial-api"):
            code = 10090 if kind == "partial" else 10091
            return DataVerdict((code, ib_text(code) or ""), prices=False)
        if not live:
            if not self.delayed_data:
                return DataVerdict((NO_DELAYED_CODE, ib_text(NO_DELAYED_CODE) or ""), serve=False)
            return DataVerdict((DELAYED_INSTEAD_CODE, DELAYED_INSTEAD_TEXT))
        if kind == "none":
            return DataVerdict((NOT_SUBSCRIBED_CODE, NOT_SUBSCRIBED_TEXT), serve=False)
        suffix = DELAYED_AVAILABLE if self.delayed_data else ""
        text = f"{ib_text(10089)}{suffix}{symbol.upper()} {listing}/TOP/ALL"
        return DataVerdict((10089, text), serve=False)

    # -- market data lines -----------------------------------------------------------------------
    def line_available(self, in_use: int) -> bool:
        """Whether one more streaming subscription fits (snapshots never hold a line)."""
        return in_use < self.market_data_lines

    # -- message rate ------------------------------------------------------------------------------
    def message(self, client_id: int) -> Verdict:
        """Count one incoming message of ``client_id``: ok, reject (error 100) or disconnect."""
        if self.message_rate <= 0:
            return "ok"
        now = self.now()
        cap = float(self.message_rate)
        rate = self._rates.setdefault(client_id, _Rate(tokens=cap, last=now))
        rate.tokens = min(cap, rate.tokens + (now - rate.last) * cap)
        rate.last = now
        if rate.first_violation is not None and now - rate.last_violation > 1.0:
            rate.first_violation = None  # a quiet second ends an episode
        if rate.tokens >= 1.0:
            rate.tokens -= 1.0
            return "ok"
        rate.last_violation = now
        if rate.first_violation is None:
            rate.first_violation = now
        elif now - rate.first_violation > RATE_DISCONNECT_AFTER:
            return "disconnect"
        return "reject"

    def forget_client(self, client_id: int) -> None:
        """A client disconnected: its rate window and open requests go with it."""
        self._rates.pop(client_id, None)
        self._open_bars.pop(client_id, None)


def _expire(times: deque[float], now: float, window: float) -> None:
    while times and now - times[0] >= window:
        times.popleft()
