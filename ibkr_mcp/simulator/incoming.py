"""Request parsers: each turns one request's fields (as ib_async/ibapi emit them) into a record."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from ibkr_mcp.simulator.msgids import Req
from ibkr_mcp.simulator.wire import FieldReader, MalformedMessageError


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """A contract as the client described it (any field may be empty)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade: str = ""
    strike: float | None = None
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""
    sec_id_type: str = ""
    sec_id: str = ""

    def describe(self) -> str:
        """Short text for error messages."""
        if self.symbol or self.local_symbol:
            return f"{self.symbol or self.local_symbol} {self.sec_type} {self.currency}".strip()
        return f"conId {self.con_id}"


def read_contract(r: FieldReader, *, with_primary: bool = True) -> ContractSpec:
    """Read IB's 12-field contract block (conId … tradingClass)."""
    con_id = r.int()
    symbol = r.str()
    sec_type = r.str()
    last_trade = r.str()
    strike = r.float()
    right = r.str()
    multiplier = r.str()
    exchange = r.str()
    primary = r.str() if with_primary else ""
    currency = r.str()
    local_symbol = r.str()
    trading_class = r.str()
    return ContractSpec(
        con_id=con_id,
        symbol=symbol,
        sec_type=sec_type.upper(),
        last_trade=last_trade,
        strike=strike,
        right=right,
        multiplier=multiplier,
        exchange=exchange.upper(),
        primary_exchange=primary.upper(),
        currency=currency.upper(),
        local_symbol=local_symbol,
        trading_class=trading_class,
    )


def skip_bag_legs(r: FieldReader, contract: ContractSpec, per_leg: int) -> int:
    """Skip the combo legs a BAG contract carries; returns how many there were."""
    if contract.sec_type != "BAG":
        return 0
    count = r.int()
    if count < 0 or count > 1000:
        raise MalformedMessageError(f"bad combo leg count {count}")
    r.skip(count * per_leg)
    return count


@dataclass(frozen=True, slots=True)
class MktDataReq:
    """reqMktData."""

    req_id: int
    contract: ContractSpec
    generic_ticks: str
    snapshot: bool
    regulatory_snapshot: bool


def parse_mkt_data(r: FieldReader) -> MktDataReq:
    """REQ_MKT_DATA: version, reqId, contract, [legs], dnc, ticks, snapshot, regSnapshot, opts."""
    r.int()  # version
    req_id = r.int()
    contract = read_contract(r)
    skip_bag_legs(r, contract, 4)
    if r.bool():  # delta-neutral contract: conId, delta, price
        r.skip(3)
    generic = r.str()
    snapshot = r.bool()
    regulatory = r.bool()
    if r.remaining:
        r.str()  # mktDataOptions (IB ignores it too)
    return MktDataReq(req_id, contract, generic, snapshot, regulatory)


@dataclass(frozen=True, slots=True)
class ContractDetailsReq:
    """reqContractDetails."""

    req_id: int
    contract: ContractSpec


def parse_contract_details(r: FieldReader, server_version: int) -> ContractDetailsReq:
    """REQ_CONTRACT_DATA: version, reqId, contract, includeExpired, secIdType, secId[, issuer]."""
    r.int()
    req_id = r.int()
    c = read_contract(r)
    r.bool()  # includeExpired
    sec_id_type = r.str()
    sec_id = r.str()
    if server_version >= 176 and r.remaining:
        r.str()  # issuerId
    return ContractDetailsReq(req_id, replace(c, sec_id_type=sec_id_type, sec_id=sec_id))


@dataclass(frozen=True, slots=True)
class HistoricalReq:
    """reqHistoricalData."""

    req_id: int
    contract: ContractSpec
    end: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool


def parse_historical(r: FieldReader) -> HistoricalReq:
    """REQ_HISTORICAL_DATA (no version field at server version >= 124)."""
    req_id = r.int()
    contract = read_contract(r)
    r.bool()  # includeExpired
    end = r.str()
    bar_size = r.str()
    duration = r.str()
    use_rth = r.bool()
    what = r.str()
    format_date = r.int(1)
    skip_bag_legs(r, contract, 4)
    keep = r.bool()
    if r.remaining:
        r.str()  # chartOptions
    return HistoricalReq(
        req_id, contract, end, bar_size, duration, use_rth, what, format_date, keep
    )


@dataclass(frozen=True, slots=True)
class HeadTimestampReq:
    """reqHeadTimeStamp."""

    req_id: int
    contract: ContractSpec
    use_rth: bool
    what_to_show: str
    format_date: int


def parse_head_timestamp(r: FieldReader) -> HeadTimestampReq:
    """REQ_HEAD_TIMESTAMP: reqId, contract, includeExpired, useRTH, whatToShow, formatDate."""
    req_id = r.int()
    contract = read_contract(r)
    r.bool()
    use_rth = r.bool()
    what = r.str()
    fmt_date = r.int(1)
    return HeadTimestampReq(req_id, contract, use_rth, what, fmt_date)


@dataclass(frozen=True, slots=True)
class ExecFilterReq:
    """reqExecutions with its filter (empty fields do not filter)."""

    req_id: int
    client_id: int
    account: str
    time: str
    symbol: str
    sec_type: str
    exchange: str
    side: str


def parse_executions(r: FieldReader) -> ExecFilterReq:
    """REQ_EXECUTIONS: version, reqId, clientId, acctCode, time, symbol, secType, exchange, side."""
    r.int()
    req_id = r.int()
    client_id = r.int()
    account = r.str()
    time = r.str()
    symbol = r.str()
    sec_type = r.str()
    exchange = r.str()
    side = r.str()
    return ExecFilterReq(req_id, client_id, account, time, symbol, sec_type, exchange, side)


@dataclass(frozen=True, slots=True)
class CancelOrderReq:
    """cancelOrder."""

    order_id: int


def parse_cancel_order(r: FieldReader, server_version: int) -> CancelOrderReq:
    """CANCEL_ORDER: version, orderId[, manualOrderCancelTime]."""
    r.int()
    order_id = r.int()
    if server_version >= 169 and r.remaining:
        r.str()
    return CancelOrderReq(order_id)


@dataclass(frozen=True, slots=True)
class PnLSingleReq:
    """reqPnLSingle."""

    req_id: int
    account: str
    model_code: str
    con_id: int


def parse_pnl_single(r: FieldReader) -> PnLSingleReq:
    """REQ_PNL_SINGLE: reqId, account, modelCode, conId."""
    return PnLSingleReq(r.int(), r.str(), r.str(), r.int())


@dataclass(frozen=True, slots=True)
class RealTimeBarsReq:
    """reqRealTimeBars."""

    req_id: int
    contract: ContractSpec
    what_to_show: str
    use_rth: bool


def parse_real_time_bars(r: FieldReader) -> RealTimeBarsReq:
    """REQ_REAL_TIME_BARS: version, reqId, contract, barSize, whatToShow, useRTH, options."""
    r.int()
    req_id = r.int()
    contract = read_contract(r)
    r.int()  # bar size: IB only supports 5 seconds
    what = r.str()
    use_rth = r.bool()
    return RealTimeBarsReq(req_id, contract, what, use_rth)


def quantity(value: Decimal | None) -> Decimal:
    """A quantity field with IB's unset treated as zero."""
    return Decimal(0) if value is None else value


#: Where the request id sits (field index after the message id) in requests the simulator
#: does not serve, so the refusal can name the right request.
REQ_ID_POSITION: dict[int, int] = {
    Req.REQ_MKT_DEPTH: 1,
    Req.CANCEL_MKT_DEPTH: 1,
    Req.REPLACE_FA: 3,
    Req.EXERCISE_OPTIONS: 1,
    Req.REQ_SCANNER_SUBSCRIPTION: 0,
    Req.CANCEL_SCANNER_SUBSCRIPTION: 1,
    Req.REQ_FUNDAMENTAL_DATA: 1,
    Req.CANCEL_FUNDAMENTAL_DATA: 1,
    Req.REQ_CALC_IMPLIED_VOLAT: 1,
    Req.REQ_CALC_OPTION_PRICE: 1,
    Req.CANCEL_CALC_IMPLIED_VOLAT: 1,
    Req.CANCEL_CALC_OPTION_PRICE: 1,
    Req.QUERY_DISPLAY_GROUPS: 1,
    Req.SUBSCRIBE_TO_GROUP_EVENTS: 1,
    Req.UPDATE_DISPLAY_GROUP: 1,
    Req.UNSUBSCRIBE_FROM_GROUP_EVENTS: 1,
    Req.REQ_POSITIONS_MULTI: 1,
    Req.CANCEL_POSITIONS_MULTI: 1,
    Req.REQ_SEC_DEF_OPT_PARAMS: 0,
    Req.REQ_SOFT_DOLLAR_TIERS: 0,
    Req.REQ_SMART_COMPONENTS: 0,
    Req.REQ_NEWS_ARTICLE: 0,
    Req.REQ_HISTORICAL_NEWS: 0,
    Req.REQ_HISTOGRAM_DATA: 0,
    Req.CANCEL_HISTOGRAM_DATA: 0,
    Req.REQ_HISTORICAL_TICKS: 0,
    Req.REQ_TICK_BY_TICK_DATA: 0,
    Req.CANCEL_TICK_BY_TICK_DATA: 0,
    Req.REQ_WSH_META_DATA: 0,
    Req.CANCEL_WSH_META_DATA: 0,
    Req.REQ_WSH_EVENT_DATA: 0,
    Req.CANCEL_WSH_EVENT_DATA: 0,
    Req.REQ_USER_INFO: 0,
}

#: Request-id positions of the requests the simulator does serve (for the received log).
SERVED_REQ_ID_POSITION: dict[int, int] = {
    Req.REQ_MKT_DATA: 1,
    Req.CANCEL_MKT_DATA: 1,
    Req.PLACE_ORDER: 0,
    Req.CANCEL_ORDER: 1,
    Req.REQ_EXECUTIONS: 1,
    Req.REQ_CONTRACT_DATA: 1,
    Req.REQ_HISTORICAL_DATA: 0,
    Req.CANCEL_HISTORICAL_DATA: 1,
    Req.REQ_REAL_TIME_BARS: 1,
    Req.CANCEL_REAL_TIME_BARS: 1,
    Req.REQ_ACCOUNT_SUMMARY: 1,
    Req.CANCEL_ACCOUNT_SUMMARY: 1,
    Req.REQ_ACCOUNT_UPDATES_MULTI: 1,
    Req.CANCEL_ACCOUNT_UPDATES_MULTI: 1,
    Req.REQ_MATCHING_SYMBOLS: 0,
    Req.REQ_HEAD_TIMESTAMP: 0,
    Req.CANCEL_HEAD_TIMESTAMP: 0,
    Req.REQ_PNL: 0,
    Req.CANCEL_PNL: 0,
    Req.REQ_PNL_SINGLE: 0,
    Req.CANCEL_PNL_SINGLE: 0,
}


def locate_req_id(msg_id: int, fields: list[str]) -> int | None:
    """Best-effort request id of a message (``fields`` excludes the message id)."""
    pos = SERVED_REQ_ID_POSITION.get(msg_id, REQ_ID_POSITION.get(msg_id))
    if pos is None or pos >= len(fields):
        return None
    try:
        return int(fields[pos])
    except ValueError:
        return None
