"""Option chains: IB's option parameters (reqSecDefOptParams) of a resolved underlying."""

from __future__ import annotations

from decimal import Decimal

from ibkr_mcp.gateway import convert
from ibkr_mcp.gateway.connection import IbConnection
from ibkr_mcp.models import Contract, OptionChain


async def option_chains(conn: IbConnection, underlying: Contract) -> list[OptionChain]:
    """Every exchange's option parameters of ``underlying`` (a stock, index or future).

    Raises:
        IbkrMcpError: If the broker cannot answer.
    """
    ib = conn.ib
    fut_exchange = underlying.exchange if underlying.sec_type == "FUT" else ""
    raw = await conn.call(
        lambda: ib.reqSecDefOptParamsAsync(
            underlying.symbol, fut_exchange, underlying.sec_type, underlying.con_id
        ),
        what=f"option chain of {underlying.symbol}",
        extra={"symbol": underlying.symbol},
    )
    out = []
    for chain in raw:
        strikes = sorted({s for s in (convert.num(x) for x in chain.strikes) if s is not None})
        out.append(
            OptionChain(
                exchange=chain.exchange,
                underlying_con_id=chain.underlyingConId or underlying.con_id,
                trading_class=chain.tradingClass,
                multiplier=convert.num(chain.multiplier) or Decimal(100),
                expirations=tuple(sorted(chain.expirations)),
                strikes=tuple(strikes),
            )
        )
    return out
