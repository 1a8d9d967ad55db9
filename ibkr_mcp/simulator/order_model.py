"""What the order engine keeps per order and per fill, and the events it emits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from ibkr_mcp.simulator.accounts import ZERO

if TYPE_CHECKING:
    from ibkr_mcp.simulator.catalogue import Instrument
    from ibkr_mcp.simulator.incoming_order import OrderFields

#: Statuses after which an order never changes again.
DONE = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
EventKind = Literal["open_order", "order_status", "execution", "commission", "error"]


@dataclass
class SimFill:
    """One execution."""

    exec_id: str
    order: SimOrder
    time: datetime
    shares: Decimal
    price: Decimal
    cum_qty: Decimal
    avg_price: Decimal
    commission: Decimal
    commission_currency: str
    realized_pnl: Decimal | None

    @property
    def side(self) -> str:
        """IB's execution side: BOT or SLD."""
        return "BOT" if self.order.action == "BUY" else "SLD"


@dataclass
class SimOrder:
    """An order as the simulated gateway knows it (every order ever received, incl. whatIf).

    ``triggered`` is set once a conditional type (stop, if-touched, trailing) fired;
    ``trail_stop`` is the current stop of a trailing order; ``held`` marks an attached child
    waiting for its parent to fill; ``transmitted`` is false while a ``transmit=False`` chain
    waits for its last order.
    """

    fields: OrderFields
    client_id: int
    perm_id: int
    account: str
    instrument: Instrument | None
    created: datetime
    status: str = "PendingSubmit"
    filled: Decimal = ZERO
    avg_fill_price: Decimal = ZERO
    last_fill_price: Decimal = ZERO
    fills: list[SimFill] = field(default_factory=list)
    completed_time: datetime | None = None
    completed_status: str = ""
    reject_code: int = 0
    reject_reason: str = ""
    triggered: bool = False
    trail_stop: Decimal | None = None
    held: bool = False
    transmitted: bool = True
    fill_value: Decimal = ZERO
    commission_paid: Decimal = ZERO

    @property
    def order_id(self) -> int:
        """The client's order id."""
        return self.fields.order_id

    @property
    def action(self) -> str:
        """BUY or SELL."""
        return self.fields.action

    @property
    def is_buy(self) -> bool:
        """Whether this order buys."""
        return self.fields.action == "BUY"

    @property
    def what_if(self) -> bool:
        """Whether this was a what-if preview (never live)."""
        return self.fields.what_if

    @property
    def remaining(self) -> Decimal:
        """Quantity still to fill."""
        return self.fields.total_quantity - self.filled

    @property
    def is_live(self) -> bool:
        """Working at the simulated exchange (held children included)."""
        return not self.what_if and self.status in ("PreSubmitted", "Submitted")

    @property
    def is_done(self) -> bool:
        """Filled, cancelled or inactive: never changes again."""
        return self.status in DONE


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """Something a client must hear about, in IB's order: see ``Engine.place``."""

    kind: EventKind
    order: SimOrder
    fill: SimFill | None = None
    code: int = 0
    text: str = ""


@dataclass(frozen=True, slots=True)
class WhatIfResult:
    """Margin and commission impact of a what-if order (account currency)."""

    init_before: Decimal
    maint_before: Decimal
    equity_before: Decimal
    init_after: Decimal
    maint_after: Decimal
    equity_after: Decimal
    commission: Decimal
    currency: str
