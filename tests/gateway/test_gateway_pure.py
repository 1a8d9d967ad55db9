"""Pure parts of the gateway: duration / bar-size parsing, the LRU cache, conversions."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from ib_async import Contract as IbContract
from ib_async import ContractDetails as IbContractDetails
from ib_async import LimitOrder, Trade
from ib_async.objects import AccountValue, BarData, CommissionReport, Execution, TradeLogEntry
from ib_async.objects import Fill as IbFill
from ib_async.order import OrderState, OrderStatus
from ib_async.util import UNSET_DOUBLE, UNSET_INTEGER

from ibkr_mcp.errors import InvalidInputError
from ibkr_mcp.gateway import convert
from ibkr_mcp.gateway.bar_params import parse_bar_size, parse_duration, parse_what_to_show
from ibkr_mcp.gateway.lru import LruCache
from ibkr_mcp.gateway.orders import build_order
from ibkr_mcp.models import Contract, ContractRef, OrderRequest

# --- bar parameters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "ib"),
    [("5 D", "5 D"), ("1 W", "1 W"), ("1 M", "1 M"), ("1 Y", "1 Y"), ("3600 S", "3600 S"),
     (" 5  d ", "5 D"), ("10D", "10 D")],
)  # fmt: skip
def test_duration_valid(raw: str, ib: str) -> None:
    assert parse_duration(raw) == ib


@pytest.mark.parametrize("raw", ["", "5", "D", "0 D", "-1 D", "5 days", "5 X", "1.5 D", "5 D 2"])
def test_duration_invalid_names_field_and_forms(raw: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_duration(raw)
    assert info.value.details["errors"][0]["field"] == "duration"
    assert "S, D, W, M or Y" in info.value.message


@pytest.mark.parametrize(
    ("raw", "ib"),
    [("1 day", "1 day"), ("5 mins", "5 mins"), ("1 hour", "1 hour"), ("1 DAY", "1 day"),
     ("1  min", "1 min"), ("1 month", "1 month")],
)  # fmt: skip
def test_bar_size_valid(raw: str, ib: str) -> None:
    assert parse_bar_size(raw) == ib


@pytest.mark.parametrize("raw", ["", "1 days", "5 min", "2 day", "1h", "7 mins"])
def test_bar_size_invalid(raw: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_bar_size(raw)
    assert info.value.details["errors"][0]["field"] == "bar_size"
    assert "'1 day'" in info.value.message


def test_what_to_show() -> None:
    assert parse_what_to_show("trades") == "TRADES"
    with pytest.raises(InvalidInputError):
        parse_what_to_show("PRICES")


# --- LRU ----------------------------------------------------------------------------------


def test_lru_evicts_least_recently_used() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now most recent
    cache.put("c", 3)
    assert "b" not in cache
    assert cache.get("a") == 1
    assert cache.get("c") == 3
    assert cache.get("b") is None
    assert (cache.hits, cache.misses, len(cache)) == (3, 1, 2)
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError):
        LruCache(0)


def test_lru_keys_by_contract_ref() -> None:
    cache: LruCache[ContractRef, str] = LruCache(10)
    cache.put(ContractRef(symbol="AAPL"), "x")
    assert cache.get(ContractRef(symbol="AAPL")) == "x"
    assert cache.get(ContractRef(symbol="AAPL", currency="EUR")) is None


# --- numbers and times --------------------------------------------------------------------


def test_num_unset_and_nan_are_none() -> None:
    assert convert.num(UNSET_DOUBLE) is None
    assert convert.num(UNSET_INTEGER) is None
    assert convert.num(math.nan) is None
    assert convert.num("") is None
    assert convert.num("1.7976931348623157E308") is None
    assert convert.num(0.1) == Decimal("0.1")
    assert convert.num("12.50") == Decimal("12.50")
    assert convert.price(-1.0) is None
    assert convert.price(101.25) == Decimal("101.25")
    assert convert.int_or_none(UNSET_INTEGER) is None
    assert convert.int_or_none(7) == 7


def test_aware_utc() -> None:
    assert convert.aware_utc(date(2024, 5, 1)) == datetime(2024, 5, 1, tzinfo=UTC)
    naive = datetime(2024, 5, 1, 12, 0)  # noqa: DTZ001 - what ib_async sometimes hands us
    assert convert.aware_utc(naive) == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    ny = timezone(timedelta(hours=-4))
    assert convert.aware_utc(datetime(2024, 5, 1, 8, 0, tzinfo=ny)) == datetime(
        2024, 5, 1, 12, 0, tzinfo=UTC
    )
    assert convert.aware_utc(datetime.min) is None  # noqa: DTZ901
    assert convert.aware_utc(None) is None


# --- contracts ----------------------------------------------------------------------------


def test_ref_to_ib_forex_and_stock() -> None:
    fx = convert.ref_to_ib(ContractRef(symbol="EUR.USD", sec_type="CASH"))
    assert (fx.symbol, fx.currency, fx.exchange, fx.secType) == ("EUR", "USD", "IDEALPRO", "CASH")
    fx2 = convert.ref_to_ib(ContractRef(symbol="gbpjpy", sec_type="CASH", exchange="IDEALPRO"))
    assert (fx2.symbol, fx2.currency) == ("GBP", "JPY")
    stk = convert.ref_to_ib(ContractRef(symbol="aapl", primary_exchange="nasdaq"))
    assert (stk.symbol, stk.secType, stk.exchange, stk.primaryExchange) == (
        "AAPL", "STK", "SMART", "NASDAQ",
    )  # fmt: skip
    by_id = convert.ref_to_ib(ContractRef(symbol="X", con_id=265598))
    assert by_id.conId == 265598
    assert by_id.symbol == ""


def _details() -> IbContractDetails:
    c = IbContract(
        conId=265598, symbol="AAPL", secType="STK", exchange="SMART", primaryExchange="NASDAQ",
        currency="USD", localSymbol="AAPL", tradingClass="NMS",
    )  # fmt: skip
    return IbContractDetails(
        contract=c, minTick=0.01, longName="APPLE INC", industry="Technology",
        orderTypes="LMT,MKT", validExchanges="SMART,NASDAQ", timeZoneId="US/Eastern",
        stockType="COMMON",
    )  # fmt: skip


def test_contract_and_details_conversion() -> None:
    details = convert.details_from_ib(_details(), exchange="SMART")
    c = details.contract
    assert (c.con_id, c.symbol, c.primary_exchange, c.exchange) == (
        265598, "AAPL", "NASDAQ", "SMART",
    )  # fmt: skip
    assert c.min_tick == Decimal("0.01")
    assert c.description == "APPLE INC"
    assert details.order_types == ("LMT", "MKT")
    assert details.valid_exchanges == ("SMART", "NASDAQ")
    assert convert.candidate(_details())["primary_exchange"] == "NASDAQ"
    back = convert.contract_to_ib(c)
    assert (back.conId, back.exchange, back.primaryExchange) == (265598, "SMART", "NASDAQ")


# --- bars, account, orders, fills ---------------------------------------------------------


def test_daily_bar_becomes_midnight_utc() -> None:
    bar = convert.bar_from_ib(
        BarData(date=date(2026, 11, 24), open=1.5, high=2, low=1, close=1.75, volume=-1,
                average=1.6, barCount=UNSET_INTEGER)
    )  # fmt: skip
    assert bar.time == datetime(2026, 11, 24, tzinfo=UTC)
    assert bar.close == Decimal("1.75")
    assert bar.volume == 0
    assert bar.bar_count is None


def test_account_summary_prefers_base_currency() -> None:
    rows = [
        AccountValue("DU1", "NetLiquidation", "1000.5", "USD", ""),
        AccountValue("DU1", "TotalCashValue", "900", "USD", ""),
        AccountValue("DU1", "TotalCashValue", "50", "EUR", ""),
        AccountValue("DU1", "BuyingPower", "4000", "USD", ""),
        AccountValue("DU1", "AccountType", "INDIVIDUAL", "", ""),
        AccountValue("DU2", "NetLiquidation", "7", "USD", ""),
    ]
    summary = convert.account_summary("DU1", rows)
    assert summary.currency == "USD"
    assert summary.net_liquidation == Decimal("1000.5")
    assert summary.total_cash == Decimal(900)
    assert summary.buying_power == Decimal(4000)
    assert summary.values["TotalCashValue:EUR"] == Decimal(50)  # a number, not IB's text
    assert summary.values["AccountType"] == "INDIVIDUAL"
    assert summary.init_margin is None


def _request(**kw: object) -> OrderRequest:
    contract = Contract(
        con_id=265598, symbol="AAPL", sec_type="STK", exchange="SMART", primary_exchange="NASDAQ",
        currency="USD", local_symbol="AAPL", trading_class="NMS",
    )  # fmt: skip
    values: dict[str, object] = {
        "account": "DU1", "contract": contract, "side": "BUY", "quantity": Decimal(10),
        "order_type": "LMT", "limit_price": Decimal("150.25"), "tif": "GTC", "order_ref": "r-1",
    }  # fmt: skip
    values.update(kw)
    return OrderRequest.model_validate(values)


def test_build_order() -> None:
    order = build_order(_request())
    assert (order.orderType, order.action, order.totalQuantity, order.lmtPrice) == (
        "LMT", "BUY", 10.0, 150.25,
    )  # fmt: skip
    assert (order.tif, order.account, order.orderRef) == ("GTC", "DU1", "r-1")
    mkt = build_order(_request(order_type="MKT", limit_price=None, order_ref=None))
    assert (mkt.orderType, mkt.orderRef) == ("MKT", "")
    with pytest.raises(InvalidInputError):
        build_order(_request(limit_price=None))


def test_order_info_from_trade_with_error() -> None:
    order = LimitOrder("SELL", 5, 10.5, orderId=12, clientId=3, permId=99, account="DU1")
    order.orderRef = "abc"
    status = OrderStatus(orderId=12, status="Cancelled", filled=0, remaining=5)
    stamp = datetime(2026, 11, 25, 15, tzinfo=UTC)
    log = [TradeLogEntry(stamp, "Cancelled", "Order rejected - no money", 201)]
    trade = Trade(IbContract(conId=1, symbol="XYZ"), order, status, [], log)
    info = convert.order_info(trade)
    assert (info.order_id, info.perm_id, info.client_id, info.side) == (12, 99, 3, "SELL")
    assert info.limit_price == Decimal("10.5")
    assert info.remaining == Decimal(5)
    assert info.error == "201: Order rejected - no money"
    assert info.order_ref == "abc"
    assert info.updated_at == stamp
    assert convert.trade_error(trade) == (201, "Order rejected - no money")


def test_fill_commission_only_when_reported() -> None:
    stamp = datetime(2026, 11, 25, 15, tzinfo=UTC)
    ex = Execution(execId="e1", time=stamp, acctNumber="DU1", side="BOT", shares=10,
                   price=101.5, permId=9, orderId=4, orderRef="r")  # fmt: skip
    fill = IbFill(IbContract(conId=1, symbol="XYZ"), ex, CommissionReport(), ex.time)
    plain = convert.fill_from_ib(fill)
    assert plain.commission is None
    assert (plain.side, plain.quantity, plain.price) == ("BUY", Decimal(10), Decimal("101.5"))
    report = CommissionReport(execId="e1", commission=1.25, currency="USD", realizedPNL=0.0)
    paid = convert.fill_from_ib(fill, report)
    assert paid.commission == Decimal("1.25")
    assert paid.commission_currency == "USD"


def test_what_if_unset_is_none() -> None:
    state = OrderState(initMarginChange="1500.5", maintMarginChange="1.7976931348623157E308",
                       equityWithLoanChange="0", commission=UNSET_DOUBLE, minCommission=1.0,
                       commissionCurrency="USD")  # fmt: skip
    result = convert.what_if_from_state(state)
    assert result.init_margin_change == Decimal("1500.5")
    assert result.maint_margin_change is None
    assert result.commission is None
    assert result.min_commission == Decimal("1.0")
