"""Trading calendar of the simulated market: sessions, anchors and IB hours strings.

All instants are integer epoch seconds (UTC). Weekdays are trading days; there is no holiday
calendar. Stocks (and options) trade 04:00-20:00 US/Eastern with regular hours 09:30-16:00;
indices 09:30-16:00; futures 18:00 the evening before to 17:00 (CME Globex); IDEALPRO forex
trades from 17:15 ET on the previous day to 17:00 ET on the trade date (so Sunday 17:15 to
Friday 17:00 with a daily 15-minute break). Every trade date has one *anchor*: the last second
before 16:00 ET (stocks, the official close) or 17:00 ET (forex, the session end).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

ET = ZoneInfo("America/New_York")
FX = "CASH"
FUT = "FUT"
IND = "IND"
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Session:
    """One trade date's session, as epoch seconds (end is exclusive)."""

    day: date
    start: int
    end: int
    rth_start: int
    rth_end: int
    #: The anchor second: its price is the day's close.
    close_k: int


def et_epoch(day: date, hour: int, minute: int) -> int:
    """Epoch seconds of a wall-clock time in US/Eastern."""
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=ET).timestamp())


def et_date(k: int) -> date:
    """US/Eastern calendar date of an epoch second."""
    return datetime.fromtimestamp(k, ET).date()


def is_trading_day(day: date) -> bool:
    """Weekdays trade; no holidays are modelled."""
    return day.weekday() < 5


def next_trading_day(day: date) -> date:
    """The first trading day strictly after ``day``."""
    day += _ONE_DAY
    while not is_trading_day(day):
        day += _ONE_DAY
    return day


def prev_trading_day(day: date) -> date:
    """The last trading day strictly before ``day``."""
    day -= _ONE_DAY
    while not is_trading_day(day):
        day -= _ONE_DAY
    return day


def utc_midnight(day: date) -> datetime:
    """Aware UTC midnight of a date (how daily bars are stamped)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@lru_cache(maxsize=16384)
def session(kind: str, day: date) -> Session | None:
    """The session of trade date ``day`` for a sec type, or None on weekends."""
    if not is_trading_day(day):
        return None
    if kind == FX:
        start = et_epoch(day - _ONE_DAY, 17, 15)
        end = et_epoch(day, 17, 0)
        return Session(day, start, end, start, end, end - 1)
    rth_end = et_epoch(day, 16, 0)
    if kind == FUT:  # CME Globex: 18:00 the evening before to 17:00, settling at 16:00
        start = et_epoch(day - _ONE_DAY, 18, 0)
        return Session(day, start, et_epoch(day, 17, 0), et_epoch(day, 9, 30), rth_end, rth_end - 1)
    if kind == IND:  # an index is computed in regular hours only
        start = et_epoch(day, 9, 30)
        return Session(day, start, rth_end, start, rth_end, rth_end - 1)
    return Session(
        day, et_epoch(day, 4, 0), et_epoch(day, 20, 0), et_epoch(day, 9, 30), rth_end, rth_end - 1
    )


def _anchor_boundary(kind: str, day: date) -> int:
    """First second after the anchor of ``day`` (16:00 or 17:00 ET)."""
    return et_epoch(day, 17 if kind == FX else 16, 0)


@lru_cache(maxsize=65536)
def _segment_in_hour(kind: str, hour: int) -> tuple[int, int, date, date]:
    # Anchor boundaries fall on whole UTC hours, so one lookup serves a whole hour.
    k = hour * 3600
    day = et_date(k)
    if not (is_trading_day(day) and k < _anchor_boundary(kind, day)):
        day = next_trading_day(day)
    prev = prev_trading_day(day)
    return _anchor_boundary(kind, prev), _anchor_boundary(kind, day), prev, day


def segment_for(kind: str, k: int) -> tuple[int, int, date, date]:
    """The anchor-to-anchor segment holding second ``k``.

    Returns:
        ``(t0, t1, d0, d1)``: the segment covers ``t0 <= k < t1``; ``t0 - 1`` is the anchor
        second of trade date ``d0`` and ``t1 - 1`` the anchor second of ``d1``.
    """
    return _segment_in_hour(kind, k // 3600)


@lru_cache(maxsize=65536)
def _session_in_quarter(kind: str, quarter: int) -> Session:
    # Session starts fall on whole quarter hours, so one lookup serves a quarter hour.
    k = quarter * 900
    day = et_date(k) + _ONE_DAY
    while True:
        found = session(kind, day)
        if found is not None and found.start <= k:
            return found
        day -= _ONE_DAY


def session_at(kind: str, k: int) -> Session:
    """The latest session that started at or before second ``k`` (it may have ended)."""
    return _session_in_quarter(kind, k // 900)


def sessions_from(kind: str, first: date, last: date) -> list[Session]:
    """Sessions of trade dates ``first`` to ``last`` inclusive, in order."""
    out: list[Session] = []
    day = first
    while day <= last:
        found = session(kind, day)
        if found is not None:
            out.append(found)
        day += _ONE_DAY
    return out


def is_open(kind: str, k: int) -> bool:
    """Whether second ``k`` lies inside a session."""
    found = session_at(kind, k)
    return found.start <= k < found.end


@lru_cache(maxsize=256)  # option chains ask for the same week thousands of times
def hours_string(kind: str, day: date, *, liquid: bool, days: int = 7) -> str:
    """IB-style ``tradingHours``/``liquidHours`` for ``days`` calendar days from ``day``.

    Stocks: ``20261125:0400-20261125:2000;20261128:CLOSED;...``. Forex sessions start the
    evening before their trade date (``20261124:1715-20261125:1700``); Saturday is CLOSED and
    Sunday has no entry of its own because Monday's session opens on it. Futures and indices
    are written in their exchange's zone, US/Central (``20261124:1700-20261125:1600`` for
    Globex, ``0830-1500`` regular hours); options trade regular hours only.
    """
    parts: list[str] = []
    for offset in range(days):
        current = day + timedelta(days=offset)
        stamp = current.strftime("%Y%m%d")
        if kind == FX:
            if current.weekday() == 6:
                continue
            if current.weekday() == 5:
                parts.append(f"{stamp}:CLOSED")
                continue
            before = (current - _ONE_DAY).strftime("%Y%m%d")
            parts.append(f"{before}:1715-{stamp}:1700")
            continue
        if not is_trading_day(current):
            parts.append(f"{stamp}:CLOSED")
        elif kind == FUT and not liquid:
            # CME Globex in the exchange's zone (US/Central): 17:00 the evening before to 16:00.
            before = (current - _ONE_DAY).strftime("%Y%m%d")
            parts.append(f"{before}:1700-{stamp}:1600")
        elif kind in (FUT, IND):
            parts.append(f"{stamp}:0830-{stamp}:1500")  # 09:30-16:00 New York, in US/Central
        elif liquid or kind == "OPT":
            parts.append(f"{stamp}:0930-{stamp}:1600")
        else:
            parts.append(f"{stamp}:0400-{stamp}:2000")
    return ";".join(parts)
