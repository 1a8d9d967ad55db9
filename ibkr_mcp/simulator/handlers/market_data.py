"""Market data handler: snapshots, streaming ticks, delayed data, historical bars."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ibkr_mcp.simulator import outgoing as out
from ibkr_mcp.simulator._market_bars import history_start, no_data_text
from ibkr_mcp.simulator._market_parse import HMDS
from ibkr_mcp.simulator.host import Handler, Outbox, SimHost
from ibkr_mcp.simulator.incoming import (
    HistoricalReq,
    parse_head_timestamp,
    parse_historical,
    parse_mkt_data,
)
from ibkr_mcp.simulator.instruments_md import generic_ticks, option_ticks
from ibkr_mcp.simulator.limits import LINES_CODE, LINES_TEXT
from ibkr_mcp.simulator.market import MarketDataRequestError
from ibkr_mcp.simulator.wire import FieldReader

if TYPE_CHECKING:
    from ibkr_mcp.simulator.catalogue import Instrument
    from ibkr_mcp.simulator.market import Tick

#: How far behind "delayed" market data runs, as at IB.
DELAY = timedelta(minutes=15)
#: IB's answer to a reqMktData whose ticker id is already streaming.
DUPLICATE_TICKER = "Error processing request.-'bW' : cause - Duplicate ticker id"
#: (price tick, size source) for live and delayed feeds: bid, ask, last, high, low, close, open.
LIVE_TICKS = {"bid": 1, "ask": 2, "last": 4, "high": 6, "low": 7, "close": 9, "open": 14}
DELAYED_TICKS = {"bid": 66, "ask": 67, "last": 68, "high": 72, "low": 73, "close": 75, "open": 76}
SIZE_OF = {"bid": "bid_size", "ask": "ask_size", "last": "last_size"}


@dataclass
class Subscription:
    """A streaming reqMktData."""

    req_id: int
    inst: Instrument
    data_type: int
    sent: dict[int, tuple[Decimal, Decimal] | str] = field(default_factory=dict)
    generic: frozenset[str] = frozenset()
    #: False when part of the data is not subscribed (10090/10091): no price/size ticks.
    prices: bool = True


class MarketDataHandler(Handler):
    """Market data requests of one session: quote snapshots, streams and historical bars."""

    def __init__(self, host: SimHost, out: Outbox) -> None:
        super().__init__(host, out)
        self.md_type = 1
        self.streams: dict[int, Subscription] = {}
        #: Historical requests still being "worked on" (``historical_seconds``), by request id.
        self.pending_historical: dict[int, asyncio.TimerHandle] = {}

    def on_market_data_type(self, r: FieldReader) -> None:
        """reqMarketDataType: 1 live, 2 frozen, 3 delayed, 4 delayed-frozen."""
        r.int()
        kind = r.int()
        if kind not in (1, 2, 3, 4):
            self.out.error(
                -1, 321, f"Error validating request.-'bN' : cause - Invalid market data type {kind}"
            )
            return
        self.md_type = kind

    def _served_type(self, inst: Instrument) -> int:
        open_now = self.host.market.is_open(inst, self.host.clock.now())
        if self.md_type == 2:
            return 1 if open_now else 2
        if self.md_type == 4:
            return 3 if open_now else 4
        return self.md_type

    def on_mkt_data(self, r: FieldReader) -> None:
        """reqMktData: TICK_REQ_PARAMS, MARKET_DATA_TYPE, ticks, TICK_SNAPSHOT_END if snapshot."""
        req = parse_mkt_data(r)
        matches = self.host.resolve(req.contract)
        if len(matches) != 1:
            self.out.error(req.req_id, 200, "No security definition has been found for the request")
            return
        inst = matches[0]
        snapshot = req.snapshot or req.regulatory_snapshot
        if req.req_id in self.streams:
            self.out.error(req.req_id, 322, DUPLICATE_TICKER)
            return
        if not snapshot and not self.host.limits.line_available(self.host.streams_in_use()):
            self.out.error(req.req_id, LINES_CODE, LINES_TEXT)
            return
        # The login's subscriptions: 354/10089 (live, nothing), 10167 (delayed instead), 10168
        # (no delayed data either), 10090/10091 (part missing), 10197 (competing live session).
        verdict = self.host.limits.market_data(
            inst.symbol, inst.primary_exchange, live=self.md_type in (1, 2)
        )
        if verdict.error is not None:
            self.out.error(req.req_id, *verdict.error)
        if not verdict.serve:
            return
        served = self._served_type(inst)
        bbo = "" if inst.sec_type == "CASH" else "9c0001"
        self.out.send(out.tick_req_params(req.req_id, inst.min_tick, bbo), req.req_id)
        self.out.send(out.market_data_type(req.req_id, served), req.req_id)
        generic = frozenset(t.strip() for t in req.generic_ticks.split(",") if t.strip())
        sub = Subscription(req.req_id, inst, served, generic=generic, prices=verdict.prices)
        self._send_ticks(sub)
        if snapshot:
            self.out.send(out.tick_snapshot_end(req.req_id), req.req_id)
        else:
            self.streams[req.req_id] = sub

    def on_cancel_mkt_data(self, r: FieldReader) -> None:
        """cancelMktData: stop streaming (silently, as IB does)."""
        r.int()
        self.streams.pop(r.int(), None)

    def stream_updates(self) -> None:
        """Send what changed on every streaming subscription since it was last sent."""
        for sub in self.streams.values():
            self._send_ticks(sub)

    def _send_ticks(self, sub: Subscription) -> None:
        inst = sub.inst
        delayed = sub.data_type in (3, 4)
        now = self.host.clock.now()
        tick: Tick = (
            self.host.market.quote_at(inst, now - DELAY)
            if delayed
            else self.host.market.quote(inst)
        )
        ids = DELAYED_TICKS if delayed else LIVE_TICKS
        is_fx = inst.sec_type == "CASH"
        no_quote = inst.sec_type == "IND"  # an index has a level, no bid/ask
        for name, tick_type in ids.items() if sub.prices else ():
            if (is_fx and name == "last") or (no_quote and name in ("bid", "ask")):
                continue
            price: Decimal = getattr(tick, name)
            size: Decimal = getattr(tick, SIZE_OF[name]) if name in SIZE_OF else Decimal(0)
            if price <= 0 or sub.sent.get(tick_type) == (price, size):
                continue
            sub.sent[tick_type] = (price, size)
            mask = 1 if name in ("bid", "ask") else 0
            self.out.send(out.tick_price(sub.req_id, tick_type, price, size, mask), sub.req_id)
        if not is_fx and sub.prices and tick.volume >= 0:
            vol_type = 74 if delayed else 8
            volume = tick.volume / max(inst.md_size_multiplier, 1)
            if sub.sent.get(vol_type) != (volume, volume):
                sub.sent[vol_type] = (volume, volume)
                self.out.send(out.tick_size(sub.req_id, vol_type, volume), sub.req_id)
            stamp_type = 88 if delayed else 45
            stamp = str(int(tick.time.timestamp()))
            if sub.sent.get(stamp_type) != stamp:
                sub.sent[stamp_type] = stamp
                self.out.send(out.tick_string(sub.req_id, stamp_type, stamp), sub.req_id)
        if inst.sec_type == "OPT":
            for fields in option_ticks(self.host.market, sub, now - DELAY if delayed else now):
                self.out.send(fields, sub.req_id)
        if sub.generic:
            for fields in generic_ticks(self.host.market, sub, now - DELAY if delayed else now):
                self.out.send(fields, sub.req_id)

    # -- historical ------------------------------------------------------------------------------
    def on_historical(self, r: FieldReader) -> None:
        """reqHistoricalData: bars from the market model; its validation errors go back as IB's."""
        req = parse_historical(r)
        matches = self.host.resolve(req.contract)
        if len(matches) != 1:
            self.out.error(req.req_id, 200, "No security definition has been found for the request")
            return
        inst = matches[0]
        exchange = req.contract.exchange.upper()
        paced = self.host.limits.historical(
            (inst.con_id, exchange, req.end, req.duration, req.bar_size, req.what_to_show,
             req.use_rth),
            (inst.con_id, exchange, req.what_to_show),
            req.bar_size,
            req.what_to_show or "TRADES",
        )  # fmt: skip
        if paced is not None:
            self.out.error(req.req_id, *paced)
            return
        delay = self.host.limits.historical_seconds
        if delay <= 0:
            self._answer_historical(req, inst)
            return
        # A slow historical farm: the request is open (one of IB's 50) until it is answered.
        limits, client_id = self.host.limits, self.out.client_id
        limits.historical_opened(client_id, req.req_id)

        def answer() -> None:
            if self.pending_historical.pop(req.req_id, None) is not None:
                limits.historical_closed(client_id, req.req_id)
                self._answer_historical(req, inst)
                self.host.flush()

        self.pending_historical[req.req_id] = asyncio.get_running_loop().call_later(delay, answer)

    def close(self) -> None:
        """The client went away: its unanswered historical requests end with it."""
        for handle in self.pending_historical.values():
            handle.cancel()
        self.pending_historical.clear()

    def _answer_historical(self, req: HistoricalReq, inst: Instrument) -> None:
        try:
            end = parse_end(req.end, self.host.clock.now())
            bars = self.host.market.bars(
                inst,
                end=end,
                duration=req.duration,
                bar_size=req.bar_size,
                what_to_show=req.what_to_show or "TRADES",
                use_rth=req.use_rth,
            )
        except MarketDataRequestError as exc:
            self.out.error(req.req_id, exc.code, exc.message)
            return
        if not bars:
            # IB never answers an empty list: a span without bars (before the history's start,
            # a weekend) is its 162 "HMDS query returned no data".
            exchange = req.contract.exchange.upper() or inst.exchange
            what = req.what_to_show or "TRADES"
            self.out.error(req.req_id, 162, HMDS + no_data_text(inst.local_symbol, exchange, what))
            return
        daily = any(unit in req.bar_size.lower() for unit in ("day", "week", "month"))
        labels = [bar_label(b.time, daily, req.format_date) for b in bars]
        start_text = bar_label(bars[0].time, False, 1)
        end_text = bar_label(end, False, 1)
        self.out.send(
            out.historical_data(req.req_id, start_text, end_text, bars, labels), req.req_id
        )
        if req.keep_up_to_date:
            self.host.limits.historical_opened(self.out.client_id, req.req_id)

    def on_cancel_historical(self, r: FieldReader) -> None:
        """cancelHistoricalData: an unanswered or keepUpToDate request ends (silently, as IB)."""
        r.int()
        req_id = r.int()
        handle = self.pending_historical.pop(req_id, None)
        if handle is not None:
            handle.cancel()
        self.host.limits.historical_closed(self.out.client_id, req_id)

    def on_head_timestamp(self, r: FieldReader) -> None:
        """reqHeadTimeStamp: the simulated history starts ten years back (``history_start``)."""
        req = parse_head_timestamp(r)
        matches = self.host.resolve(req.contract)
        if len(matches) != 1:
            self.out.error(req.req_id, 200, "No security definition has been found for the request")
            return
        first = history_start(self.host.clock.now())
        stamp = str(int(first.timestamp())) if req.format_date == 2 else bar_label(first, False, 1)
        self.out.send(out.head_timestamp(req.req_id, stamp), req.req_id)


def bar_label(at: datetime, daily: bool, format_date: int) -> str:
    """IB's bar time text: ``yyyymmdd`` for daily bars, else ``yyyymmdd hh:mm:ss UTC`` or epoch."""
    if daily:
        return at.astimezone(UTC).strftime("%Y%m%d")
    if format_date == 2:
        return str(int(at.timestamp()))
    return out.ib_time(at.astimezone(UTC))


def parse_end(text: str, now: datetime) -> datetime:
    """Parse reqHistoricalData's endDateTime (empty means now)."""
    text = text.strip()
    if not text:
        return now
    try:
        if len(text) == 8 and text.isdigit():
            day = datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC)
            return day + timedelta(hours=23, minutes=59, seconds=59)
        if "-" in text[:9] and text[8] == "-":
            return datetime.strptime(text[:17], "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        parts = text.split()
        zone = ZoneInfo(parts[2]) if len(parts) > 2 else UTC
        stamp = datetime.strptime(parts[0] + " " + parts[1], "%Y%m%d %H:%M:%S").replace(tzinfo=zone)
        return stamp.astimezone(UTC)
    except (ValueError, IndexError, KeyError) as exc:
        raise MarketDataRequestError(
            321, f"Error validating request.-'bP' : cause - Invalid end date/time {text!r}"
        ) from exc
