"""Encoders for every non-order message the simulated gateway sends (field lists, msg id first)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from ibkr_mcp.simulator.msgids import Msg
from ibkr_mcp.simulator.wire import UNSET_DOUBLE, Field

if TYPE_CHECKING:
    from ibkr_mcp.simulator.accounts import PositionValue
    from ibkr_mcp.simulator.catalogue import Instrument
    from ibkr_mcp.simulator.market import BarData

Fields = list[Field]


def ib_time(at: datetime) -> str:
    """IB's ``yyyymmdd hh:mm:ss TZ`` text in UTC."""
    return at.strftime("%Y%m%d %H:%M:%S") + " UTC"


def error(req_id: int, code: int, text: str, server_version: int) -> Fields:
    """ERR_MSG (version 2)."""
    out: Fields = [Msg.ERR_MSG, 2, req_id, code, text]
    if server_version >= 166:
        out.append("")  # advancedOrderRejectJson
    return out


def next_valid_id(order_id: int) -> Fields:
    """NEXT_VALID_ID."""
    return [Msg.NEXT_VALID_ID, 1, order_id]


def managed_accounts(accounts: Sequence[str]) -> Fields:
    """MANAGED_ACCTS."""
    return [Msg.MANAGED_ACCTS, 1, ",".join(accounts)]


def current_time(at: datetime) -> Fields:
    """CURRENT_TIME (epoch seconds)."""
    return [Msg.CURRENT_TIME, 1, int(at.timestamp())]


def market_data_type(req_id: int, kind: int) -> Fields:
    """MARKET_DATA_TYPE: which data (1 live, 2 frozen, 3 delayed, 4 delayed-frozen) is served."""
    return [Msg.MARKET_DATA_TYPE, 1, req_id, kind]


def tick_req_params(req_id: int, min_tick: Decimal, bbo_exchange: str) -> Fields:
    """TICK_REQ_PARAMS (no version field)."""
    return [Msg.TICK_REQ_PARAMS, req_id, min_tick, bbo_exchange, 3]


def tick_price(req_id: int, tick_type: int, price: Decimal, size: Decimal, mask: int) -> Fields:
    """TICK_PRICE (version 6: price, size and attribute mask)."""
    return [Msg.TICK_PRICE, 6, req_id, tick_type, price, size, mask]


def tick_size(req_id: int, tick_type: int, size: Decimal) -> Fields:
    """TICK_SIZE."""
    return [Msg.TICK_SIZE, 6, req_id, tick_type, size]


def tick_string(req_id: int, tick_type: int, value: str) -> Fields:
    """TICK_STRING."""
    return [Msg.TICK_STRING, 6, req_id, tick_type, value]


def tick_generic(req_id: int, tick_type: int, value: Decimal) -> Fields:
    """TICK_GENERIC."""
    return [Msg.TICK_GENERIC, 6, req_id, tick_type, value]


def tick_snapshot_end(req_id: int) -> Fields:
    """TICK_SNAPSHOT_END."""
    return [Msg.TICK_SNAPSHOT_END, 1, req_id]


def _market_rules(inst: Instrument) -> str:
    rule = {"CASH": "239", "OPT": "32", "FUT": "67", "IND": "1217"}.get(inst.sec_type, "26")
    return ",".join(rule for _ in inst.valid_exchanges.split(",") if _) or rule


def contract_data(
    req_id: int,
    inst: Instrument,
    day: datetime,
    server_version: int,
    sec_type: str | None = None,
) -> Fields:
    """CONTRACT_DATA with every field IB sends (``sec_type`` overrides it, e.g. CONTFUT)."""
    is_fx = inst.sec_type == "CASH"
    derivative = inst.sec_type in ("FUT", "OPT")
    whole_units = is_fx or derivative or inst.sec_type == "IND"
    out: Fields = [Msg.CONTRACT_DATA]
    if server_version < 164:
        out.append(8)
    out += [
        req_id,
        inst.symbol,
        sec_type or inst.sec_type,
        inst.last_trade,
        inst.wire_strike,
        inst.right,
        inst.exchange,
        inst.currency,
        inst.local_symbol,
        inst.market_name or inst.trading_class,
        inst.trading_class,
        inst.con_id,
        inst.min_tick,
    ]
    if server_version < 164:
        out.append(inst.md_size_multiplier)
    out += [
        inst.wire_multiplier,
        inst.order_types,
        inst.valid_exchanges,
        1,  # priceMagnifier
        inst.under_con_id,
        inst.long_name,
        inst.primary_exchange,
        inst.contract_month,
        inst.industry,
        inst.category,
        inst.subcategory,
        inst.time_zone_id,
        inst.trading_hours(day.date()),
        inst.liquid_hours(day.date()),
        "",  # evRule
        "",  # evMultiplier
        0,  # secIdList count
        {"STK": 1, "CASH": 4, "OPT": 2, "FUT": 3}.get(inst.sec_type, 1),  # aggGroup
        inst.under_symbol,
        inst.under_sec_type,
        _market_rules(inst),
        inst.last_trade if derivative else "",  # realExpirationDate
        inst.stock_type,
    ]
    if server_version == 163:
        out.append("0.0001")  # sizeMinTick
    if server_version >= 164:
        out += ["1", "1", "1"] if whole_units else ["0.0001", "0.0001", "100"]
    return out


def contract_data_end(req_id: int) -> Fields:
    """CONTRACT_DATA_END."""
    return [Msg.CONTRACT_DATA_END, 1, req_id]


def symbol_samples(req_id: int, insts: Sequence[Instrument], server_version: int) -> Fields:
    """SYMBOL_SAMPLES (reqMatchingSymbols)."""
    out: Fields = [Msg.SYMBOL_SAMPLES, req_id, len(insts)]
    for inst in insts:
        out += [inst.con_id, inst.symbol, inst.sec_type, inst.primary_exchange, inst.currency]
        derivatives = {"STK": ["OPT", "WAR"], "IND": ["FUT", "OPT"]}.get(inst.sec_type, [])
        out.append(len(derivatives))
        out += derivatives
        if server_version >= 176:
            out += [inst.long_name, ""]
    return out


def historical_data(
    req_id: int, start: str, end: str, bars: Sequence[BarData], labels: Sequence[str]
) -> Fields:
    """HISTORICAL_DATA (start/end strings plus bars; pre-196 servers have no separate end msg)."""
    out: Fields = [Msg.HISTORICAL_DATA, req_id, start, end, len(bars)]
    for bar, label in zip(bars, labels, strict=True):
        out += [label, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.wap, bar.count]
    return out


def head_timestamp(req_id: int, stamp: str) -> Fields:
    """HEAD_TIMESTAMP."""
    return [Msg.HEAD_TIMESTAMP, req_id, stamp]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> Fields:
    """ACCOUNT_SUMMARY."""
    return [Msg.ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency]


def account_summary_end(req_id: int) -> Fields:
    """ACCOUNT_SUMMARY_END."""
    return [Msg.ACCOUNT_SUMMARY_END, 1, req_id]


def account_value(key: str, value: str, currency: str, account: str) -> Fields:
    """ACCT_VALUE (reqAccountUpdates)."""
    return [Msg.ACCT_VALUE, 2, key, value, currency, account]


def _contract_head(inst: Instrument) -> Fields:
    return list(inst.wire_head())


def portfolio_value(pv: PositionValue, account: str) -> Fields:
    """PORTFOLIO_VALUE (version 8)."""
    inst = pv.position.instrument
    pos = pv.position
    return [
        Msg.PORTFOLIO_VALUE,
        8,
        *_contract_head(inst),
        inst.primary_exchange,
        inst.currency,
        inst.local_symbol,
        inst.trading_class,
        pos.quantity,
        _num(pv.mark),
        _num(pv.market_value, 2),
        _num(pos.avg_cost),
        _num(pv.unrealized, 2),
        _num(pos.realized, 2),
        account,
    ]


def account_update_time(at: datetime) -> Fields:
    """ACCT_UPDATE_TIME (hh:mm)."""
    return [Msg.ACCT_UPDATE_TIME, 1, at.strftime("%H:%M")]


def account_download_end(account: str) -> Fields:
    """ACCT_DOWNLOAD_END."""
    return [Msg.ACCT_DOWNLOAD_END, 1, account]


def account_update_multi(
    req_id: int, account: str, model: str, key: str, value: str, currency: str
) -> Fields:
    """ACCOUNT_UPDATE_MULTI."""
    return [Msg.ACCOUNT_UPDATE_MULTI, 1, req_id, account, model, key, value, currency]


def account_update_multi_end(req_id: int) -> Fields:
    """ACCOUNT_UPDATE_MULTI_END."""
    return [Msg.ACCOUNT_UPDATE_MULTI_END, 1, req_id]


def position(account: str, inst: Instrument, qty: Decimal, avg_cost: Decimal) -> Fields:
    """POSITION_DATA (version 3)."""
    exchange = inst.exchange if inst.sec_type == "CASH" else inst.primary_exchange
    return [
        Msg.POSITION_DATA,
        3,
        account,
        *_contract_head(inst),
        exchange,
        inst.currency,
        inst.local_symbol,
        inst.trading_class,
        qty,
        _num(avg_cost),
    ]


def position_end() -> Fields:
    """POSITION_END."""
    return [Msg.POSITION_END, 1]


def pnl(req_id: int, daily: Decimal, unrealized: Decimal, realized: Decimal) -> Fields:
    """PNL (reqPnL)."""
    return [Msg.PNL, req_id, _num(daily, 2), _num(unrealized, 2), _num(realized, 2)]


def pnl_single(
    req_id: int,
    qty: Decimal,
    daily: Decimal,
    unrealized: Decimal,
    realized: Decimal,
    value: Decimal,
) -> Fields:
    """PNL_SINGLE (reqPnLSingle)."""
    return [
        Msg.PNL_SINGLE,
        req_id,
        qty,
        _num(daily, 2),
        _num(unrealized, 2),
        _num(realized, 2),
        _num(value, 2),
    ]


def pnl_single_unknown(req_id: int) -> Fields:
    """PNL_SINGLE for a conId the account does not hold (IB sends unset values)."""
    return [Msg.PNL_SINGLE, req_id, 0, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE]


def _num(value: Decimal, places: int = 8) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places)).normalize() if value else Decimal(0)
