"""Domain models shared by every layer: snake_case, Decimal money, aware datetimes, frozen."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_serializer,
)

SecType = Literal["STK", "CASH", "FUT", "OPT", "IND"]
Side = Literal["BUY", "SELL"]
#: IB's ``goodTillDate`` text as we send it (UTC): written by the gateway, read back to modify.
GOOD_TILL_FORMAT: Final = "%Y%m%d %H:%M:%S UTC"
#: IB's final order statuses: an order in one of them will never trade again.
DONE_STATUSES: Final[frozenset[str]] = frozenset(
    {"Filled", "Cancelled", "ApiCancelled", "Inactive"}
)
# Extending order types means adding a literal here, its IB name in gateway/orders.py and its
# required/forbidden fields in tools/order_types.py (the schema and the validation follow).
OrderType = Literal[
    "MKT", "LMT", "STP", "STP_LMT", "TRAIL", "TRAIL_LIMIT", "MIT", "LIT", "MOC", "LOC"
]
TimeInForce = Literal["DAY", "GTC", "IOC", "FOK", "GTD", "OPG"]
OptionRight = Literal["C", "P"]
MarketDataKind = Literal["live", "frozen", "delayed", "delayed_frozen"]
BrokerKind = Literal["simulator", "gateway"]
OrderStatusName = Literal[
    "PendingSubmit",
    "PendingCancel",
    "PreSubmitted",
    "Submitted",
    "ApiPending",
    "ApiCancelled",
    "Cancelled",
    "Filled",
    "Inactive",
    "Rejected",
    "Unknown",
]


def json_number(value: Any) -> Any:
    """Decimals (also inside lists and dicts) as JSON numbers whose text is the exact value.

    An integral value becomes an ``int`` (``10``, never ``10.0``); any other a ``float``, whose
    shortest representation is the decimal's own text for the 15 significant digits prices and
    quantities use (``205.49``, not ``205.48999…``). NaN and infinities become ``None``.
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        if value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, list | tuple):
        return [json_number(v) for v in value]
    if isinstance(value, dict):
        return {k: json_number(v) for k, v in value.items()}
    return value


def _has_decimal(value: Any) -> bool:
    if isinstance(value, Decimal):
        return True
    if isinstance(value, list | tuple) and value:
        return any(isinstance(v, Decimal) for v in value)
    if isinstance(value, dict) and value:
        return any(isinstance(v, Decimal) for v in value.values())
    return False


class NumbersAsJson(BaseModel):
    """Serializes Decimal fields as exact JSON numbers (mode ``json``; Python mode keeps them)."""

    # The wildcard serializer below has no return type, so a serialization-mode JSON schema
    # (FastAPI's response models, the OpenAPI document) would lose every field's type: the
    # field types themselves describe the output (a Decimal: a number).
    model_config = ConfigDict(json_schema_mode_override="validation")

    @field_serializer("*", mode="wrap", when_used="json")
    def _decimal_numbers(self, value: Any, handler: SerializerFunctionWrapHandler) -> Any:
        if _has_decimal(value):
            return json_number(value)
        return handler(value)


class Frozen(NumbersAsJson):
    """Base for every domain model: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ContractRef(Frozen):
    """What a caller names: a symbol plus optional qualifiers (or a conId)."""

    symbol: str = Field(min_length=1, max_length=32)
    sec_type: SecType = "STK"
    exchange: str = "SMART"
    currency: str = "USD"
    primary_exchange: str | None = None
    con_id: int | None = None
    #: OPT: YYYYMMDD; FUT: YYYYMM or YYYYMMDD (none: the front month).
    expiry: str | None = None
    strike: Decimal | None = None
    right: OptionRight | None = None
    trading_class: str | None = None


class Contract(Frozen):
    """A fully resolved contract."""

    con_id: int
    symbol: str
    sec_type: SecType
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str
    trading_class: str
    description: str = ""
    stock_type: str = ""
    min_tick: Decimal = Decimal("0.01")
    #: Contract multiplier (options 100, ES 50); 1 for stocks and FX.
    multiplier: Decimal = Decimal(1)
    #: Expiry of an option or future (YYYYMMDD), else ``None``.
    expiry: str | None = None
    strike: Decimal | None = None
    right: OptionRight | None = None


class ContractDetails(Frozen):
    """Contract details as the broker reports them."""

    contract: Contract
    long_name: str
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    min_tick: Decimal
    trading_hours: str = ""
    liquid_hours: str = ""
    time_zone: str = ""
    order_types: tuple[str, ...] = ()
    valid_exchanges: tuple[str, ...] = ()


class Greeks(Frozen):
    """An option's model values (IB's tick 13): implied volatility and the greeks."""

    implied_vol: Decimal | None
    delta: Decimal | None
    gamma: Decimal | None
    vega: Decimal | None
    theta: Decimal | None
    underlying_price: Decimal | None = None


class OptionChain(Frozen):
    """The option parameters of one underlying on one exchange (IB's secDefOptParams)."""

    exchange: str
    underlying_con_id: int
    trading_class: str
    multiplier: Decimal
    expirations: tuple[str, ...]
    strikes: tuple[Decimal, ...]


class Quote(Frozen):
    """One snapshot quote; ``market_data_type`` and ``timestamp`` say how fresh it is."""

    symbol: str
    con_id: int
    currency: str
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None
    last_size: Decimal | None = None
    volume: Decimal | None = None
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    close: Decimal | None = None
    market_data_type: MarketDataKind
    #: The data's time: the last trade's time when the broker reports it, else receipt time.
    timestamp: AwareDatetime
    source: BrokerKind
    #: Options only: implied volatility and greeks.
    greeks: Greeks | None = None
    #: True while IB reports a market data farm or its own servers down (the values may be old).
    stale: bool = False


class Bar(Frozen):
    """One historical bar."""

    time: AwareDatetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    wap: Decimal | None = None
    bar_count: int | None = None


class AccountSummary(Frozen):
    """The headline numbers of one account, in its base currency."""

    account: str
    currency: str
    net_liquidation: Decimal | None
    total_cash: Decimal | None
    buying_power: Decimal | None
    available_funds: Decimal | None = None
    excess_liquidity: Decimal | None = None
    init_margin: Decimal | None = None
    maint_margin: Decimal | None = None
    gross_position_value: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    realized_pnl: Decimal | None = None
    #: Every account tag IB sent: numbers as numbers, texts (``AccountType``) as text, IB's
    #: "no value" sentinels (``DayTradesRemaining`` -1, 1.797e308, NaN) as ``None``.
    values: dict[str, Decimal | str | None] = Field(default_factory=dict)


class Position(Frozen):
    """One position with its valuation."""

    account: str
    symbol: str
    con_id: int
    sec_type: SecType
    currency: str
    quantity: Decimal
    avg_cost: Decimal
    market_price: Decimal | None = None
    market_value: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    realized_pnl: Decimal | None = None


class PositionPnL(Frozen):
    """Daily, unrealized and realized PnL of one position (IB's single-position PnL)."""

    symbol: str
    con_id: int
    position: Decimal | None = None
    daily_pnl: Decimal | None
    unrealized_pnl: Decimal | None
    realized_pnl: Decimal | None
    value: Decimal | None = None


class PnL(Frozen):
    """Daily, unrealized and realized PnL of one account, and of each position."""

    account: str
    daily_pnl: Decimal | None
    unrealized_pnl: Decimal | None
    realized_pnl: Decimal | None
    positions: list[PositionPnL] = Field(default_factory=list)


class OrderRequest(Frozen):
    """An order as sent to the broker (already validated and resolved)."""

    account: str
    contract: Contract
    side: Side
    quantity: Decimal
    order_type: OrderType
    limit_price: Decimal | None = None
    #: The trigger (IB's aux price) of STP, STP_LMT, MIT, LIT; the initial stop of a TRAIL.
    stop_price: Decimal | None = None
    trailing_amount: Decimal | None = None
    trailing_percent: Decimal | None = None
    #: TRAIL_LIMIT: the limit's distance from the trailing stop.
    limit_offset: Decimal | None = None
    tif: TimeInForce = "DAY"
    good_till: AwareDatetime | None = None
    outside_rth: bool = False
    order_ref: str | None = None
    #: Bracket children: the parent's order id and the legs' shared OCA group (set by gateway).
    parent_id: int | None = None
    oca_group: str | None = None


class WhatIf(Frozen):
    """The broker's what-if preview of an order."""

    init_margin_change: Decimal | None
    maint_margin_change: Decimal | None
    equity_with_loan_change: Decimal | None
    init_margin_after: Decimal | None = None
    maint_margin_after: Decimal | None = None
    commission: Decimal | None = None
    min_commission: Decimal | None = None
    max_commission: Decimal | None = None
    commission_currency: str | None = None
    warning: str | None = None


class OrderInfo(Frozen):
    """The broker's view of one order."""

    order_id: int
    perm_id: int | None = None
    client_id: int | None = None
    account: str
    symbol: str
    con_id: int | None = None
    sec_type: str | None = None
    #: Units per contract (an option's 100); ``None``: 1 (stocks, FX) or not reported.
    multiplier: Decimal | None = None
    side: Side
    quantity: Decimal
    order_type: str
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trailing_amount: Decimal | None = None
    trailing_percent: Decimal | None = None
    #: A TRAIL_LIMIT's limit offset from the trailing stop.
    limit_offset: Decimal | None = None
    tif: str
    good_till: str | None = None
    outside_rth: bool = False
    parent_id: int | None = None
    oca_group: str | None = None
    status: str
    filled: Decimal = Decimal(0)
    remaining: Decimal
    avg_fill_price: Decimal | None = None
    order_ref: str | None = None
    why_held: str | None = None
    error: str | None = None
    updated_at: AwareDatetime | None = None


class Fill(Frozen):
    """One execution, with its commission once reported."""

    exec_id: str
    order_id: int
    perm_id: int | None = None
    account: str
    symbol: str
    con_id: int | None = None
    side: Side
    quantity: Decimal
    price: Decimal
    time: AwareDatetime
    commission: Decimal | None = None
    commission_currency: str | None = None
    realized_pnl: Decimal | None = None
    order_ref: str | None = None


class IbNotice(Frozen):
    """A session-level notice from IB (1100, 1101, 2103, 10197, ...) and when it arrived."""

    code: int
    message: str
    at: AwareDatetime
    remedy: str | None = None


class GatewayStatus(Frozen):
    """The state of the broker connection."""

    connected: bool
    broker: BrokerKind | None
    host: str
    port: int
    client_id: int
    server_version: int | None = None
    server_time: datetime | None = None
    accounts: tuple[str, ...] = ()
    #: The market data type policy in force (``MARKET_DATA_TYPE``, e.g. ``live_or_delayed``).
    market_data_type: str | None = None
    last_error: str | None = None
    #: The supervisor's state: connected, hung, reconnecting, upstream-lost or farm-down.
    state: str = "reconnecting"
    #: The last session notice from IB (connectivity, data farms, competing session).
    last_notice: IbNotice | None = None
    #: Data farms IB reported broken (``kind:name``), quotes are flagged stale meanwhile.
    farms_down: tuple[str, ...] = ()
    #: Reconnects since start (the nightly restart makes one a day).
    reconnects: int = 0
    #: Requests waiting or open per queue (``market_data_waiting``, ``historical_open``, ...).
    queues: dict[str, int] = Field(default_factory=dict)
