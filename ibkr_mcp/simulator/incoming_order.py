"""The full placeOrder field walk, exactly as IB's client emits it for server versions 157-178."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

from ibkr_mcp.simulator.incoming import ContractSpec, read_contract
from ibkr_mcp.simulator.wire import FieldReader, MalformedMessageError

#: Fields after the condition type, per IB order-condition type (price, time, margin, …).
_CONDITION_FIELDS = {1: 6, 3: 3, 4: 3, 5: 4, 6: 5, 7: 5}


@dataclass(frozen=True, slots=True)
class OrderFields:
    """Every order attribute the simulator uses or echoes back in OPEN_ORDER."""

    order_id: int
    contract: ContractSpec
    action: str
    total_quantity: Decimal
    order_type: str
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    oca_group: str = ""
    account: str = ""
    open_close: str = ""
    origin: int = 0
    order_ref: str = ""
    transmit: bool = True
    parent_id: int = 0
    block_order: bool = False
    sweep_to_fill: bool = False
    display_size: int = 0
    trigger_method: int = 0
    outside_rth: bool = False
    hidden: bool = False
    good_after_time: str = ""
    good_till_date: str = ""
    fa_group: str = ""
    fa_method: str = ""
    fa_percentage: str = ""
    model_code: str = ""
    oca_type: int = 0
    rule80a: str = ""
    all_or_none: bool = False
    min_qty: int | None = None
    percent_offset: float | None = None
    trail_stop_price: Decimal | None = None
    trailing_percent: float | None = None
    lmt_price_offset: Decimal | None = None
    algo_strategy: str = ""
    algo_params: tuple[tuple[str, str], ...] = ()
    what_if: bool = False
    cash_qty: Decimal | None = None
    condition_count: int = 0
    combo_legs: int = 0
    extra: dict[str, str] = field(default_factory=dict)


def parse_place_order(r: FieldReader, server_version: int) -> OrderFields:
    """Walk PLACE_ORDER field by field (no version field: server version >= 145)."""
    order_id = r.int()
    base = read_contract(r)
    sec_id_type = r.str()
    sec_id = r.str()
    contract = replace(base, sec_id_type=sec_id_type, sec_id=sec_id)
    action = r.str().upper()
    total_quantity = r.decimal() or Decimal(0)
    order_type = r.str().upper()
    lmt_price = r.decimal()
    aux_price = r.decimal()
    tif = r.str().upper() or "DAY"  # IB defaults an empty TIF to DAY
    oca_group = r.str()
    account = r.str()
    open_close = r.str()
    origin = r.int()
    order_ref = r.str()
    transmit = r.bool()
    parent_id = r.int()
    block_order = r.bool()
    sweep_to_fill = r.bool()
    display_size = r.int()
    trigger_method = r.int()
    outside_rth = r.bool()
    hidden = r.bool()
    combo_legs = 0
    if contract.sec_type == "BAG":
        combo_legs = _count(r)
        r.skip(combo_legs * 8)
        r.skip(_count(r))  # per-leg prices
        r.skip(_count(r) * 2)  # smart combo routing params
    r.str()  # deprecated sharesAllocation
    r.float()  # discretionaryAmt
    good_after_time = r.str()
    good_till_date = r.str()
    fa_group = r.str()
    fa_method = r.str()
    fa_percentage = r.str()
    if server_version < 177:
        r.str()  # faProfile
    model_code = r.str()
    r.int()  # shortSaleSlot
    r.str()  # designatedLocation
    r.int()  # exemptCode
    oca_type = r.int()
    rule80a = r.str()
    r.str()  # settlingFirm
    all_or_none = r.bool()
    min_qty_text = r.str()
    min_qty = int(min_qty_text) if min_qty_text.lstrip("-").isdigit() else None
    percent_offset = r.float()
    r.skip(3)  # eTradeOnly, firmQuoteOnly, nbboPriceCap (all deprecated)
    r.int()  # auctionStrategy
    r.skip(5)  # startingPrice, stockRefPrice, delta, stockRangeLower, stockRangeUpper
    r.bool()  # overridePercentageConstraints
    r.float()  # volatility
    r.int()  # volatilityType
    delta_neutral_type = r.str()
    r.float()  # deltaNeutralAuxPrice
    if delta_neutral_type:
        r.skip(8)
    r.bool()  # continuousUpdate
    r.int()  # referencePriceType
    trail_stop_price = r.decimal()
    trailing_percent = r.float()
    r.skip(2)  # scaleInitLevelSize, scaleSubsLevelSize
    scale_increment = r.float()
    if scale_increment is not None and scale_increment > 0:
        r.skip(7)
    r.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if r.str():  # hedgeType
        r.str()  # hedgeParam
    r.bool()  # optOutSmartRouting
    r.skip(2)  # clearingAccount, clearingIntent
    r.bool()  # notHeld
    if r.bool():  # delta-neutral contract
        r.skip(3)
    algo_strategy = r.str()
    algo_params: list[tuple[str, str]] = []
    if algo_strategy:
        for _ in range(_count(r)):
            algo_params.append((r.str(), r.str()))
    r.str()  # algoId
    what_if = r.bool()
    r.str()  # orderMiscOptions
    r.bool()  # solicited
    r.skip(2)  # randomizeSize, randomizePrice
    if order_type in ("PEG BENCH", "PEGBENCH"):
        r.skip(5)
    condition_count = _count(r)
    if condition_count:
        for _ in range(condition_count):
            kind = r.int()
            if kind not in _CONDITION_FIELDS:
                raise MalformedMessageError(f"unknown order condition type {kind}")
            r.skip(_CONDITION_FIELDS[kind])
        r.skip(2)  # conditionsIgnoreRth, conditionsCancelOrder
    r.skip(2)  # adjustedOrderType, triggerPrice
    lmt_price_offset = r.decimal()
    r.skip(4)  # adjustedStopPrice, adjustedStopLimitPrice, adjustedTrailingAmount, trailing unit
    r.str()  # extOperator
    r.skip(2)  # softDollarTier name, value
    cash_qty = r.decimal()
    r.skip(4)  # MiFID II decision maker/algo, execution trader/algo
    r.skip(4)  # dontUseAutoPriceForHedge, isOmsContainer, discretionaryUpToLimit, priceMgmtAlgo
    if server_version >= 158:
        r.str()  # duration
    if server_version >= 160:
        r.str()  # postToAts
    if server_version >= 162:
        r.bool()  # autoCancelParent
    if server_version >= 166:
        r.str()  # advancedErrorOverride
    if server_version >= 169:
        r.str()  # manualOrderTime
    if server_version >= 170:
        if contract.exchange == "IBKRATS":
            r.str()  # minTradeQty
        if order_type in ("PEG BEST", "PEGBEST"):
            r.str()  # minCompeteSize
            compete = r.float()
            if compete is not None and compete == float("inf"):
                r.skip(2)
        elif order_type in ("PEG MID", "PEGMID"):
            r.skip(2)
    if r.remaining:
        raise MalformedMessageError(f"{r.remaining} unexpected trailing placeOrder fields")
    return OrderFields(
        order_id=order_id,
        contract=contract,
        action=action,
        total_quantity=total_quantity,
        order_type=order_type,
        lmt_price=lmt_price,
        aux_price=aux_price,
        tif=tif,
        oca_group=oca_group,
        account=account,
        open_close=open_close,
        origin=origin,
        order_ref=order_ref,
        transmit=transmit,
        parent_id=parent_id,
        block_order=block_order,
        sweep_to_fill=sweep_to_fill,
        display_size=display_size,
        trigger_method=trigger_method,
        outside_rth=outside_rth,
        hidden=hidden,
        good_after_time=good_after_time,
        good_till_date=good_till_date,
        fa_group=fa_group,
        fa_method=fa_method,
        fa_percentage=fa_percentage,
        model_code=model_code,
        oca_type=oca_type,
        rule80a=rule80a,
        all_or_none=all_or_none,
        min_qty=min_qty,
        percent_offset=percent_offset,
        trail_stop_price=trail_stop_price,
        trailing_percent=trailing_percent,
        lmt_price_offset=lmt_price_offset,
        algo_strategy=algo_strategy,
        algo_params=tuple(algo_params),
        what_if=what_if,
        cash_qty=cash_qty,
        condition_count=condition_count,
        combo_legs=combo_legs,
    )


def _count(r: FieldReader) -> int:
    n = r.int()
    if n < 0 or n > 1000:
        raise MalformedMessageError(f"bad repeat count {n}")
    return n
