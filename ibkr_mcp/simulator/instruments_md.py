"""Instrument requests beyond stocks: option chains (reqSecDefOptParams) and greeks ticks."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from hashlib import blake2b
from typing import TYPE_CHECKING, Protocol

from ibkr_mcp.simulator import outgoing as out_md
from ibkr_mcp.simulator import outgoing_instruments as oi
from ibkr_mcp.simulator._options_pricing import surface
from ibkr_mcp.simulator.contracts import by_con_id
from ibkr_mcp.simulator.derivatives import book_for
from ibkr_mcp.simulator.options_market import computations
from ibkr_mcp.simulator.wire import Field, FieldReader

if TYPE_CHECKING:
    from ibkr_mcp.simulator.catalogue import Instrument
    from ibkr_mcp.simulator.market import MarketModel

#: Key under which a stream remembers the second its option ticks were last computed.
_COMPUTED_AT = -21

__all__ = [
    "SecDefReq",
    "generic_ticks",
    "generic_values",
    "option_ticks",
    "parse_sec_def_opt_params",
    "sec_def_opt_params",
]


class _Stream(Protocol):
    req_id: int
    inst: Instrument
    data_type: int
    sent: dict[int, tuple[Decimal, Decimal] | str]
    generic: frozenset[str]


class SecDefReq:
    """reqSecDefOptParams."""

    __slots__ = ("fut_fop_exchange", "req_id", "under_con_id", "under_sec_type", "under_symbol")

    def __init__(self, req_id: int, symbol: str, exchange: str, sec_type: str, con_id: int) -> None:
        self.req_id = req_id
        self.under_symbol = symbol
        self.fut_fop_exchange = exchange
        self.under_sec_type = sec_type
        self.under_con_id = con_id


def parse_sec_def_opt_params(r: FieldReader) -> SecDefReq:
    """REQ_SEC_DEF_OPT_PARAMS: reqId, underlyingSymbol, futFopExchange, secType, conId."""
    return SecDefReq(r.int(), r.str(), r.str(), r.str().upper(), r.int())


def sec_def_opt_params(market: MarketModel, req: SecDefReq) -> list[list[Field]]:
    """The answer to reqSecDefOptParams: one row per exchange and trading class, then the end.

    As at IB, the underlying is identified by its conId (the symbol must agree when given);
    an unknown underlying, a futures-option request (``futFopExchange`` set) or an underlying
    without options gets just the end marker.
    """
    catalogue = market.catalogue
    out: list[list[Field]] = []
    und = by_con_id(catalogue, req.under_con_id)
    fits = (
        und is not None
        and not req.fut_fop_exchange
        and (not req.under_symbol or req.under_symbol.upper() == und.symbol)
        and (not req.under_sec_type or req.under_sec_type == und.sec_type)
    )
    if und is not None and fits:
        book = book_for(catalogue)
        now = market.clock.now()
        spot = market.reference_price(und, now)
        for root in book.option_roots(und):
            expiries, strikes = book.chain(root, now, spot)
            stamps = [d.strftime("%Y%m%d") for d in expiries]
            for exchange in root.chain_exchanges:
                out.append(
                    oi.sec_def_opt_params(
                        req.req_id, exchange, und.con_id, root.trading_class, "100", stamps,
                        strikes,
                    )
                )  # fmt: skip
    out.append(oi.sec_def_opt_params_end(req.req_id))
    return out


def option_ticks(market: MarketModel, sub: _Stream, at: datetime) -> list[list[Field]]:
    """Option computation ticks (10-13, delayed 80-83) that changed since last sent."""
    out: list[list[Field]] = []
    # Prices move at most once a second: skip the model until the second changes.
    second = str(int(at.timestamp()))
    if sub.sent.get(_COMPUTED_AT) == second:
        return out
    sub.sent[_COMPUTED_AT] = second
    delayed = sub.data_type in (3, 4)
    for tick_type, values in computations(market, sub.inst, at, delayed):
        fields = oi.tick_option_computation(sub.req_id, tick_type, values)
        text = "|".join(str(f) for f in fields[3:])
        if sub.sent.get(tick_type) == text:
            continue
        sub.sent[tick_type] = text
        out.append(fields)
    return out


def generic_ticks(market: MarketModel, sub: _Stream, at: datetime) -> list[list[Field]]:
    """Generic option ticks a stream asked for, sent when they change.

    100: option volume (29 calls, 30 puts), 101: open interest (27 calls, 28 puts),
    104: historical volatility (23), 106: implied volatility (24). On an option they describe
    that contract (its right picks the call or put tick); on a stock or index, its chain
    (seeded daily figures) and its 30-day at-the-money volatility.
    """
    inst = sub.inst
    day = int(at.timestamp()) // 86_400
    values = generic_values(market, inst, day)
    out: list[list[Field]] = []
    for code, tick_type, value, as_size in values:
        if code not in sub.generic:
            continue
        text = str(value)
        if sub.sent.get(tick_type) == text:
            continue
        sub.sent[tick_type] = text
        if as_size:
            out.append(out_md.tick_size(sub.req_id, tick_type, Decimal(value)))
        else:
            out.append(out_md.tick_generic(sub.req_id, tick_type, Decimal(value)))
    return out


def generic_values(
    market: MarketModel, inst: Instrument, day: int
) -> list[tuple[str, int, str, bool]]:
    """(generic code, tick type, value text, sent as a size) for one instrument and day."""
    raw = blake2b(f"ibkr-mcp-gen\x00{market.seed}\x00{inst.con_id}\x00{day}".encode(),
                  digest_size=8).digest()  # fmt: skip
    scale = 1 if inst.sec_type == "OPT" else 200
    volume = [scale * (1 + int.from_bytes(raw[i : i + 2], "little") % 3000) for i in (0, 2)]
    interest = [scale * (5 + int.from_bytes(raw[i : i + 2], "little") % 20000) for i in (4, 6)]
    if inst.sec_type == "OPT":
        call = inst.right == "C"
        rows = [("100", 29 if call else 30, str(volume[0]), True),
                ("101", 27 if call else 28, str(interest[0]), True)]  # fmt: skip
    else:
        rows = [
            ("100", 29, str(volume[0]), True),
            ("100", 30, str(volume[1]), True),
            ("101", 27, str(interest[0]), True),
            ("101", 28, str(interest[1]), True),
        ]
    base = inst.annual_volatility
    if inst.sec_type != "OPT":
        surf = surface(market.seed, inst.con_id, base, inst.sec_type == "IND")
        rows.append(("106", 24, f"{surf.atm(30 / 365):.6f}", False))
    rows.append(("104", 23, f"{base:.6f}", False))
    return rows
