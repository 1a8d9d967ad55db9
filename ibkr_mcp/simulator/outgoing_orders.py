"""Encoders for order messages: OPEN_ORDER, ORDER_STATUS, COMPLETED_ORDER, executions, fees."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from ibkr_mcp.simulator.msgids import Msg
from ibkr_mcp.simulator.outgoing import Fields, ib_time
from ibkr_mcp.simulator.wire import UNSET_DOUBLE

if TYPE_CHECKING:
    from ibkr_mcp.simulator.catalogue import Instrument
    from ibkr_mcp.simulator.incoming import ContractSpec
    from ibkr_mcp.simulator.order_model import SimFill, SimOrder, WhatIfResult


def _contract(order: SimOrder) -> Fields:
    """ConId … tradingClass as OPEN_ORDER/COMPLETED_ORDER carry them."""
    inst: Instrument | None = order.instrument
    if inst is None:
        c: ContractSpec = order.fields.contract
        strike = "0" if c.strike is None else repr(c.strike)
        return [c.con_id, c.symbol, c.sec_type, c.last_trade, strike, c.right, c.multiplier,
                c.exchange, c.currency, c.local_symbol, c.trading_class]  # fmt: skip
    exchange = order.fields.contract.exchange or inst.exchange
    return [*inst.wire_head(),
            exchange, inst.currency, inst.local_symbol, inst.trading_class]  # fmt: skip


def _price(value: Decimal | None) -> Decimal | str:
    return UNSET_DOUBLE if value is None else value


def _trail_stop(order: SimOrder) -> Decimal | str:
    """The trailing stop as it stands now (IB reports the ratcheted stop, not the initial)."""
    if order.trail_stop is not None:
        return order.trail_stop
    return _price(order.fields.trail_stop_price)


def _state(order: SimOrder, what_if: WhatIfResult | None) -> Fields:
    """status, the nine margin strings, commission/min/max/currency, warningText."""
    if what_if is None:
        margins: Fields = [UNSET_DOUBLE] * 9
        return [order.status, *margins, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, "", ""]
    w = what_if

    def s(v: Decimal) -> str:
        return str(v.quantize(Decimal("0.01")))

    return [
        order.status,
        s(w.init_before), s(w.maint_before), s(w.equity_before),
        s(w.init_after - w.init_before), s(w.maint_after - w.maint_before),
        s(w.equity_after - w.equity_before),
        s(w.init_after), s(w.maint_after), s(w.equity_after),
        w.commission, w.commission, w.commission, w.currency, "",
    ]  # fmt: skip


def open_order(order: SimOrder, server_version: int, what_if: WhatIfResult | None = None) -> Fields:
    """OPEN_ORDER exactly as IB's decoder walks it (no version field: server >= 145)."""
    f = order.fields
    out: Fields = [Msg.OPEN_ORDER, f.order_id, *_contract(order)]
    out += [
        f.action, f.total_quantity, f.order_type, _price(f.lmt_price), _price(f.aux_price),
        f.tif, f.oca_group, order.account, f.open_close, f.origin, f.order_ref,
        order.client_id, order.perm_id, f.outside_rth, f.hidden, "0", f.good_after_time,
        "",  # deprecated sharesAllocation
        f.fa_group, f.fa_method, f.fa_percentage,
    ]  # fmt: skip
    if server_version < 177:
        out.append("")  # faProfile
    out += [
        f.model_code, f.good_till_date, f.rule80a, _opt(f.percent_offset), "",  # settlingFirm
        0, "", -1,  # shortSaleSlot, designatedLocation, exemptCode
        0,  # auctionStrategy
        "", "", "",  # startingPrice, stockRefPrice, delta
        "", "",  # stockRangeLower/Upper
        f.display_size or "", f.block_order, f.sweep_to_fill, f.all_or_none,
        "" if f.min_qty is None else f.min_qty, f.oca_type,
        False, False, "",  # eTradeOnly, firmQuoteOnly, nbboPriceCap
        f.parent_id, f.trigger_method,
        "", 0, "", "",  # volatility, volatilityType, deltaNeutralOrderType, deltaNeutralAuxPrice
        False, 0,  # continuousUpdate, referencePriceType
        _trail_stop(order), _opt(f.trailing_percent),
        "", "",  # basisPoints, basisPointsType
        "", 0, 0, 0,  # comboLegsDescrip, comboLegs, orderComboLegs, smartComboRoutingParams
        "", "", "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        "",  # hedgeType
        False, "", "", False,  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
        False,  # deltaNeutralContract present
        f.algo_strategy,
    ]  # fmt: skip
    if f.algo_strategy:
        out.append(len(f.algo_params))
        for tag, value in f.algo_params:
            out += [tag, value]
    out += [False, f.what_if, *_state(order, what_if), False, False]  # solicited … randomize
    out += [
        0,  # conditions
        "", "", _trail_stop(order), _price(f.lmt_price_offset),  # adjusted type, trigger, …
        "", "", "", 0,  # adjustedStopPrice, adjustedStopLimitPrice, trailing amount and unit
        "", "", "",  # soft dollar tier name, value, display name
        _price(f.cash_qty), False, False, False, False,
    ]  # fmt: skip
    if server_version >= 158:
        out.append("")  # duration
    if server_version >= 160:
        out.append("")  # postToAts
    if server_version >= 162:
        out.append(False)  # autoCancelParent
    if server_version >= 170:
        out += ["", "", "", "", ""]  # minTradeQty, minCompeteSize, compete offset, mid offsets
    return out


def open_order_end() -> Fields:
    """OPEN_ORDER_END."""
    return [Msg.OPEN_ORDER_END, 1]


def order_status(order: SimOrder) -> Fields:
    """ORDER_STATUS (no version field: server >= 131)."""
    return [
        Msg.ORDER_STATUS,
        order.order_id,
        order.status,
        order.filled,
        order.remaining,
        order.avg_fill_price,
        order.perm_id,
        order.fields.parent_id,
        order.last_fill_price,
        order.client_id,
        "",  # whyHeld
        0,  # mktCapPrice
    ]


def completed_order(order: SimOrder, server_version: int) -> Fields:
    """COMPLETED_ORDER."""
    f = order.fields
    out: Fields = [Msg.COMPLETED_ORDER, *_contract(order)]
    out += [
        f.action, f.total_quantity, f.order_type, _price(f.lmt_price), _price(f.aux_price),
        f.tif, f.oca_group, order.account, f.open_close, f.origin, f.order_ref,
        order.perm_id, f.outside_rth, f.hidden, "0", f.good_after_time,
        f.fa_group, f.fa_method, f.fa_percentage,
    ]  # fmt: skip
    if server_version < 177:
        out.append("")
    out += [
        f.model_code, f.good_till_date, f.rule80a, _opt(f.percent_offset), "",
        0, "", -1,  # shortSaleSlot, designatedLocation, exemptCode
        "", "", "", "", "",  # startingPrice, stockRefPrice, delta, stockRangeLower/Upper
        f.display_size or "", f.sweep_to_fill, f.all_or_none,
        "" if f.min_qty is None else f.min_qty, f.oca_type, f.trigger_method,
        "", 0, "", "",  # volatility, volatilityType, deltaNeutralOrderType, deltaNeutralAuxPrice
        False, 0,  # continuousUpdate, referencePriceType
        _trail_stop(order), _opt(f.trailing_percent),
        "", 0, 0, 0,  # combo legs
        "", "", "",  # scale
        "",  # hedgeType
        "", "", False,  # clearingAccount, clearingIntent, notHeld
        False,  # deltaNeutralContract present
        f.algo_strategy,
    ]  # fmt: skip
    if f.algo_strategy:
        out.append(len(f.algo_params))
        for tag, value in f.algo_params:
            out += [tag, value]
    completed = order.completed_time
    out += [
        False, order.status, False, False,  # solicited, status, randomizeSize/Price
        0,  # conditions
        _trail_stop(order), _price(f.lmt_price_offset), _price(f.cash_qty),
        False, False,  # dontUseAutoPriceForHedge, isOmsContainer
        "", order.filled, 0, False,  # autoCancelDate, filledQuantity, refFuturesConId, autoCancel
        "", False, False, 0,  # shareholder, imbalanceOnly, routeMarketableToBbo, parentPermId
        "" if completed is None else ib_time(completed),
        order.reject_reason or order.completed_status,
    ]  # fmt: skip
    if server_version >= 170:
        out += ["", "", "", "", ""]
    return out


def completed_orders_end() -> Fields:
    """COMPLETED_ORDERS_END."""
    return [Msg.COMPLETED_ORDERS_END]


def execution(req_id: int, fill: SimFill, server_version: int) -> Fields:
    """EXECUTION_DATA (no version field: server >= 136)."""
    order = fill.order
    inst = order.instrument
    assert inst is not None
    # Options route through SMART and have no listing exchange: report CBOE as the venue.
    venue = inst.exchange if inst.sec_type == "CASH" else (inst.primary_exchange or "CBOE")
    out: Fields = [
        Msg.EXECUTION_DATA, req_id, order.order_id,
        *inst.wire_head(),
        venue, inst.currency, inst.local_symbol, inst.trading_class,
        fill.exec_id, ib_time(fill.time), order.account, venue, fill.side,
        fill.shares, fill.price, order.perm_id, order.client_id, 0,  # liquidation
        fill.cum_qty, fill.avg_price, order.fields.order_ref,
        "", "", order.fields.model_code,  # evRule, evMultiplier, modelCode
        2,  # lastLiquidity: removed liquidity
    ]  # fmt: skip
    if server_version >= 178:
        out.append(False)  # pendingPriceRevision
    return out


def execution_end(req_id: int) -> Fields:
    """EXECUTION_DATA_END."""
    return [Msg.EXECUTION_DATA_END, 1, req_id]


def commission_report(fill: SimFill) -> Fields:
    """COMMISSION_REPORT (realized PnL unset for opening fills, as IB does)."""
    realized = (
        UNSET_DOUBLE
        if fill.realized_pnl is None
        else fill.realized_pnl.quantize(Decimal("0.000001")).normalize()
    )
    return [
        Msg.COMMISSION_REPORT, 1, fill.exec_id, fill.commission, fill.commission_currency,
        realized, UNSET_DOUBLE, "",
    ]  # fmt: skip


def _opt(value: float | None) -> str:
    return "" if value is None else repr(value)
