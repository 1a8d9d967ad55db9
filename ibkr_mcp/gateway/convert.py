"""Conversions from ib_async objects to domain models (Decimal via str, aware UTC, unset → None)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Final, get_args

from ib_async import Contract as IbContract
from ib_async import ContractDescription, Trade
from ib_async import ContractDetails as IbContractDetails
from ib_async import Fill as IbFill
from ib_async.objects import AccountValue, BarData, CommissionReport
from ib_async.order import OrderState
from ib_async.ticker import Ticker
from ib_async.util import UNSET_DOUBLE, UNSET_INTEGER

from ibkr_mcp.gateway.account_values import account_value
from ibkr_mcp.gateway.base import decimal_or_none
from ibkr_mcp.models import (
    AccountSummary,
    Bar,
    BrokerKind,
    Contract,
    ContractDetails,
    ContractRef,
    Fill,
    Greeks,
    MarketDataKind,
    OptionRight,
    OrderInfo,
    Quote,
    SecType,
    Side,
    WhatIf,
)

#: IB's numeric market data types and our names for them.
MARKET_DATA_KINDS: Final[dict[int, MarketDataKind]] = {
    1: "live",
    2: "frozen",
    3: "delayed",
    4: "delayed_frozen",
}
#: The reverse of ``MARKET_DATA_KINDS``.
MARKET_DATA_IDS: Final[dict[MarketDataKind, int]] = {v: k for k, v in MARKET_DATA_KINDS.items()}

_SEC_TYPES: Final[frozenset[str]] = frozenset(get_args(SecType))
#: IB sends -1 as the price of an empty book side.
_EMPTY_PRICE: Final = -1.0
#: ``Contract.exchange`` default for forex when the caller left ``SMART``.
FOREX_EXCHANGE: Final = "IDEALPRO"


def num(value: Any) -> Decimal | None:
    """A broker number as ``Decimal``; NaN, infinities and IB's unset sentinels become ``None``."""
    if isinstance(value, float) and (math.isnan(value) or value == UNSET_DOUBLE):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value == UNSET_INTEGER:
        return None
    return decimal_or_none(value)


def price(value: Any) -> Decimal | None:
    """A quote price: like ``num`` but IB's ``-1`` "no price" also becomes ``None``."""
    if isinstance(value, int | float) and value == _EMPTY_PRICE:
        return None
    return num(value)


def int_or_none(value: Any) -> int | None:
    """An integer field; unset / NaN / zero-meaning-unknown stay ``None`` only when unset."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    number = int(value)
    return None if number == UNSET_INTEGER else number


def aware_utc(value: datetime | date | None) -> datetime | None:
    """A timezone-aware UTC datetime; naive values are taken as UTC, dates as midnight UTC."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0), tzinfo=UTC)
    if value.tzinfo is None:
        if value.year == 1:  # ib_async's "never" (datetime.min) before any data arrived
            return None
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def sec_type(value: str) -> SecType | None:
    """IB's secType if it is one our models know."""
    return value if value in _SEC_TYPES else None  # type: ignore[return-value]


# --- contracts ----------------------------------------------------------------------------


def ref_to_ib(ref: ContractRef) -> IbContract:
    """The ib_async contract to look ``ref`` up with (forex ``EUR.USD`` becomes EUR/USD)."""
    if ref.con_id:
        exchange = "" if ref.exchange == "SMART" and ref.sec_type == "CASH" else ref.exchange
        return IbContract(conId=ref.con_id, exchange=exchange)
    symbol, currency, exchange = ref.symbol.upper(), ref.currency.upper(), ref.exchange.upper()
    if ref.sec_type == "CASH":
        if "." in symbol:
            symbol, currency = symbol.split(".", 1)
        elif len(symbol) == 6 and symbol.isalpha():
            symbol, currency = symbol[:3], symbol[3:]
        if exchange == "SMART":
            exchange = FOREX_EXCHANGE
    if exchange == "SMART" and ref.sec_type in ("IND", "FUT"):
        # Indices and futures are listed on one exchange (SPX on CBOE, ES on CME): an empty
        # exchange lets IB find it, so agents need not know it.
        exchange = ""
    return IbContract(
        symbol=symbol,
        secType=ref.sec_type,
        exchange=exchange,
        currency=currency,
        primaryExchange=(ref.primary_exchange or "").upper(),
        lastTradeDateOrContractMonth=ref.expiry or "",
        strike=float(ref.strike) if ref.strike is not None else 0.0,
        right=ref.right or "",
        tradingClass=ref.trading_class or "",
    )


#: IB's spellings of an option right.
_RIGHTS: Final[dict[str, OptionRight]] = {"C": "C", "CALL": "C", "P": "P", "PUT": "P"}


def contract_from_details(details: IbContractDetails, *, exchange: str | None = None) -> Contract:
    """A domain ``Contract`` from contract details (``exchange`` overrides, e.g. ``SMART``)."""
    c = details.contract
    assert c is not None
    kind = sec_type(c.secType) or "STK"
    return Contract(
        con_id=c.conId,
        symbol=c.symbol,
        sec_type=kind,
        exchange=exchange or c.exchange or "SMART",
        primary_exchange=c.primaryExchange or c.exchange or "",
        currency=c.currency,
        local_symbol=c.localSymbol or c.symbol,
        trading_class=c.tradingClass or "",
        description=details.longName or c.description or "",
        stock_type=details.stockType or "",
        min_tick=num(details.minTick) or Decimal("0.01"),
        multiplier=num(c.multiplier) or Decimal(1),
        expiry=c.lastTradeDateOrContractMonth or None,
        strike=(num(c.strike) or None) if kind == "OPT" else None,
        right=_RIGHTS.get(c.right) if kind == "OPT" else None,
    )


def details_from_ib(details: IbContractDetails, *, exchange: str | None = None) -> ContractDetails:
    """A domain ``ContractDetails``."""
    contract = contract_from_details(details, exchange=exchange)
    return ContractDetails(
        contract=contract,
        long_name=details.longName or "",
        industry=details.industry or "",
        category=details.category or "",
        subcategory=details.subcategory or "",
        min_tick=contract.min_tick,
        trading_hours=details.tradingHours or "",
        liquid_hours=details.liquidHours or "",
        time_zone=details.timeZoneId or "",
        order_types=_csv(details.orderTypes),
        valid_exchanges=_csv(details.validExchanges),
    )


def contract_from_description(desc: ContractDescription) -> Contract | None:
    """A domain ``Contract`` from a symbol-search hit (``None`` for types we do not model)."""
    c = desc.contract
    if c is None or not c.conId:
        return None
    kind = sec_type(c.secType)
    if kind is None:
        return None
    return Contract(
        con_id=c.conId,
        symbol=c.symbol,
        sec_type=kind,
        exchange=FOREX_EXCHANGE if kind == "CASH" else "SMART",
        primary_exchange=c.primaryExchange or "",
        currency=c.currency,
        local_symbol=c.localSymbol or c.symbol,
        trading_class=c.tradingClass or "",
        description=c.description or "",
    )


def contract_to_ib(contract: Contract) -> IbContract:
    """The ib_async contract to trade / quote a resolved domain contract with (by conId)."""
    return IbContract(
        conId=contract.con_id,
        symbol=contract.symbol,
        secType=contract.sec_type,
        exchange=contract.exchange,
        primaryExchange=contract.primary_exchange if contract.sec_type == "STK" else "",
        currency=contract.currency,
        localSymbol=contract.local_symbol,
        tradingClass=contract.trading_class,
        lastTradeDateOrContractMonth=contract.expiry or "",
        strike=float(contract.strike) if contract.strike is not None else 0.0,
        right=contract.right or "",
        multiplier="" if contract.multiplier == 1 else str(contract.multiplier),
    )


def candidate(details: IbContractDetails) -> dict[str, Any]:
    """A JSON-safe summary of one match, for ``AmbiguousContractError.details``."""
    c = details.contract
    assert c is not None
    return {
        "con_id": c.conId,
        "symbol": c.symbol,
        "sec_type": c.secType,
        "primary_exchange": c.primaryExchange or c.exchange,
        "currency": c.currency,
        "description": details.longName or c.description or "",
    }


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part for part in (value or "").split(",") if part)


# --- market data --------------------------------------------------------------------------


def _last_trade_time(ticker: Ticker) -> datetime | None:
    raw = getattr(ticker, "lastTimestamp", None)
    if isinstance(raw, datetime):
        return aware_utc(raw)
    if isinstance(raw, str) and raw.strip().isdigit():
        return datetime.fromtimestamp(int(raw.strip()), UTC)
    return None


def quote_from_ticker(
    ticker: Ticker,
    contract: Contract,
    *,
    kind: MarketDataKind,
    source: BrokerKind,
    now: datetime,
) -> Quote:
    """A domain ``Quote`` from a filled snapshot ticker.

    The timestamp is the data's own time where IB reports it (tick 45, the last trade's time:
    an old trade shows as old), else the time the quote was received.
    """
    stamp = _last_trade_time(ticker) or aware_utc(ticker.time) or now
    return Quote(
        symbol=contract.symbol,
        con_id=contract.con_id,
        currency=contract.currency,
        bid=price(ticker.bid),
        ask=price(ticker.ask),
        last=price(ticker.last),
        bid_size=num(ticker.bidSize),
        ask_size=num(ticker.askSize),
        last_size=num(ticker.lastSize),
        volume=num(ticker.volume),
        open=price(ticker.open),
        high=price(ticker.high),
        low=price(ticker.low),
        close=price(ticker.close),
        market_data_type=kind,
        timestamp=stamp,
        source=source,
        greeks=greeks_from_ticker(ticker),
    )


def greeks_from_ticker(ticker: Ticker) -> Greeks | None:
    """An option's model greeks (IB's tick 13), else ``None`` (not an option, or no model)."""
    model = ticker.modelGreeks
    if model is None:
        return None
    return Greeks(
        implied_vol=num(model.impliedVol),
        delta=num(model.delta),
        gamma=num(model.gamma),
        vega=num(model.vega),
        theta=num(model.theta),
        underlying_price=price(model.undPrice),
    )


def bar_from_ib(bar: BarData) -> Bar:
    """A domain ``Bar``; daily bars' dates become midnight UTC."""
    stamp = aware_utc(bar.date)
    assert stamp is not None
    return Bar(
        time=stamp,
        open=num(bar.open) or Decimal(0),
        high=num(bar.high) or Decimal(0),
        low=num(bar.low) or Decimal(0),
        close=num(bar.close) or Decimal(0),
        volume=_non_negative(num(bar.volume)),
        # MIDPOINT (and other non-trade) bars carry -1 for both: no value, not a value of -1.
        wap=price(bar.average),
        bar_count=_count(bar.barCount),
    )


def _count(value: Any) -> int | None:
    number = int_or_none(value)
    return None if number is None or number < 0 else number


def _non_negative(value: Decimal | None) -> Decimal:
    # IB reports -1 volume for series without volume (forex MIDPOINT).
    return value if value is not None and value >= 0 else Decimal(0)


# --- account ------------------------------------------------------------------------------

#: Account tag → ``AccountSummary`` field.
SUMMARY_FIELDS: Final[dict[str, str]] = {
    "NetLiquidation": "net_liquidation",
    "TotalCashValue": "total_cash",
    "BuyingPower": "buying_power",
    "AvailableFunds": "available_funds",
    "ExcessLiquidity": "excess_liquidity",
    "InitMarginReq": "init_margin",
    "MaintMarginReq": "maint_margin",
    "GrossPositionValue": "gross_position_value",
    "UnrealizedPnL": "unrealized_pnl",
    "RealizedPnL": "realized_pnl",
}


def account_summary(account: str, values: Iterable[AccountValue]) -> AccountSummary:
    """Fold account values (summary tags and account updates) into an ``AccountSummary``.

    Base-currency values win; ``$LEDGER`` rows in other currencies go to ``values`` as
    ``Tag:CCY``. ``values`` holds numbers as ``Decimal``, texts as text and IB's sentinels as
    ``None`` (``account_values.account_value``).
    """
    rows = [v for v in values if v.account == account]
    base = next((v.currency for v in rows if v.tag == "NetLiquidation" and v.currency), "")
    if not base:
        base = next((v.value for v in rows if v.tag == "Currency" and v.value), "USD")
    fields: dict[str, Decimal | None] = {}
    extra: dict[str, Decimal | str | None] = {}
    for row in rows:
        in_base = row.currency in (base, "", "BASE")
        key = row.tag if in_base else f"{row.tag}:{row.currency}"
        if key not in extra or row.currency == base:
            extra[key] = account_value(row.tag, row.value)
        name = SUMMARY_FIELDS.get(row.tag)
        if name and in_base and (name not in fields or row.currency == base):
            fields[name] = num(row.value)
    return AccountSummary(
        account=account,
        currency=base,
        net_liquidation=fields.get("net_liquidation"),
        total_cash=fields.get("total_cash"),
        buying_power=fields.get("buying_power"),
        available_funds=fields.get("available_funds"),
        excess_liquidity=fields.get("excess_liquidity"),
        init_margin=fields.get("init_margin"),
        maint_margin=fields.get("maint_margin"),
        gross_position_value=fields.get("gross_position_value"),
        unrealized_pnl=fields.get("unrealized_pnl"),
        realized_pnl=fields.get("realized_pnl"),
        values=extra,
    )


# --- orders -------------------------------------------------------------------------------


def _multiplier(value: Any) -> Decimal | None:
    # IB sends "" for stocks and FX (1), "100" for an equity option: only a real one is kept.
    multiplier = num(value)
    return None if multiplier is None or multiplier in (0, 1) else multiplier


def _side(action: str) -> Side:
    return "BUY" if action.upper() in ("BUY", "BOT") else "SELL"


def trade_error(trade: Trade) -> tuple[int, str] | None:
    """The latest (code, message) IB attached to the order, if any."""
    for entry in reversed(trade.log):
        if entry.errorCode:
            return entry.errorCode, entry.message
    return None


def _order_type(ib_name: str) -> str:
    """Our order type name for IB's (``STP LMT`` → ``STP_LMT``)."""
    return ib_name.strip().replace(" ", "_") if ib_name else ""


def order_info(trade: Trade) -> OrderInfo:
    """A domain ``OrderInfo`` from a trade (live, open-order or completed-order report)."""
    order, status, contract = trade.order, trade.orderStatus, trade.contract
    quantity = num(order.totalQuantity) or Decimal(0)
    filled = num(status.filled) or Decimal(0)
    if not filled:
        filled = num(order.filledQuantity) or Decimal(0)
    remaining = num(status.remaining)
    if not remaining and filled < quantity and status.status not in ("Filled",):
        remaining = quantity - filled
    avg = num(status.avgFillPrice) if filled else None
    err = trade_error(trade)
    updated = aware_utc(trade.log[-1].time) if trade.log else None
    return OrderInfo(
        order_id=order.orderId,
        perm_id=order.permId or None,
        client_id=order.clientId,
        account=order.account or "",
        symbol=contract.symbol,
        con_id=contract.conId or None,
        sec_type=contract.secType or None,
        multiplier=_multiplier(contract.multiplier),
        side=_side(order.action),
        quantity=quantity,
        order_type=_order_type(order.orderType),
        limit_price=num(order.lmtPrice) if order.orderType != "MKT" else None,
        stop_price=num(order.trailStopPrice if "TRAIL" in order.orderType else order.auxPrice)
        or None,
        trailing_amount=(num(order.auxPrice) or None)
        if "TRAIL" in order.orderType and not num(order.trailingPercent)
        else None,
        trailing_percent=num(order.trailingPercent) or None,
        limit_offset=(num(order.lmtPriceOffset) or None)
        if order.orderType == "TRAIL LIMIT"
        else None,
        tif=order.tif or "DAY",
        good_till=order.goodTillDate or None,
        outside_rth=bool(order.outsideRth),
        parent_id=order.parentId or None,
        oca_group=order.ocaGroup or None,
        status=status.status or "Unknown",
        filled=filled,
        remaining=remaining or Decimal(0),
        avg_fill_price=avg or None,
        order_ref=order.orderRef or None,
        why_held=status.whyHeld or None,
        error=f"{err[0]}: {err[1]}" if err else None,
        updated_at=updated,
    )


def fill_from_ib(fill: IbFill, report: CommissionReport | None = None) -> Fill:
    """A domain ``Fill``; the commission is set only once IB reported it."""
    ex = fill.execution
    report = report if report is not None else fill.commissionReport
    reported = bool(report.execId)
    stamp = aware_utc(ex.time) or aware_utc(fill.time)
    assert stamp is not None
    return Fill(
        exec_id=ex.execId,
        order_id=ex.orderId,
        perm_id=ex.permId or None,
        account=ex.acctNumber,
        symbol=fill.contract.symbol,
        con_id=fill.contract.conId or None,
        side=_side(ex.side),
        quantity=num(ex.shares) or Decimal(0),
        price=num(ex.price) or Decimal(0),
        time=stamp,
        commission=num(report.commission) if reported else None,
        commission_currency=(report.currency or None) if reported else None,
        realized_pnl=num(report.realizedPNL) if reported else None,
        order_ref=ex.orderRef or None,
    )


def what_if_from_state(state: OrderState) -> WhatIf:
    """A domain ``WhatIf``; IB's 1.797e308 "unset" values become ``None``."""
    return WhatIf(
        init_margin_change=num(state.initMarginChange),
        maint_margin_change=num(state.maintMarginChange),
        equity_with_loan_change=num(state.equityWithLoanChange),
        init_margin_after=num(state.initMarginAfter),
        maint_margin_after=num(state.maintMarginAfter),
        commission=num(state.commission),
        min_commission=num(state.minCommission),
        max_commission=num(state.maxCommission),
        commission_currency=state.commissionCurrency or None,
        warning=state.warningText or None,
    )
