"""``IBGateway``: the ib_async implementation of the ``Gateway`` Protocol."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from ib_async import PnL as IbPnL
from loguru import logger

from ibkr_mcp.config import Settings
from ibkr_mcp.errors import AccountNotManagedError, IbkrMcpError
from ibkr_mcp.gateway import convert, options
from ibkr_mcp.gateway.base import FillListener, OrderStatusListener
from ibkr_mcp.gateway.connection import IbConnection
from ibkr_mcp.gateway.contracts import ContractResolver
from ibkr_mcp.gateway.market_data import MarketData
from ibkr_mcp.gateway.notices import Notice
from ibkr_mcp.gateway.orders import OrderService
from ibkr_mcp.gateway.pnl_single import PositionPnLs
from ibkr_mcp.gateway.records import OrderRecord
from ibkr_mcp.models import (
    AccountSummary,
    Bar,
    Contract,
    ContractDetails,
    ContractRef,
    Fill,
    GatewayStatus,
    IbNotice,
    OptionChain,
    OrderInfo,
    OrderRequest,
    PnL,
    Position,
    Quote,
    WhatIf,
)


class IBGateway:
    """The broker seam over ib_async: one ``IB``, one event loop, only async requests.

    ``start()`` connects in the background and keeps reconnecting; every method that needs
    the broker first tries one immediate connect and otherwise raises
    ``GatewayUnavailableError`` with a remedy, so the server answers even with no gateway.

    Args:
        settings: Connection, timeout and market data settings.
        host: Overrides ``settings.IBKR_HOST``.
        port: Overrides ``settings.IBKR_PORT``.
        client_id: Overrides ``settings.IBKR_CLIENT_ID``.
        quote_clock: Monotonic clock of the quote cache (tests inject one).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        host: str | None = None,
        port: int | None = None,
        client_id: int | None = None,
        quote_clock: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self.conn = IbConnection(settings, host=host, port=port, client_id=client_id)
        self.contracts = ContractResolver(self.conn)
        if quote_clock is None:
            self.market_data = MarketData(self.conn, self.contracts)
        else:
            self.market_data = MarketData(self.conn, self.contracts, clock=quote_clock)
        self.orders = OrderService(self.conn)
        self._pnl: dict[str, IbPnL] = {}
        self._position_pnl = PositionPnLs(self.conn)
        self.conn.on_reset(self._pnl.clear)
        self.conn.on_resubscribe(self._resubscribe)

    @property
    def ib(self) -> Any:
        """The underlying ib_async ``IB`` (for diagnostics; not part of the Protocol)."""
        return self.conn.ib

    # --- connection -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up right now."""
        return self.conn.connected

    async def start(self) -> None:
        """Begin connecting in the background (returns at once; retries with backoff)."""
        await self.conn.start()

    async def close(self) -> None:
        """Disconnect and stop retrying."""
        await self.conn.close()

    async def ensure_connected(self) -> None:
        """Connect now if needed; raise ``GatewayUnavailableError`` with a remedy if impossible."""
        await self.conn.ensure_connected()

    async def status(self) -> GatewayStatus:
        """Connection state, server time and accounts (never raises for a missing gateway)."""
        conn = self.conn
        connected = conn.connected
        server_time: datetime | None = None
        server_version: int | None = None
        if conn.ib.isConnected() and not conn.hung:
            server_version = conn.ib.client.serverVersion()
            try:
                async with conn.request_lock("currentTime"):
                    raw = await conn.call(
                        conn.ib.reqCurrentTimeAsync,
                        what="server time",
                        timeout=min(2.0, self.settings.IBKR_REQUEST_TIMEOUT),
                    )
                server_time = convert.aware_utc(raw)
            except IbkrMcpError as exc:
                logger.debug("status: no server time ({})", exc)
        return GatewayStatus(
            connected=connected,
            broker=conn.broker if conn.ib.isConnected() else None,
            host=conn.host,
            port=conn.port,
            client_id=conn.client_id,
            server_version=server_version,
            server_time=server_time,
            accounts=self.managed_accounts(),
            market_data_type=self.settings.MARKET_DATA_TYPE,
            last_error=conn.last_error,
            state=conn.state,
            last_notice=_notice(conn.last_notice),
            farms_down=tuple(f"{kind}:{name}" for kind, name in conn.farms_down),
            reconnects=conn.reconnects,
            queues=self.market_data.queue_depths(),
        )

    def on_connected(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` in the background after every (re)connect (reconciliation)."""
        self.conn.on_connected(callback)

    def broker_snapshot(self) -> tuple[list[OrderInfo], list[Fill]]:
        """Orders (open and completed) and today's executions as read at the last connect.

        ib_async fetches them while connecting; executions found that way raise no fill event,
        so whatever happened while disconnected is only visible here.
        """
        ib = self.conn.ib
        orders = [convert.order_info(t) for t in ib.trades() if not t.order.whatIf]
        fills = [convert.fill_from_ib(f) for f in ib.fills()]
        return orders, fills

    def _resubscribe(self) -> None:
        """After 1101 IB has dropped every subscription: ask again for each one we keep."""
        ib = self.conn.ib
        accounts = list(self._pnl)
        self._pnl.clear()
        for account in accounts:
            ib.cancelPnL(account)
            self._pnl[account] = ib.reqPnL(account)
        managed = ib.managedAccounts()
        if managed:
            client: Any = ib.client
            # ib_async subscribed account updates of one account at connect: renew it.
            client.reqAccountUpdates(True, managed[0])
        logger.info("re-requested {} PnL and 1 account subscription after 1101", len(accounts))

    def managed_accounts(self) -> tuple[str, ...]:
        """Accounts the connected gateway manages (empty when disconnected)."""
        if not self.conn.ib.isConnected():
            return ()
        return tuple(self.conn.ib.managedAccounts())

    async def _account(self, account: str) -> None:
        await self.conn.ensure_connected()
        managed = self.managed_accounts()
        if managed and account not in managed:
            raise AccountNotManagedError(
                f"Account {account} is not managed by the connected gateway.",
                remedy=f"Use one of: {', '.join(managed)}.",
                details={"account": account, "managed_accounts": list(managed)},
            )

    # --- contracts ------------------------------------------------------------------------

    async def resolve_contract(self, ref: ContractRef) -> Contract:
        """Resolve to exactly one contract (cached); ambiguous → ``AmbiguousContractError``."""
        return await self.contracts.resolve(ref)

    async def option_chains(self, underlying: Contract) -> list[OptionChain]:
        """Option parameters (expirations, strikes) of ``underlying`` on every exchange."""
        await self.conn.ensure_connected()
        return await options.option_chains(self.conn, underlying)

    async def search_contracts(self, pattern: str) -> list[Contract]:
        """Contracts whose symbol or name matches ``pattern``."""
        return await self.contracts.search(pattern)

    async def contract_details(self, ref: ContractRef) -> list[ContractDetails]:
        """Full details of every contract matching ``ref``."""
        return await self.contracts.details(ref)

    # --- market data ----------------------------------------------------------------------

    async def quote(self, ref: ContractRef) -> Quote:
        """A snapshot quote, labelled live / delayed / frozen with its timestamp."""
        return await self.market_data.quote(ref)

    async def quotes(self, refs: Sequence[ContractRef]) -> list[Quote | Exception]:
        """Snapshot quotes requested concurrently (paced); per-symbol errors are returned."""
        return await self.market_data.quotes(refs)

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
        """Historical bars; ``duration``/``bar_size`` are IB's strings (``"5 D"``, ``"1 day"``)."""
        return await self.market_data.bars(
            ref,
            duration=duration,
            bar_size=bar_size,
            what_to_show=what_to_show,
            use_rth=use_rth,
            end=end,
        )

    # --- account --------------------------------------------------------------------------

    async def account_summary(self, account: str) -> AccountSummary:
        """Headline account values (summary tags, completed by account updates)."""
        await self._account(account)
        ib = self.conn.ib
        summary = await self.conn.call(
            lambda: ib.accountSummaryAsync(account), what=f"account summary of {account}"
        )
        return convert.account_summary(account, [*summary, *ib.accountValues(account)])

    async def positions(self, account: str) -> list[Position]:
        """Positions (avg cost) merged with portfolio valuations (price, value, PnL)."""
        await self._account(account)
        ib = self.conn.ib
        async with self.conn.request_lock("positions"):
            raw = await self.conn.call(ib.reqPositionsAsync, what="positions")
        held = [p for p in raw if p.account == account and p.position]
        if held and not ib.portfolio(account):
            # ib_async subscribes to portfolio updates of a single account at connect; IB
            # allows one such subscription, so switch it to the account asked about.
            async with self.conn.request_lock("accountValues"):
                await self.conn.call(
                    lambda: ib.reqAccountUpdatesAsync(account), what=f"portfolio of {account}"
                )
        portfolio = {item.contract.conId: item for item in ib.portfolio(account)}
        out: list[Position] = []
        for pos in held:
            kind = convert.sec_type(pos.contract.secType)
            if kind is None:
                continue
            item = portfolio.get(pos.contract.conId)
            out.append(
                Position(
                    account=account,
                    symbol=pos.contract.symbol,
                    con_id=pos.contract.conId,
                    sec_type=kind,
                    currency=pos.contract.currency,
                    quantity=convert.num(pos.position) or Decimal(0),
                    avg_cost=convert.num(pos.avgCost) or Decimal(0),
                    market_price=convert.num(item.marketPrice) if item else None,
                    market_value=convert.num(item.marketValue) if item else None,
                    unrealized_pnl=convert.num(item.unrealizedPNL) if item else None,
                    realized_pnl=convert.num(item.realizedPNL) if item else None,
                )
            )
        return sorted(out, key=lambda p: (p.symbol, p.con_id))

    async def pnl(self, account: str) -> PnL:
        """Daily / unrealized / realized PnL from a kept-open ``reqPnL`` subscription."""
        await self._account(account)
        ib = self.conn.ib
        sub = self._pnl.get(account)
        if sub is None:
            sub = self._pnl[account] = ib.reqPnL(account)
        if not _has_value(sub):
            arrived = asyncio.Event()

            def on_pnl(update: IbPnL) -> None:
                if update is sub:
                    arrived.set()

            ib.pnlEvent += on_pnl
            try:
                await self.conn.call(arrived.wait, what=f"PnL of {account}")
            except IbkrMcpError:
                # A failed subscription is dropped so the next call asks IB again.
                if self._pnl.get(account) is sub:
                    del self._pnl[account]
                    if ib.isConnected():
                        ib.cancelPnL(account)
                raise
            finally:
                ib.pnlEvent -= on_pnl
        held = sorted(
            {(p.contract.symbol, p.contract.conId) for p in ib.positions(account) if p.position}
        )
        return PnL(
            account=account,
            daily_pnl=convert.num(sub.dailyPnL),
            unrealized_pnl=convert.num(sub.unrealizedPnL),
            realized_pnl=convert.num(sub.realizedPnL),
            positions=await self._position_pnl.of(account, held),
        )

    # --- orders ---------------------------------------------------------------------------

    async def open_orders(self) -> list[OrderInfo]:
        """Open orders of every client (``reqAllOpenOrders``)."""
        return await self.orders.open_orders()

    async def completed_orders(self) -> list[OrderInfo]:
        """Orders that reached a final state today."""
        return await self.orders.completed_orders()

    async def order_status(self, order_id: int) -> OrderInfo:
        """One order by id (open or completed); ``OrderNotFoundError`` if unknown."""
        return await self.orders.order_status(order_id)

    async def order_records(self) -> list[OrderRecord]:
        """Open orders of every client and the day's completed orders, as compact records.

        Inside an order call (``order_book_scope``) they come from the session's day book.
        """
        return await self.orders.order_records()

    async def fills_by_ref(self, order_ref: str) -> list[Fill]:
        """Today's fills of the orders whose ``orderRef`` is ``order_ref``."""
        return await self.orders.fills_by_ref(order_ref)

    async def executions(self, account: str | None = None) -> list[Fill]:
        """Today's fills with commissions."""
        if account:
            await self._account(account)
        return await self.orders.executions(account)

    async def what_if(self, order: OrderRequest) -> WhatIf:
        """Margin and commission impact of ``order`` without placing it."""
        await self._account(order.account)
        return await self.orders.what_if(order)

    async def place_order(self, order: OrderRequest) -> OrderInfo:
        """Send ``order`` and return its first acknowledged state."""
        await self._account(order.account)
        return await self.orders.place_order(order)

    async def place_bracket(self, orders: list[OrderRequest]) -> list[OrderInfo]:
        """Send a parent and its children as one IB bracket."""
        await self._account(orders[0].account)
        return await self.orders.place_bracket(orders)

    async def modify_order(self, order_id: int, order: OrderRequest) -> OrderInfo:
        """Change a working order in place."""
        return await self.orders.modify_order(order_id, order)

    async def cancel_order(self, order_id: int) -> OrderInfo:
        """Request cancellation and return the order's state afterwards."""
        return await self.orders.cancel_order(order_id)

    async def global_cancel(self) -> tuple[list[OrderInfo], list[OrderInfo]]:
        """Cancel every open order of every client (IB's global cancel); (before, still open)."""
        return await self.orders.global_cancel()

    async def find_orders_by_ref(self, order_ref: str) -> list[OrderInfo]:
        """Open and completed orders whose ``orderRef`` equals ``order_ref`` (reconciliation)."""
        return await self.orders.find_orders_by_ref(order_ref)

    def add_order_status_listener(self, listener: OrderStatusListener) -> None:
        """Register a callback for order status changes."""
        self.orders.add_order_status_listener(listener)

    def add_fill_listener(self, listener: FillListener) -> None:
        """Register a callback for fills and commission reports."""
        self.orders.add_fill_listener(listener)


def _notice(notice: Notice | None) -> IbNotice | None:
    if notice is None:
        return None
    return IbNotice(code=notice.code, message=notice.message, at=notice.at, remedy=notice.remedy)


def _has_value(pnl: IbPnL) -> bool:
    values = (pnl.dailyPnL, pnl.unrealizedPnL, pnl.realizedPnL)
    return any(isinstance(v, float) and not math.isnan(v) for v in values)
