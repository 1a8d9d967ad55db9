"""Value types the market model hands out: a quote snapshot and a historical bar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Tick:
    """A top-of-book snapshot plus the day's statistics.

    Stocks: sizes in shares (multiples of 100), ``volume`` is today's cumulative share volume.
    Forex has no trades: ``last`` is the mid rounded to the tick grid, ``last_size`` is 0 and
    ``volume`` is -1 (IB sends none; encoders should skip it). ``open``/``high``/``low`` cover
    the current session up to ``time`` (high/low sampled at minute marks plus the current
    price); ``close`` is the previous session's close. ``time`` is the whole second the
    snapshot belongs to (quotes change at most once a second).
    """

    bid: Decimal
    ask: Decimal
    last: Decimal
    bid_size: Decimal
    ask_size: Decimal
    last_size: Decimal
    volume: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    time: datetime


@dataclass(frozen=True, slots=True)
class BarData:
    """One historical bar.

    ``time`` is the aware UTC start of the bar's data (session-clipped, e.g. 09:30 ET for the
    first RTH hour bar); daily, weekly and monthly bars are stamped at UTC midnight of their
    (first) trade date. Non-TRADES bars carry ``volume``/``wap``/``count`` of -1 like IB's.
    """

    time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    wap: Decimal
    count: int
