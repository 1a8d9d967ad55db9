"""Historical bars cut from the same price path the live quotes come from.

Bars shorter than an hour are exact at one-second resolution: open is the first second's
price, close the last second's (so a 1-min bar's close is the last trade of that minute) and
high/low the extremes of every second. Hour bars and longer sample the path at minute marks
(plus their exact open and close) to stay fast over long durations. Daily closes are the
daily anchors. All prices pass through the same rounding as quotes.

The simulated history has a start (``history_start``, what reqHeadTimeStamp answers), as every
instrument's has at IB: a span before it holds no bars, and IB answers a query that finds no
bars with error 162 "HMDS query returned no data" (``no_data_text``), never with an empty list.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from ibkr_mcp.simulator._market_calendar import Session, et_date, et_epoch, utc_midnight
from ibkr_mcp.simulator._market_path import InstrumentPath, volume_fraction
from ibkr_mcp.simulator._market_types import BarData

_MINUS_ONE = Decimal(-1)
_WAP_STEP = Decimal("0.0001")

#: How far back the simulated history goes: ten years (reqHeadTimeStamp's answer).
HISTORY_DAYS: Final = 3652
#: IB keeps bars of 30 s or less for six months only (its "Historical Data Limitations").
SMALL_BAR_SECONDS: Final = 30
SMALL_BAR_HISTORY_DAYS: Final = 183
#: IB's names of the data types in "HMDS query returned no data: AAPL@SMART Trades".
_DATA_NAMES: Final[dict[str, str]] = {
    "TRADES": "Trades", "ADJUSTED_LAST": "Trades", "MIDPOINT": "Midpoint", "BID": "Bid",
    "ASK": "Ask", "BID_ASK": "Bid_Ask",
}  # fmt: skip


def history_start(now: datetime, bar_seconds: int | None = None) -> datetime:
    """First instant with bars: the regular open ten years back (six months for small bars).

    Args:
        now: The simulator's clock (the history moves with it, as IB's does with the day).
        bar_seconds: Bar size in seconds; bars of ``SMALL_BAR_SECONDS`` or less go back
            ``SMALL_BAR_HISTORY_DAYS`` only. ``None``: the instrument's head timestamp.
    """
    small = bar_seconds is not None and bar_seconds <= SMALL_BAR_SECONDS
    days = SMALL_BAR_HISTORY_DAYS if small else HISTORY_DAYS
    return (now - timedelta(days=days)).replace(hour=14, minute=30, second=0, microsecond=0)


def no_data_text(local_symbol: str, exchange: str, what_to_show: str) -> str:
    """IB's 162 text for a historical query that found no bars (after ``HMDS``'s prefix)."""
    what = _DATA_NAMES.get(what_to_show.upper(), what_to_show.title())
    return f"HMDS query returned no data: {local_symbol}@{exchange} {what}"


# Per-minute extremes: (max log price, min log price, spread in ticks).
Part = tuple[float, float, int]


def last_ticks(x: float, inv_tick: float) -> int:
    """Trade price in ticks for log mid ``x`` (monotone in ``x``, never below one tick)."""
    return max(1, round(math.exp(x) * inv_tick))


def bid_ticks(x: float, inv_tick: float, spread: int) -> int:
    """Bid in ticks for log mid ``x`` and a spread of ``spread`` ticks (monotone in ``x``)."""
    return max(1, round(math.exp(x) * inv_tick - spread / 2))


class PriceGrid:
    """Converts tick counts to Decimal prices on an instrument's grid."""

    __slots__ = ("_wap_units", "half", "inv", "tick")

    def __init__(self, min_tick: Decimal) -> None:
        self.tick = min_tick
        self.half = min_tick / 2
        self.inv = float(1 / min_tick)
        # Ticks per 0.0001, the resolution of IB's average price.
        self._wap_units = float(min_tick / _WAP_STEP)

    def wap(self, high: int, low: int, close: int) -> Decimal:
        """Typical price (h + l + c) / 3 of tick counts, to 4 decimals, within [low, high]."""
        units = self._wap_units
        value = round((high + low + close) * units / 3)
        value = min(round(high * units), max(round(low * units), value))
        return Decimal(value).scaleb(-4)

    def price(self, half_ticks: int) -> Decimal:
        """Decimal price of a count of half ticks (midpoints may sit on half ticks)."""
        if half_ticks % 2 == 0:
            return Decimal(half_ticks // 2) * self.tick
        return Decimal(half_ticks) * self.half


class BarBuilder:
    """Builds bars of one kind for one instrument.

    Args:
        path: The instrument's price path.
        grid: Its price grid.
        what: Validated ``whatToShow`` (ADJUSTED_LAST already mapped to TRADES).
        fx: Whether the instrument is forex (selects no-volume output).
        use_rth: Regular trading hours only (stocks).
    """

    def __init__(
        self, path: InstrumentPath, grid: PriceGrid, what: str, *, fx: bool, use_rth: bool
    ) -> None:
        self.path = path
        self.grid = grid
        self.what = what
        self.rth = use_rth and not fx
        self.trades = what == "TRADES"
        self._minute_key = -1
        self._minute_data: tuple[float, float, list[int]] = (0.0, 0.0, [])

    def window(self, sess: Session) -> tuple[int, int]:
        """The part of a session these bars cover."""
        return (sess.rth_start, sess.rth_end) if self.rth else (sess.start, sess.end)

    # --- intraday -------------------------------------------------------------------------

    def intraday(
        self, sessions: Iterable[Session], begin: int, end: int, size: int
    ) -> list[BarData]:
        """Bars of ``size`` seconds whose start lies in ``[begin, end)``, clipped to sessions."""
        fine = size < 3600
        out: list[BarData] = []
        for sess in sessions:
            start, stop = self.window(sess)
            stop = min(stop, end)
            if stop <= start or stop <= begin:
                continue
            day_volume = self.path.day_volume(sess.day) if self.trades else 0.0
            origin = et_epoch(et_date(start), 0, 0)
            t = origin + (start - origin) // size * size
            while t < stop:
                s, e = max(t, start), min(t + size, stop)
                t += size
                if s < begin:
                    continue
                if fine and self.trades:
                    out.append(self._trade_bar(s, e, sess, day_volume, *self._fine_trades(s, e)))
                    continue
                x_open, x_close, parts, mean = (self._fine if fine else self._coarse)(s, e)
                out.append(self._bar(s, e, e - 1, sess, day_volume, (x_open, x_close), parts, mean))
        return out

    def _minute(self, m: int) -> tuple[float, float, list[int]]:
        if m != self._minute_key:  # sub-minute bars reuse one minute many times
            self._minute_key = m
            self._minute_data = self.path.minute(m)
        return self._minute_data

    def _fine_trades(self, s: int, e: int) -> tuple[float, float, float, float]:
        # The hot path (default TRADES bars under an hour): open, close, max, min of log mid.
        x_open = x_close = x_max = x_min = 0.0
        m_first, m_last = s // 60, (e - 1) // 60
        for m in range(m_first, m_last + 1):
            a, c, ys = self._minute(m)
            base = 60 * m
            if s > base or e < base + 60:
                ys = ys[max(0, s - base) : min(60, e - base)]
            if m == m_first:
                x_open = a + c * ys[0]
                x_max = x_min = x_open
            if m == m_last:
                x_close = a + c * ys[-1]
            y_max, y_min = max(ys), min(ys)
            hi, lo = a + c * y_max, a + c * y_min
            x_max = hi if hi > x_max else x_max
            x_min = lo if lo < x_min else x_min
        return x_open, x_close, x_max, x_min

    def _fine(self, s: int, e: int) -> tuple[float, float, list[Part], float]:
        parts: list[Part] = []
        total = 0.0
        x_open = x_close = 0.0
        spread = self.path.spread
        m_first, m_last = s // 60, (e - 1) // 60
        for m in range(m_first, m_last + 1):
            a, c, ys = self._minute(m)
            base = 60 * m
            lo = s - base if s > base else 0
            hi = e - base if e < base + 60 else 60
            chunk = ys if lo == 0 and hi == 60 else ys[lo:hi]
            if m == m_first:
                x_open = a + c * chunk[0]
            if m == m_last:
                x_close = a + c * chunk[-1]
            sp = 0 if self.trades else spread(base)
            parts.append((a + c * max(chunk), a + c * min(chunk), sp))
            if self.what == "BID_ASK":
                total += a * len(chunk) + c * sum(chunk)
        return x_open, x_close, parts, total / (e - s)

    def _coarse(self, s: int, e: int) -> tuple[float, float, list[Part], float]:
        path = self.path
        x_open, x_close = path.x_at(s), path.x_at(e - 1)
        hi, lo, total, n = path.mark_stats(-(-s // 60) * 60, e)
        hi, lo = max(hi, x_open, x_close), min(lo, x_open, x_close)
        # Long bars take the spread of their opening minute for their extremes.
        parts: list[Part] = [(hi, lo, 0 if self.trades else path.spread(s))]
        return x_open, x_close, parts, (total + x_open + x_close) / (n + 2)

    # --- daily and longer -----------------------------------------------------------------

    def daily(self, sessions: Iterable[Session], begin: int, end: int) -> list[BarData]:
        """One bar per session whose (RTH) start lies in ``[begin, end)``; close = anchor."""
        path = self.path
        out: list[BarData] = []
        for sess in sessions:
            start, stop = self.window(sess)
            if not begin <= start < end:
                continue
            stop = min(stop, end)
            x_open = path.x_memo(start)
            # The anchor second's price is the day's close once it has printed.
            close_k = sess.close_k if stop > sess.close_k else stop - 1
            x_close = path.x_memo(close_k)
            hi, lo, total, n = path.mark_stats(start, stop)
            hi, lo = max(hi, x_open, x_close), min(lo, x_open, x_close)
            # Long bars take the spread of their opening minute for their extremes.
            parts: list[Part] = [(hi, lo, 0 if self.trades else path.spread(start))]
            mean = (total + x_open + x_close) / (n + 2)
            day_volume = path.day_volume(sess.day) if self.trades else 0.0
            ends = (x_open, x_close)
            bar = self._bar(start, stop, close_k, sess, day_volume, ends, parts, mean)
            out.append(_restamp(bar, utc_midnight(sess.day)))
        return out

    # --- one bar --------------------------------------------------------------------------

    def _bar(
        self,
        s: int,
        e: int,
        k_close: int,
        sess: Session,
        day_volume: float,
        ends: tuple[float, float],
        parts: list[Part],
        mean: float,
    ) -> BarData:
        o, h, lo, c = self._half_ticks(ends, parts, mean, s, k_close)
        h = max(h, o, c)
        lo = min(lo, o, c)
        price = self.grid.price
        high, low, close = price(h), price(lo), price(c)
        if self.trades:
            shares = max(
                1,
                math.floor(day_volume * volume_fraction(sess, e))
                - math.floor(day_volume * volume_fraction(sess, s)),
            )
            wap = self.grid.wap(h // 2, lo // 2, c // 2)
            volume, count = Decimal(shares), max(1, round(shares / 180))
        else:
            volume, wap, count = _MINUS_ONE, _MINUS_ONE, -1
        return BarData(
            datetime.fromtimestamp(s, UTC), price(o), high, low, close, volume, wap, count
        )

    def _trade_bar(
        self,
        s: int,
        e: int,
        sess: Session,
        day_volume: float,
        x_open: float,
        x_close: float,
        x_max: float,
        x_min: float,
    ) -> BarData:
        inv = self.grid.inv
        o, c = last_ticks(x_open, inv), last_ticks(x_close, inv)
        h, lo = last_ticks(x_max, inv), last_ticks(x_min, inv)
        h = h if h > o else o
        h = h if h > c else c
        lo = lo if lo < o else o
        lo = lo if lo < c else c
        shares = max(
            1,
            math.floor(day_volume * volume_fraction(sess, e))
            - math.floor(day_volume * volume_fraction(sess, s)),
        )
        tick = self.grid.tick
        return BarData(
            datetime.fromtimestamp(s, UTC),
            Decimal(o) * tick,
            Decimal(h) * tick,
            Decimal(lo) * tick,
            Decimal(c) * tick,
            Decimal(shares),
            self.grid.wap(h, lo, c),
            max(1, round(shares / 180)),
        )

    def _half_ticks(
        self, ends: tuple[float, float], parts: list[Part], mean: float, k_open: int, k_close: int
    ) -> tuple[int, int, int, int]:
        x_open, x_close = ends
        inv = self.grid.inv
        what = self.what
        if what == "TRADES":
            return (
                2 * last_ticks(x_open, inv),
                2 * last_ticks(max(p[0] for p in parts), inv),
                2 * last_ticks(min(p[1] for p in parts), inv),
                2 * last_ticks(x_close, inv),
            )
        spread = self.path.spread
        s_open, s_close = spread(k_open), spread(k_close)
        if what == "BID_ASK":
            return (
                2 * bid_ticks(mean, inv, s_open),
                max(2 * (bid_ticks(mx, inv, sp) + sp) for mx, _, sp in parts),
                min(2 * bid_ticks(mn, inv, sp) for _, mn, sp in parts),
                2 * (bid_ticks(mean, inv, s_close) + s_close),
            )
        # BID, ASK and MIDPOINT are bid + offset, with offset 0, the spread or half of it.
        offset: Callable[[int], int] = {
            "BID": lambda sp: 0,
            "ASK": lambda sp: 2 * sp,
            "MIDPOINT": lambda sp: sp,
        }[what]
        return (
            2 * bid_ticks(x_open, inv, s_open) + offset(s_open),
            max(2 * bid_ticks(mx, inv, sp) + offset(sp) for mx, _, sp in parts),
            min(2 * bid_ticks(mn, inv, sp) + offset(sp) for _, mn, sp in parts),
            2 * bid_ticks(x_close, inv, s_close) + offset(s_close),
        )


def _restamp(bar: BarData, at: datetime) -> BarData:
    return BarData(at, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.wap, bar.count)


def aggregate(daily: list[BarData], key: Callable[[datetime], tuple[int, int]]) -> list[BarData]:
    """Merge daily bars into weekly/monthly ones (stamped at their first day)."""
    out: list[BarData] = []
    group: list[BarData] = []
    for bar in [*daily, None]:
        if group and (bar is None or key(bar.time) != key(group[0].time)):
            out.append(_merge(group))
            group = []
        if bar is not None:
            group.append(bar)
    return out


def _merge(group: list[BarData]) -> BarData:
    first, last = group[0], group[-1]
    if first.count < 0:
        volume, wap, count = _MINUS_ONE, _MINUS_ONE, -1
    else:
        volume = sum((b.volume for b in group), Decimal(0))
        wap = (sum((b.wap * b.volume for b in group), Decimal(0)) / volume).quantize(_WAP_STEP)
        count = sum(b.count for b in group)
    high = max(b.high for b in group)
    low = min(b.low for b in group)
    wap = wap if count < 0 else min(high, max(low, wap))
    return BarData(first.time, first.open, high, low, last.close, volume, wap, count)
