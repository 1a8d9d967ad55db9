"""Deterministic simulated market: quotes and historical bars for catalogue instruments.

Every price is a pure function of ``(seed, conId, second)``: the same seed and clock give the
same quotes and bars whatever was asked before, and any instant is computable directly
(``_market_path`` explains the construction). Calendar: weekdays only, no holidays; stocks
trade 04:00-20:00 US/Eastern (regular hours 09:30-16:00), IDEALPRO forex Sunday 17:15 to
Friday 17:00 ET with a daily 17:00-17:15 break. With ``trading_hours=False`` (the default)
quotes keep moving around the clock and ``is_open`` is always true; bars always follow the
calendar. Daily bars are stamped at UTC midnight of their trade date and close at the daily
anchor (the 16:00 ET official close for stocks, 17:00 ET for forex).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from ibkr_mcp.simulator import _market_calendar as cal
from ibkr_mcp.simulator._market_bars import (
    BarBuilder,
    PriceGrid,
    aggregate,
    bid_ticks,
    history_start,
    last_ticks,
)
from ibkr_mcp.simulator._market_parse import (
    HMDS,
    MarketDataRequestError,
    check_what_to_show,
    duration_count,
    duration_unit,
    parse_bar_size,
    parse_duration,
)
from ibkr_mcp.simulator._market_path import InstrumentPath, make_key, volume_fraction
from ibkr_mcp.simulator._market_types import BarData, Tick
from ibkr_mcp.simulator.catalogue import Catalogue, Instrument
from ibkr_mcp.simulator.clock import Clock
from ibkr_mcp.simulator.options_market import option_bars, option_quote

__all__ = [
    "MAX_BARS",
    "BarData",
    "MarketDataRequestError",
    "MarketModel",
    "Tick",
    "parse_bar_size",
    "parse_duration",
]

#: Requests spanning more bars than this are refused like IB's "Time length exceed max.".
MAX_BARS: Final = 10_000
_MINUS_ONE = Decimal(-1)
_ZERO = Decimal(0)
_DAY = 86_400


def _second(at: datetime) -> int:
    """Whole epoch second of an aware datetime (naive ones are refused)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"market times must be timezone-aware, got naive {at.isoformat()}")
    return math.floor(at.timestamp())


@dataclass(frozen=True, slots=True)
class _DayInfo:
    next_start: int
    prev_close: Decimal
    volume: float


class _State:
    """Per-instrument model state: the path plus memoised per-session facts."""

    __slots__ = ("days", "fx", "grid", "inst", "lot", "path")

    def __init__(self, inst: Instrument, key: bytes) -> None:
        self.inst = inst
        self.fx = inst.sec_type == "CASH"
        self.grid = PriceGrid(inst.min_tick)
        self.path = InstrumentPath(
            key,
            inst.path_id or inst.con_id,  # all months of a future share one path
            inst.sec_type,
            float(inst.base_price),
            inst.annual_volatility,
            inst.avg_daily_volume,
        )
        # Deeper books for busier names: 100-share lots scaled by liquidity.
        self.lot = 100 * (1 + inst.avg_daily_volume // 50_000_000)
        self.days: dict[int, _DayInfo] = {}

    def day(self, sess: cal.Session) -> _DayInfo:
        info = self.days.get(sess.start)
        if info is None:
            kind = self.inst.sec_type
            nxt = cal.session(kind, cal.next_trading_day(sess.day))
            before = cal.session(kind, cal.prev_trading_day(sess.day))
            assert nxt is not None and before is not None  # trading days have sessions
            prev = self.path.x_memo(before.close_k)
            info = _DayInfo(
                nxt.start,
                Decimal(last_ticks(prev, self.grid.inv)) * self.grid.tick,
                self.path.day_volume(sess.day),
            )
            if len(self.days) > 256:
                self.days.clear()
            self.days[sess.start] = info
        return info


class MarketModel:
    """Quotes and bars for every instrument of a catalogue.

    Args:
        catalogue: The instruments (any ``Instrument`` works, catalogued or not).
        seed: Selects the market's history; same seed, same prices.
        clock: Supplies "now" for ``quote()`` and caps ``bars()`` at the present.
        trading_hours: Keep exchange hours in ``is_open`` (False: always open).
    """

    def __init__(
        self, catalogue: Catalogue, *, seed: int, clock: Clock, trading_hours: bool = False
    ) -> None:
        self.catalogue = catalogue
        self.seed = seed
        self.clock = clock
        self.trading_hours = trading_hours
        self._key = make_key(seed)
        self._states: dict[int, _State] = {}

    def _state(self, inst: Instrument) -> _State:
        state = self._states.get(inst.con_id)
        if state is None or (state.inst is not inst and state.inst != inst):
            state = self._states[inst.con_id] = _State(inst, self._key)
        return state

    # --- quotes ---------------------------------------------------------------------------

    def quote(self, instrument: Instrument) -> Tick:
        """The quote at ``clock.now()``."""
        return self.quote_at(instrument, self.clock.now())

    def quote_at(self, instrument: Instrument, at: datetime) -> Tick:
        """The quote at an instant (aware datetime; the whole second containing it).

        Args:
            instrument: What to quote.
            at: When.

        Returns:
            Bid/ask on the tick grid 1-3 ticks apart with the last trade between them,
            sizes, and the session's open/high/low/volume plus the previous close.
        """
        if instrument.sec_type == "OPT":
            return option_quote(self, instrument, at)
        k = _second(at)
        st = self._state(instrument)
        path, grid = st.path, st.grid
        inv, tick = grid.inv, grid.tick
        x = path.x_at(k)
        spread = path.spread(k)
        bid = bid_ticks(x, inv, spread)
        sess = cal.session_at(instrument.sec_type, k)
        info = st.day(sess)
        marks = path.session_marks(sess, info.next_start, k)
        idx = (k - sess.start) // 60
        hi = marks.pmax[idx]
        lo = marks.pmin[idx]
        raw = path.sizes(k)
        if st.fx:
            bid_size = Decimal(1_000_000 * (1 + raw[0] % 20))
            ask_size = Decimal(1_000_000 * (1 + raw[1] % 20))
            last_size, volume = _ZERO, _MINUS_ONE
        else:
            bid_size = Decimal(st.lot * (1 + raw[0] % 12))
            ask_size = Decimal(st.lot * (1 + raw[1] % 12))
            last_size = Decimal(100 * (1 + raw[2] % 5))
            volume = (
                _MINUS_ONE  # an index has no volume of its own
                if instrument.sec_type == "IND"
                else Decimal(math.floor(info.volume * volume_fraction(sess, k)))
            )
        return Tick(
            bid=Decimal(bid) * tick,
            ask=Decimal(bid + spread) * tick,
            last=Decimal(last_ticks(x, inv)) * tick,
            bid_size=bid_size,
            ask_size=ask_size,
            last_size=last_size,
            volume=volume,
            open=Decimal(last_ticks(marks.marks[0], inv)) * tick,
            high=Decimal(last_ticks(hi if hi > x else x, inv)) * tick,
            low=Decimal(last_ticks(lo if lo < x else x, inv)) * tick,
            close=info.prev_close,
            time=datetime.fromtimestamp(k, UTC),
        )

    def mid_at(self, instrument: Instrument, at: datetime) -> Decimal:
        """Midpoint of bid and ask at an instant (may sit on a half tick, as IB's do)."""
        if instrument.sec_type == "OPT":
            quote = option_quote(self, instrument, at)
            return (quote.bid + quote.ask) / 2
        k = _second(at)
        st = self._state(instrument)
        spread = st.path.spread(k)
        bid = bid_ticks(st.path.x_at(k), st.grid.inv, spread)
        return st.grid.price(2 * bid + spread)

    def reference_price(self, instrument: Instrument, at: datetime) -> Decimal:
        """The previous session's close as of ``at`` (what option strikes are listed around)."""
        return self.quote_at(instrument, at).close

    def is_open(self, instrument: Instrument, at: datetime) -> bool:
        """Whether the instrument trades at ``at`` (always True unless ``trading_hours``)."""
        if not self.trading_hours:
            return True
        return cal.is_open(instrument.sec_type, _second(at))

    # --- historical bars ------------------------------------------------------------------

    def bars(
        self,
        instrument: Instrument,
        *,
        end: datetime,
        duration: str,
        bar_size: str,
        what_to_show: str = "TRADES",
        use_rth: bool = False,
    ) -> list[BarData]:
        """Historical bars ending at ``end`` (capped at ``clock.now()``), as IB returns them.

        Durations in seconds, weeks, months (30 days) and years (365 days) are calendar
        spans; ``"N D"`` means the last N sessions. Bars whose (session-clipped) start lies
        in the span are returned, the last one possibly partial.

        Args:
            instrument: What to chart.
            end: End of the span (aware).
            duration: IB duration string, e.g. ``"1 D"``.
            bar_size: IB bar size, e.g. ``"1 min"``.
            what_to_show: TRADES, MIDPOINT, BID, ASK, BID_ASK or ADJUSTED_LAST (= TRADES).
            use_rth: Stocks: regular hours 09:30-16:00 ET only.

        Returns:
            Bars in time order (empty when the span holds no session or lies before the
            history's start, ``history_start``: IB has no bars there).

        Raises:
            MarketDataRequestError: 321 for an invalid bar size, duration or whatToShow;
                162 for TRADES on forex or more than ``MAX_BARS`` bars.
        """
        size = parse_bar_size(bar_size)
        span = parse_duration(duration)
        what = check_what_to_show(what_to_show)
        what = "TRADES" if what == "ADJUSTED_LAST" else what
        fx = instrument.sec_type == "CASH"
        if fx and what == "TRADES":
            raise MarketDataRequestError(
                162,
                f"{HMDS}No data of type TRADES is available for the exchange "
                f"'{instrument.exchange}' and the security type 'Forex' and '{duration}' and "
                f"'{bar_size}'",
            )
        # Long bars are built from daily sessions, so those count against the limit too.
        if span / size > MAX_BARS or (size.days >= 1 and span.days > MAX_BARS):
            raise MarketDataRequestError(162, f"{HMDS}Time length exceed max.")
        now = self.clock.now()
        first_k = _second(history_start(now, int(size.total_seconds())))
        # Ends later than now are answered up to now, as at IB; ends before the history's
        # start find nothing (and no instant before it is ever computed: no pre-1970 bars).
        end_k = min(_second(end), _second(now))
        if end_k <= first_k:
            return []
        if instrument.sec_type == "OPT":
            und = self.catalogue.by_con_id(instrument.under_con_id)
            if und is None:
                raise MarketDataRequestError(162, f"{HMDS}No data for this option.")
            under = self.bars(
                und, end=end, duration=duration, bar_size=bar_size, use_rth=use_rth,
                what_to_show="TRADES" if und.sec_type != "CASH" else "MIDPOINT",
            )  # fmt: skip
            return option_bars(self, instrument, under, what)
        st = self._state(instrument)
        builder = BarBuilder(st.path, st.grid, what, fx=fx, use_rth=use_rth)
        kind = instrument.sec_type
        if duration_unit(duration) == "D":
            begin = _begin_of_sessions(kind, builder, end_k, duration_count(duration))
        else:
            begin = end_k - int(span.total_seconds())
        begin = max(begin, first_k)  # a span reaching back past the start: what exists
        one_day = timedelta(days=1)
        sessions = cal.sessions_from(
            kind, cal.et_date(begin) - one_day, cal.et_date(end_k) + one_day
        )
        seconds = int(size.total_seconds())
        if seconds < _DAY:
            return builder.intraday(sessions, begin, end_k, seconds)
        daily = builder.daily(sessions, begin, end_k)
        if seconds == _DAY:
            return daily
        if seconds == 7 * _DAY:
            return aggregate(daily, _iso_week)
        return aggregate(daily, _month)


def _begin_of_sessions(kind: str, builder: BarBuilder, end_k: int, count: int) -> int:
    """Start of the ``count``-th latest session that began before ``end_k``."""
    day = cal.et_date(end_k) + timedelta(days=1)
    begin = end_k
    found = 0
    while found < count:
        sess = cal.session(kind, day)
        if sess is not None:
            start = builder.window(sess)[0]
            if start < end_k:
                found += 1
                begin = start
        day -= timedelta(days=1)
    return begin


def _iso_week(at: datetime) -> tuple[int, int]:
    iso = at.date().isocalendar()
    return iso.year, iso.week


def _month(at: datetime) -> tuple[int, int]:
    return at.year, at.month
