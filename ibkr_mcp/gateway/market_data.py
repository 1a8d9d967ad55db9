"""Quotes (live-or-delayed, single flight, paced, shed when overloaded) and paced bars."""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from ib_async.objects import BarDataList
from ib_async.ticker import Ticker
from ib_async.wrapper import RequestError
from loguru import logger

from ibkr_mcp.errors import IbkrMcpError, InvalidInputError, MarketDataError, PacingLimitError
from ibkr_mcp.gateway import bar_params, convert, ib_errors, pacing
from ibkr_mcp.gateway.connection import IbConnection
from ibkr_mcp.gateway.contracts import ContractResolver
from ibkr_mcp.gateway.load import MarketDataLimiter, is_bulk, market_data_call
from ibkr_mcp.models import Bar, Contract, ContractRef, Quote

#: IB's market data type ids.
LIVE: Final = 1
DELAYED: Final = 3
#: A cached quote older than this fraction of QUOTE_CACHE_SECONDS is refreshed in the background
#: while it is still served, so a symbol asked for continuously never waits on a miss.
REFRESH_AHEAD: Final = 0.75


@dataclass
class _Snapshot:
    """One in-flight snapshot request."""

    contract: Contract
    req_id: int
    md_type: int
    ticker: Ticker
    future: asyncio.Future[object]
    codes: list[tuple[int, str]] = field(default_factory=list)


class MarketData:
    """Quotes and bars over one connection.

    Args:
        conn: The broker connection.
        contracts: Resolver used to turn refs into contracts.
        clock: Monotonic clock of the quote cache (injectable for tests).
    """

    def __init__(
        self,
        conn: IbConnection,
        contracts: ContractResolver,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn = conn
        self.contracts = contracts
        self.clock = clock
        self._quote_cache: dict[int, tuple[float, Quote]] = {}
        self._type_sent: int | None = None
        self._quoting: dict[int, asyncio.Task[Quote]] = {}
        settings = conn.settings
        self.limiter = MarketDataLimiter(
            rate=settings.MARKET_DATA_MESSAGES_PER_SECOND,
            max_inflight=settings.MARKET_DATA_MAX_INFLIGHT,
            max_calls=settings.MARKET_DATA_MAX_CALLS,
        )
        self.pacer = pacing.HistoricalPacer()
        self._bars_open = asyncio.Semaphore(pacing.MAX_OPEN)
        self._bars_waiting = 0
        self._bars_running = 0
        self._bars: dict[tuple[object, ...], tuple[float, asyncio.Task[list[Bar]]]] = {}
        conn.on_reset(self.reset)
        conn.on_resubscribe(self.reset)

    def reset(self) -> None:
        """Forget cached quotes and the session's market data type (after a reconnect / 1101)."""
        self._quote_cache.clear()
        self._type_sent = None

    def queue_depths(self) -> dict[str, int]:
        """Requests waiting and open per queue (for health and metrics)."""
        return {
            "market_data_calls": self.limiter.callers,
            "market_data_waiting": self.limiter.waiting,
            "market_data_open": self.limiter.inflight,
            "market_data_shed_total": self.limiter.shed,
            "historical_waiting": self._bars_waiting,
            "historical_open": self._bars_running,
        }

    # --- quotes ---------------------------------------------------------------------------

    def _first_type(self) -> int:
        policy = self.conn.settings.MARKET_DATA_TYPE
        if policy == "live_or_delayed":
            return LIVE
        return convert.MARKET_DATA_IDS[policy]

    def _cached(self, contract: Contract) -> Quote | None:
        """The cached quote while fresh; past REFRESH_AHEAD of its life, refresh it meanwhile."""
        ttl = self.conn.settings.QUOTE_CACHE_SECONDS
        hit = self._quote_cache.get(contract.con_id) if ttl > 0 else None
        if hit is None:
            return None
        age = self.clock() - hit[0]
        if age > ttl:
            return None
        if age >= ttl * REFRESH_AHEAD and contract.con_id not in self._quoting:
            self._refresh_ahead(contract)
        return hit[1]

    def _refresh_ahead(self, contract: Contract) -> None:
        """Start the next snapshot before the cached one expires (the single flight's task).

        It queues like any market-data request (paced, sheddable): when the gateway is down or
        the queue is full it is not started, and the cached quote is served until it expires.
        """
        if not self.conn.ib.isConnected():
            return
        try:
            self.limiter.admit(
                self.conn.settings.IBKR_REQUEST_TIMEOUT, f"quote for {contract.symbol}"
            )
        except IbkrMcpError:
            return
        with market_data_call():  # the task's context: queued and paced, never urgent
            self._start_fetch(contract)

    def _start_fetch(self, contract: Contract) -> asyncio.Task[Quote]:
        # A task of its own: a caller that gives up must not cancel the others' answer.
        task = asyncio.ensure_future(self._fetch(contract))
        self._quoting[contract.con_id] = task
        task.add_done_callback(functools.partial(self._quoted, contract.con_id))
        return task

    def _send(self, contract: Contract, md_type: int) -> _Snapshot:
        """Send one snapshot request now (synchronously, so a batch goes out back to back)."""
        ib = self.conn.ib
        client: Any = ib.client  # ib_async's low-level API is untyped
        wrapper: Any = ib.wrapper
        ib_contract = convert.contract_to_ib(contract)
        req_id = client.getReqId()
        # A private ticker per request: ib_async shares tickers per contract, which would mix
        # fields (and the market data type) of earlier requests into this snapshot.
        ticker = Ticker(contract=ib_contract, defaults=wrapper.defaults)
        ticker.marketDataType = md_type
        future: asyncio.Future[object] = wrapper.startReq(req_id, ib_contract)
        wrapper.reqId2Ticker[req_id] = ticker
        wrapper.ticker2ReqId["snapshot"][ticker] = req_id
        snap = _Snapshot(contract, req_id, md_type, ticker, future)
        self.conn.watch(req_id, lambda code, msg: snap.codes.append((code, msg)))
        if self._type_sent != md_type:
            ib.reqMarketDataType(md_type)
            self._type_sent = md_type
        client.reqMktData(req_id, ib_contract, "", True, False, [])
        return snap

    def _cleanup(self, snap: _Snapshot) -> None:
        wrapper: Any = self.conn.ib.wrapper
        self.conn.unwatch(snap.req_id)
        wrapper.reqId2Ticker.pop(snap.req_id, None)
        wrapper.endTicker(snap.ticker, "snapshot")

    async def _finish(self, snap: _Snapshot) -> Quote:
        limit = self.conn.settings.IBKR_REQUEST_TIMEOUT
        what = f"quote for {snap.contract.symbol}"
        try:
            await self.conn.guard(snap.future, limit, what)
        except TimeoutError:
            if self.conn.ib.isConnected():
                client: Any = self.conn.ib.client
                client.cancelMktData(snap.req_id)
            if not _has_prices(snap.ticker):
                extra = {"symbol": snap.contract.symbol}
                raise self.conn.timeout_error(what, limit, extra) from None
            # IB ends snapshots with missing fields only after ~11 s: what arrived is the quote.
        except RequestError as exc:
            raise ib_errors.translate(
                exc.code,
                exc.message,
                req_id=exc.reqId,
                context=what,
                extra={"symbol": snap.contract.symbol, "con_id": snap.contract.con_id},
            ) from None
        except ConnectionError as exc:
            raise self.conn.lost_error(what, exc) from None
        finally:
            self._cleanup(snap)
        kind = convert.MARKET_DATA_KINDS.get(snap.ticker.marketDataType, "live")
        if kind == "live" and any(code == 10167 for code, _ in snap.codes):
            kind = "delayed"  # IB said "displaying delayed data" without a type message
        quote = convert.quote_from_ticker(
            snap.ticker,
            snap.contract,
            kind=kind,
            source=self.conn.broker or "gateway",
            now=datetime.now(UTC),
        )
        if self.conn.settings.QUOTE_CACHE_SECONDS > 0:
            self._quote_cache[snap.contract.con_id] = (self.clock(), quote)
        return quote

    def _flag(self, quote: Quote) -> Quote:
        """Mark the quote stale while IB reports a market data farm or its servers down."""
        if self.conn.data_stale and not quote.stale:
            return quote.model_copy(update={"stale": True})
        return quote

    async def _fetch(self, contract: Contract) -> Quote:
        """One snapshot through the limiter, retrying as delayed when the policy allows it."""
        what = f"quote for {contract.symbol}"
        limit = self.conn.settings.IBKR_REQUEST_TIMEOUT
        async with self.limiter.slot(limit, what):
            await self.conn.ensure_connected()
            snap = self._send(contract, self._first_type())
            try:
                return await self._finish(snap)
            except MarketDataError as exc:
                code = exc.details.get("ib_code")
                if (
                    self.conn.settings.MARKET_DATA_TYPE != "live_or_delayed"
                    or snap.md_type != LIVE
                    or code not in ib_errors.DELAYED_FALLBACK_CODES
                ):
                    raise
            logger.debug("{}: live data unavailable; using delayed", contract.symbol)
            await self.conn.ensure_connected()
            self.limiter.note_sent()
            return await self._finish(self._send(contract, DELAYED))

    async def _quote_contract(self, contract: Contract) -> Quote:
        """Cached, or shared with an identical request in flight (single flight), or fetched."""
        cached = self._cached(contract)
        if cached is not None:
            return self._flag(cached)
        if not is_bulk():
            # An order's reference quote never waits behind a queued market-data request.
            await self.conn.ensure_connected()
            return self._flag(await self._fetch(contract))
        if contract.con_id not in self._quoting:
            # Fail fast (hung, upstream lost, overloaded) before anything is queued.
            await self.conn.ensure_connected()
        task = self._quoting.get(contract.con_id)
        if task is None:
            self.limiter.admit(
                self.conn.settings.IBKR_REQUEST_TIMEOUT, f"quote for {contract.symbol}"
            )
            task = self._start_fetch(contract)
        return self._flag(await asyncio.shield(task))

    async def settled(self) -> None:
        """Wait until no quote request is in flight (refreshes ahead of expiry included)."""
        while self._quoting:
            await asyncio.gather(*self._quoting.values(), return_exceptions=True)

    def _quoted(self, con_id: int, task: asyncio.Task[Quote]) -> None:
        if self._quoting.get(con_id) is task:
            del self._quoting[con_id]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter re-raises it

    async def _resolve(self, ref: ContractRef) -> Contract:
        """Resolve; an uncached lookup is a market-data-class message and goes through the rate."""
        cached = self.contracts.cache.get(ref)
        if cached is not None:
            return cached
        await self.conn.ensure_connected()
        async with self.limiter.slot(
            self.conn.settings.IBKR_REQUEST_TIMEOUT, f"resolving {ref.symbol}"
        ):
            return await self.contracts.resolve(ref)

    async def quote(self, ref: ContractRef) -> Quote:
        """One snapshot quote for ``ref``."""
        limit = self.conn.settings.IBKR_REQUEST_TIMEOUT
        async with self.limiter.caller(limit, f"quote for {ref.symbol}"):
            return await self._quote_contract(await self._resolve(ref))

    async def quotes(self, refs: Sequence[ContractRef]) -> list[Quote | Exception]:
        """Snapshot quotes for ``refs`` in order; failures come back as exceptions in place.

        Every symbol is resolved and quoted concurrently; the limiter paces what is sent and
        identical symbols (here or in other calls) share one request.
        """

        async def one(ref: ContractRef) -> Quote:
            return await self._quote_contract(await self._resolve(ref))

        limit = self.conn.settings.IBKR_REQUEST_TIMEOUT
        async with self.limiter.caller(limit, f"quotes for {len(refs)} symbols"):
            outcomes = await asyncio.gather(*(one(ref) for ref in refs), return_exceptions=True)
        return [o if isinstance(o, Quote) else _as_error(o) for o in outcomes]

    # --- bars -----------------------------------------------------------------------------

    async def bars(
        self,
        ref: ContractRef,
        *,
        duration: str,
        bar_size: str,
        what_to_show: str,
        use_rth: bool,
        end: datetime | None = None,
    ) -> list[Bar]:
        """Historical bars; the IB strings are validated before anything is sent."""
        duration_ib = bar_params.parse_duration(duration)
        bar_size_ib = bar_params.parse_bar_size(bar_size)
        show = bar_params.parse_what_to_show(what_to_show)
        if end is not None and end.tzinfo is None:
            raise InvalidInputError(
                "end must be timezone-aware.",
                remedy="Pass end with a UTC offset, e.g. 2024-05-01T20:00:00Z.",
                details={"errors": [{"field": "end", "message": "naive datetime"}]},
            )
        contract = await self._resolve(ref)
        size_seconds = bar_params.bar_seconds(bar_size_ib)
        small = size_seconds is not None and size_seconds <= pacing.SMALL_BAR_SECONDS
        end_text = ib_end_time(end) if end is not None else ""
        key = (contract.con_id, end_text, duration_ib, bar_size_ib, show, use_rth)
        now = time.monotonic()
        shared = self._bars.get(key)
        if shared is not None:
            # Identical requests share one answer: in flight, or succeeded within 15 s.
            at, running = shared
            fresh = now - at < pacing.IDENTICAL_SECONDS
            if not running.done() or (
                fresh and not running.cancelled() and running.exception() is None
            ):
                return list(await asyncio.shield(running))
        series = (contract.con_id, contract.exchange, show)
        wait = self.pacer.plan(key, series, small)
        limit = self.conn.settings.IBKR_REQUEST_TIMEOUT
        if wait > limit:
            raise PacingLimitError(
                f"{duration_ib} of {bar_size_ib} bars for {contract.symbol}: IB's historical "
                f"pacing rules allow this request in {wait:.1f} s, more than the {limit:g} s "
                "timeout.",
                remedy=f"Retry after {math.ceil(wait)} s, or ask for larger bars / fewer "
                "requests (IB: no identical request within 15 s, at most 5 per contract in 2 s, "
                "60 per 10 minutes for bars of 30 s or less).",
                details={"retry_after_seconds": round(wait, 1), "symbol": contract.symbol},
            )
        self.pacer.reserve(key, series, small, wait)
        task = asyncio.ensure_future(self._fetch_bars(contract, key, wait))
        self._bars[key] = (now, task)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._forget_bars(now)
        return list(await asyncio.shield(task))

    def _forget_bars(self, now: float) -> None:
        stale = [
            k
            for k, (at, t) in self._bars.items()
            if t.done() and now - at >= pacing.IDENTICAL_SECONDS
        ]
        for key in stale:
            del self._bars[key]

    async def _fetch_bars(
        self, contract: Contract, key: tuple[object, ...], wait: float
    ) -> list[Bar]:
        """Wait the paced delay and an open-request slot (IB allows 50), then send."""
        _con_id, end_text, duration_ib, bar_size_ib, show, use_rth = key
        self._bars_waiting += 1
        try:
            if wait > 0:
                await asyncio.sleep(wait)
            await self._bars_open.acquire()
        finally:
            self._bars_waiting -= 1
        self._bars_running += 1
        try:
            return await self._request_bars(
                contract, str(end_text), str(duration_ib), str(bar_size_ib), str(show),
                bool(use_rth),
            )  # fmt: skip
        finally:
            self._bars_running -= 1
            self._bars_open.release()

    async def _request_bars(
        self,
        contract: Contract,
        end_text: str,
        duration_ib: str,
        bar_size_ib: str,
        show: str,
        use_rth: bool,
    ) -> list[Bar]:
        ib = self.conn.ib
        client: Any = ib.client
        wrapper: Any = ib.wrapper
        ib_contract = convert.contract_to_ib(contract)
        req_id = 0

        def send() -> asyncio.Future[object]:
            nonlocal req_id
            req_id = client.getReqId()
            container: Any = BarDataList()  # type: ignore[no-untyped-call]
            container.reqId = req_id
            container.contract = ib_contract
            future: asyncio.Future[object] = wrapper.startReq(
                req_id, ib_contract, container=container
            )
            # formatDate=2: intraday bar times arrive as UTC epoch seconds (aware datetimes).
            client.reqHistoricalData(
                req_id, ib_contract, end_text, duration_ib, bar_size_ib, show, use_rth, 2,
                False, [],
            )  # fmt: skip
            return future

        what = f"{duration_ib} of {bar_size_ib} bars for {contract.symbol}"
        try:
            raw = await self.conn.call(send, what=what, extra={"symbol": contract.symbol})
        except IbkrMcpError as exc:
            if exc.code == "GATEWAY_TIMEOUT" and ib.isConnected() and req_id:
                client.cancelHistoricalData(req_id)
            raise
        assert isinstance(raw, list)
        return [convert.bar_from_ib(bar) for bar in raw]


def ib_end_time(end: datetime) -> str:
    """IB's ``yyyymmdd hh:mm:ss UTC`` for an aware ``end``, the year always four digits.

    ib_async's ``formatIBDatetime`` writes years before 1000 with fewer digits (``strftime``),
    a text IB refuses as malformed; in IB's form an ancient end is a valid query that IB
    answers itself (162, no data), like any end before the instrument's history.
    """
    at = end.astimezone(UTC)
    return f"{at.year:04d}{at:%m%d %H:%M:%S} UTC"


def _has_prices(ticker: Ticker) -> bool:
    return any(convert.price(value) is not None for value in (ticker.bid, ticker.ask, ticker.last))


def _as_error(outcome: BaseException | object) -> Exception:
    """Per-item failures are reported as our errors; anything else is a bug, logged as such."""
    if isinstance(outcome, IbkrMcpError):
        return outcome
    if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
        raise outcome
    logger.opt(exception=outcome if isinstance(outcome, Exception) else None).error(
        "unexpected failure while quoting"
    )
    return IbkrMcpError(f"Internal error while quoting: {outcome!r}")
