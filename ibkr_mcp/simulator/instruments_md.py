"""Instrument requests beyond stocks: option chains (reqSecDefOptParams) and greeks ticks."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from ibkr_mcp.simulator import outgoing_instruments as oi
from ibkr_mcp.simulator.contracts import by_con_id
from ibkr_mcp.simulator.derivatives import book_for
from ibkr_mcp.simulator.options_market import computations
from ibkr_mcp.simulator.wire import Field, FieldReader

if TYPE_CHECKING:
    from decimal import Decimal

    from ibkr_mcp.simulator.catalogue import Instrument
    from ibkr_mcp.simulator.market import MarketModel

__all__ = ["SecDefReq", "option_ticks", "parse_sec_def_opt_params", "sec_def_opt_params"]


class _Stream(Protocol):
    req_id: int
    inst: Instrument
    data_type: int
    sent: dict[int, tuple[Decimal, Decimal] | str]


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
    delayed = sub.data_type in (3, 4)
    for tick_type, values in computations(market, sub.inst, at, delayed):
        fields = oi.tick_option_computation(sub.req_id, tick_type, values)
        text = "|".join(str(f) for f in fields[3:])
        if sub.sent.get(tick_type) == text:
            continue
        sub.sent[tick_type] = text
        out.append(fields)
    return out
