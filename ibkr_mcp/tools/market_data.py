"""Market data tools: one quote, a batch of quotes, historical bars."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, field_validator

from ibkr_mcp.errors import IbkrMcpError
from ibkr_mcp.gateway.load import market_data_call
from ibkr_mcp.models import Bar, Quote, SecType
from ibkr_mcp.tools.common import (
    ContractInput,
    Currency,
    Exchange,
    Symbol,
    ToolInput,
    ToolOutput,
    contract_ref,
)
from ibkr_mcp.tools.registry import CallContext, ToolSpec

#: IB's duration form, exactly: "<count> <unit>" (one space, unit S, D, W, M or Y).
DURATION_PATTERN = r"^[1-9][0-9]{0,4} [SDWMY]$"
#: Every bar size IB's reqHistoricalData accepts, spelled exactly as IB spells it.
BarSize = Literal[
    "1 secs", "5 secs", "10 secs", "15 secs", "30 secs",
    "1 min", "2 mins", "3 mins", "5 mins", "10 mins", "15 mins", "20 mins", "30 mins",
    "1 hour", "2 hours", "3 hours", "4 hours", "8 hours",
    "1 day", "1 week", "1 month",
]  # fmt: skip
WhatToShow = Literal["TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST"]


class QuoteInput(ContractInput):
    """Input of get_quote."""


class QuotesInput(ToolInput):
    """Input of get_quotes."""

    symbols: Annotated[list[Symbol], Field(min_length=1, max_length=100)] = Field(
        description='Tickers, e.g. ["AAPL", "MSFT"] (a comma-separated string also works).'
    )
    sec_type: SecType = "STK"
    exchange: Exchange = "SMART"
    currency: Currency = "USD"

    @field_validator("symbols", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [s for s in (p.strip() for p in value.split(",")) if s]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [s for v in value for s in (p.strip() for p in v.split(",")) if s]
        return value


class QuoteError(ToolOutput):
    """Why one symbol of a batch has no quote."""

    symbol: str
    code: str
    message: str
    remedy: str | None = None


class QuotesResult(ToolOutput):
    """Quotes in request order, plus per-symbol errors."""

    quotes: list[Quote]
    errors: list[QuoteError]


class BarsInput(ContractInput):
    """Input of get_bars."""

    duration: str = Field(
        "5 D",
        pattern=DURATION_PATTERN,
        description="IB duration '<count> <unit>', unit S, D, W, M or Y: '3600 S', '5 D', '1 Y'.",
    )
    bar_size: BarSize = Field("1 day", description="IB bar size, e.g. '1 min', '1 hour', '1 day'.")
    what_to_show: WhatToShow = "TRADES"
    use_rth: bool = Field(True, description="Regular trading hours only.")
    end: AwareDatetime | None = Field(None, description="End time (ISO-8601 with offset); now.")


class BarsResult(ToolOutput):
    """Historical bars, oldest first."""

    symbol: str
    con_id: int
    duration: str
    bar_size: str
    what_to_show: str
    use_rth: bool
    bars: list[Bar]


async def get_quote(params: QuoteInput, ctx: CallContext) -> Quote:
    """Handler of get_quote."""
    with market_data_call():
        return await ctx.services.gateway.quote(params.to_ref())


async def get_quotes(params: QuotesInput, ctx: CallContext) -> QuotesResult:
    """Handler of get_quotes: all symbols requested concurrently, errors per symbol."""
    refs = [
        contract_ref(s, params.sec_type, params.exchange, params.currency) for s in params.symbols
    ]
    with market_data_call():
        results = await ctx.services.gateway.quotes(refs)
    quotes: list[Quote] = []
    errors: list[QuoteError] = []
    for symbol, result in zip(params.symbols, results, strict=True):
        if isinstance(result, Quote):
            quotes.append(result)
        elif isinstance(result, IbkrMcpError):
            errors.append(
                QuoteError(
                    symbol=symbol.upper(),
                    code=result.code,
                    message=result.message,
                    remedy=result.remedy,
                )
            )
        else:
            errors.append(
                QuoteError(symbol=symbol.upper(), code="INTERNAL_ERROR", message=str(result))
            )
    return QuotesResult(quotes=quotes, errors=errors)


async def get_bars(params: BarsInput, ctx: CallContext) -> BarsResult:
    """Handler of get_bars."""
    gateway = ctx.services.gateway
    ref = params.to_ref()
    with market_data_call():
        contract = await gateway.resolve_contract(ref)
        bars = await gateway.bars(
            ref,
            duration=params.duration,
            bar_size=params.bar_size,
            what_to_show=params.what_to_show,
            use_rth=params.use_rth,
            end=params.end,
        )
    return BarsResult(
        symbol=contract.symbol,
        con_id=contract.con_id,
        duration=params.duration,
        bar_size=params.bar_size,
        what_to_show=params.what_to_show,
        use_rth=params.use_rth,
        bars=bars,
    )


SPECS: tuple[ToolSpec, ...] = (  # type: ignore[type-arg]
    ToolSpec(
        name="get_quote",
        description="Snapshot quote (bid/ask/last, sizes) for one symbol; says live or delayed.",
        input_model=QuoteInput,
        output_model=Quote,
        handler=get_quote,
        http_method="GET",
        http_path="/api/market/quote",
        cli_name="quote",
        cli_arguments=("symbol",),
        idempotent=True,
    ),
    ToolSpec(
        name="get_quotes",
        description="Snapshot quotes for up to 100 symbols (concurrently); a symbol that fails "
        "is listed in errors, the rest still answer.",
        input_model=QuotesInput,
        output_model=QuotesResult,
        handler=get_quotes,
        http_method="GET",
        http_path="/api/market/quotes",
        cli_name="quotes",
        cli_arguments=("symbols",),
    ),
    ToolSpec(
        name="get_bars",
        description="Historical OHLCV bars, e.g. duration '5 D' with bar_size '1 day'.",
        input_model=BarsInput,
        output_model=BarsResult,
        handler=get_bars,
        http_method="GET",
        http_path="/api/market/bars",
        cli_name="bars",
        cli_arguments=("symbol",),
    ),
)
