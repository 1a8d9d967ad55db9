"""Snapshot quotes (with the live-or-delayed policy, concurrent and paced) and historical bars."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from ib_async.objects import BarDataList
from ib_async.ticker import Ticker
from ib_async.util import formatIBDatetime
from ib_async.wrapper import RequestError
from loguru import logger

from ibkr_mcp.errors import IbkrMcpError, InvalidInputError, MarketDataError
from ibkr_mcp.gateway import bar_params, convert, ib_errors
from ibkr_mcp.gateway.connection import IbConnection
from ibkr_mcp.gateway.contracts import ContractResolver
from ibkr_mcp.models import Bar, Contract, ContractRef, Quote

#: Snapshot requests sent together; ib_async throttles at 45 messages per second.
QUOTE_CHUNK: Final = 40
#: IB's market data type ids.
LIVE: Final = 1
DELAYED: Final = 3


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
    """

    def __init__(self, conn: IbConnection, contracts: ContractResolver) -> None:
        self.conn = conn
        self.contracts = contracts
        self._quote_cache: dict[int, tuple[float, Quote]] = {}
        self._type_sent: int | None = None
        conn.on_reset(self.reset)

    def reset(self) -> None:
        """Forget cached quotes and the session's market data type (after a reconnect / 1101)."""
        self._quote_cache.clear()
        self._type_sent = None

    # --- quotes ---------------------------------------------------------------------------

    def _first_type(self) -> int:
        policy = self.conn.settings.MARKET_DATA_TYPE
        if policy == "live_or_delayed":
            return LIVE
        return convert.MARKET_DATA_IDS[policy]

    def _cached(self, con_id: int) -> Quote | None:
        ttl = self.conn.settings.QUOTE_CACHE_SECONDS
        hit = self._quote_cache.get(con_id) if ttl > 0 else None
        if hit is not None and time.monotonic() - hit[0] <= ttl:
            return hit[1]
        return None

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
            await asyncio.wait_for(snap.future, limit)
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
                exc.code, exc.message, req_id=exc.reqId, context=what,
                extra={"symbol": snap.contract.symbol, "con_id": snap.contract.con_id},
            ) from None  # fmt: skip
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
            self._quote_cache[snap.contract.con_id] = (time.monotonic(), quote)
        return quote

    async def _quote_contract(self, contract: Contract, first: _Snapshot | None = None) -> Quote:
        """Finish (or start) one snapshot, retrying as delayed when the policy allows it."""
        snap = first if first is not None else self._send(contract, self._first_type())
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
            logger.debug("{}: live data unavailable (IB {}); using delayed", contract.symbol, code)
            await self.conn.ensure_connected()
            return await self._finish(self._send(contract, DELAYED))

    async def quote(self, ref: ContractRef) -> Quote:
        """One snapshot quote for ``ref``."""
        contract = await self.contracts.resolve(ref)
        cached = self._cached(contract.con_id)
        if cached is not None:
            return cached
        await self.conn.ensure_connected()
        return await self._quote_contract(contract)

    async def quotes(self, refs: Sequence[ContractRef]) -> list[Quote | Exception]:
        """Snapshot quotes for ``refs`` in order; failures come back as exceptions in place.

        Contracts are resolved concurrently, then each chunk of up to ``QUOTE_CHUNK`` snapshot
        requests is sent back to back and awaited together.
        """
        results: list[Quote | Exception] = [
            MarketDataError("not requested") for _ in refs
        ]  # every slot is overwritten below
        resolved = await asyncio.gather(
            *(self.contracts.resolve(ref) for ref in refs), return_exceptions=True
        )
        todo: list[tuple[int, Contract]] = []
        for index, outcome in enumerate(resolved):
            if isinstance(outcome, Contract):
                cached = self._cached(outcome.con_id)
                if cached is not None:
                    results[index] = cached
                else:
                    todo.append((index, outcome))
            else:
                results[index] = _as_error(outcome)
        for start in range(0, len(todo), QUOTE_CHUNK):
            chunk = todo[start : start + QUOTE_CHUNK]
            try:
                await self.conn.ensure_connected()
            except IbkrMcpError as exc:
                for index, _ in chunk:
                    results[index] = exc
                continue
            first_type = self._first_type()
            snaps = [self._send(contract, first_type) for _, contract in chunk]
            outcomes = await asyncio.gather(
                *(self._quote_contract(s.contract, s) for s in snaps), return_exceptions=True
            )
            for (index, _), result in zip(chunk, outcomes, strict=True):
                results[index] = result if isinstance(result, Quote) else _as_error(result)
        return results

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
        contract = await self.contracts.resolve(ref)
        ib = self.conn.ib
        client: Any = ib.client
        wrapper: Any = ib.wrapper
        ib_contract = convert.contract_to_ib(contract)
        end_text = formatIBDatetime(end.astimezone(UTC)) if end is not None else ""
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
