"""The broker seam: a Protocol every layer above ``gateway/`` talks to, in domain models only."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Final, Protocol, runtime_checkable

from ibkr_mcp.gateway.records import OrderRecord
from ibkr_mcp.models import (
    AccountSummary,
    Bar,
    Contract,
    ContractDetails,
    ContractRef,
    Fill,
    GatewayStatus,
    OptionChain,
    OrderInfo,
    OrderRequest,
    PnL,
    Position,
    Quote,
    WhatIf,
)

#: Called for every order status change the broker reports (for the audit trail).
OrderStatusListener = Callable[[OrderInfo], Awaitable[None] | None]
#: Called for every fill, and again when its commission arrives.
FillListener = Callable[[Fill], Awaitable[None] | None]


@runtime_checkable
class Gateway(Protocol):
    """Everything the tools need from a broker. Implementations raise ``errors.IbkrMcpError``."""

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up right now."""
        ...

    async def start(self) -> None:
        """Begin connecting in the background (returns at once; retries with backoff)."""
        ...

    async def close(self) -> None:
        """Disconnect and stop retrying."""
        ...

    async def ensure_connected(self) -> None:
        """Connect now if needed; raise ``GatewayUnavailableError`` with a remedy if impossible."""
        ...

    async def status(self) -> GatewayStatus:
        """Connection state, server time and accounts (never raises for a missing gateway)."""
        ...

    def managed_accounts(self) -> tuple[str, ...]:
        """Accounts the connected gateway manages (empty when disconnected)."""
        ...

    async def resolve_contract(self, ref: ContractRef) -> Contract:
        """Resolve to exactly one contract (cached); ambiguous → ``AmbiguousContractError``."""
        ...

    async def option_chains(self, underlying: Contract) -> list[OptionChain]:
        """Option parameters (expirations, strikes) of ``underlying`` on every exchange."""
        ...

    async def search_contracts(self, pattern: str) -> list[Contract]:
        """Contracts whose symbol or name matches ``pattern``."""
        ...

    async def contract_details(self, ref: ContractRef) -> list[ContractDetails]:
        """Full details of every contract matching ``ref``."""
        ...

    async def quote(self, ref: ContractRef) -> Quote:
        """A snapshot quote, labelled live / delayed / frozen with its timestamp."""
        ...

    async def quotes(self, refs: Sequence[ContractRef]) -> list[Quote | Exception]:
        """Snapshot quotes requested concurrently (paced); per-symbol errors are returned."""
        ...

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
        ...

    async def account_summary(self, account: str) -> AccountSummary:
        """Headline account values."""
        ...

    async def positions(self, account: str) -> list[Position]:
        """Positions with market value and unrealized PnL."""
        ...

    async def pnl(self, account: str) -> PnL:
        """Daily / unrealized / realized PnL."""
        ...

    async def open_orders(self) -> list[OrderInfo]:
        """Open orders of every client (``reqAllOpenOrders``)."""
        ...

    async def completed_orders(self) -> list[OrderInfo]:
        """Orders that reached a final state today."""
        ...

    async def order_status(self, order_id: int) -> OrderInfo:
        """One order by id (open or completed); ``OrderNotFoundError`` if unknown."""
        ...

    async def order_records(self) -> list[OrderRecord]:
        """Open orders of every client and the day's completed orders, as compact records."""
        ...

    async def fills_by_ref(self, order_ref: str) -> list[Fill]:
        """Today's fills of the orders whose ``orderRef`` is ``order_ref``."""
        ...

    async def executions(self, account: str | None = None) -> list[Fill]:
        """Today's fills with commissions."""
        ...

    async def what_if(self, order: OrderRequest) -> WhatIf:
        """Margin and commission impact of ``order`` without placing it."""
        ...

    async def place_order(self, order: OrderRequest) -> OrderInfo:
        """Send ``order`` and return its first acknowledged state."""
        ...

    async def place_bracket(self, orders: list[OrderRequest]) -> list[OrderInfo]:
        """Send a parent and its children as one bracket (whole or not at all)."""
        ...

    async def modify_order(self, order_id: int, order: OrderRequest) -> OrderInfo:
        """Change a working order in place; ``OrderRejectedError`` if it is done."""
        ...

    async def cancel_order(self, order_id: int) -> OrderInfo:
        """Request cancellation and return the order's state afterwards."""
        ...

    async def global_cancel(self) -> tuple[list[OrderInfo], list[OrderInfo]]:
        """IB's global cancel: every open order of every client; (working before, still open)."""
        ...

    async def find_orders_by_ref(self, order_ref: str) -> list[OrderInfo]:
        """Open and completed orders whose ``orderRef`` equals ``order_ref`` (reconciliation)."""
        ...

    def add_order_status_listener(self, listener: OrderStatusListener) -> None:
        """Register a callback for order status changes."""
        ...

    def add_fill_listener(self, listener: FillListener) -> None:
        """Register a callback for fills and commission reports."""
        ...


#: Magnitudes from here on are IB's "unset" sentinels (``1.797e308``), never real numbers.
_SENTINEL_FROM: Final = Decimal("1e300")


def decimal_or_none(value: float | int | str | Decimal | None) -> Decimal | None:
    """Convert a broker number to ``Decimal``; IB's "unset" sentinels become ``None``."""
    if type(value) is float:  # the common case, every quote field: no exception handling
        if not math.isfinite(value) or abs(value) >= 1e300:
            return None
        return Decimal(repr(value))  # the shortest text that round-trips (as str() gives)
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    if not number.is_finite() or abs(number) >= _SENTINEL_FROM:
        return None
    return number
