"""Option tools: a compact option chain around spot, and batch option quotes with greeks."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from ibkr_mcp.errors import IbkrMcpError, NotFoundError
from ibkr_mcp.models import ContractRef, OptionChain, Quote
from ibkr_mcp.tools.common import (
    Currency,
    Exchange,
    Expiry,
    Right,
    Strike,
    Symbol,
    ToolInput,
    ToolOutput,
    TradingClass,
    field_errors,
    upper_enum,
)
from ibkr_mcp.tools.market_data import QuoteError
from ibkr_mcp.tools.registry import CallContext, ToolSpec

#: Expirations listed when no range is given (an agent's context is the budget).
DEFAULT_EXPIRATIONS = 8
MAX_OPTION_QUOTES = 50


class OptionChainInput(ToolInput):
    """Input of get_option_chain."""

    symbol: Symbol
    sec_type: Annotated[Literal["STK", "IND", "FUT"], BeforeValidator(upper_enum)] = Field(
        "STK", description="The underlying's type."
    )
    exchange: Exchange = "SMART"
    currency: Currency = "USD"
    expiry_from: Expiry | None = Field(None, description="YYYYMMDD; default: the next 8.")
    expiry_to: Expiry | None = None
    strikes_around_spot: int = Field(10, ge=1, le=50, description="Strikes each side of spot.")
    right: Right | None = None
    trading_class: TradingClass | None = None

    @model_validator(mode="after")
    def _range(self) -> OptionChainInput:
        # An empty range is a mistake, not an answer: it listed no expirations, silently.
        frm, to = self.expiry_from, self.expiry_to
        if frm is not None and to is not None and frm[: len(to)] > to[: len(frm)]:
            raise field_errors(self, [("expiry_to", f"{to} is before expiry_from {frm}")])
        return self


class OptionChainResult(ToolOutput):
    """The chain of one trading class on one exchange, cut to the range asked for."""

    symbol: str
    underlying_price: Decimal | None
    exchange: str
    trading_class: str
    multiplier: Decimal
    rights: list[str]
    expirations: list[str]
    strikes: list[Decimal]
    #: Expirations (of this trading class) not listed; widen expiry_from/expiry_to to see them.
    more_expirations: int
    #: Other trading classes of the underlying on this exchange (e.g. SPXW beside SPX).
    other_trading_classes: list[str]


class OptionContract(ToolInput):
    """One option named by underlying, expiry, strike and right."""

    symbol: Symbol
    expiry: Expiry
    strike: Strike
    right: Right
    exchange: Exchange = "SMART"
    currency: Currency = "USD"
    trading_class: TradingClass | None = None

    def to_ref(self) -> ContractRef:
        """The domain reference of this option."""
        return ContractRef(
            symbol=self.symbol,
            sec_type="OPT",
            exchange=self.exchange,
            currency=self.currency,
            expiry=self.expiry,
            strike=self.strike,
            right=self.right,
            trading_class=self.trading_class,
        )


class OptionQuotesInput(ToolInput):
    """Input of get_option_quotes."""

    contracts: list[OptionContract] = Field(min_length=1, max_length=MAX_OPTION_QUOTES)


class OptionQuote(ToolOutput):
    """One option's quote: bid/ask/last, market data type and greeks."""

    expiry: str
    strike: Decimal
    right: str
    quote: Quote


class OptionQuotesResult(ToolOutput):
    """Quotes in request order, plus per-contract errors."""

    quotes: list[OptionQuote]
    errors: list[QuoteError]


def _spot(quote: Quote | None) -> Decimal | None:
    if quote is None:
        return None
    if quote.bid is not None and quote.ask is not None and quote.bid <= quote.ask:
        return (quote.bid + quote.ask) / 2
    return quote.last or quote.close


def _pick(chains: list[OptionChain], params: OptionChainInput) -> tuple[OptionChain, list[str]]:
    on_exchange = [c for c in chains if c.exchange == params.exchange] or chains
    classes = sorted({c.trading_class for c in on_exchange})
    wanted = params.trading_class or (params.symbol if params.symbol in classes else classes[0])
    chosen = [c for c in on_exchange if c.trading_class == wanted]
    if not chosen:
        raise NotFoundError(
            f"No {params.symbol} options of trading class {wanted} on {params.exchange}.",
            remedy=f"Use one of: {', '.join(classes)}.",
            details={"trading_classes": classes},
        )
    return chosen[0], [c for c in classes if c != wanted]


async def get_option_chain(params: OptionChainInput, ctx: CallContext) -> OptionChainResult:
    """Handler of get_option_chain."""
    gateway = ctx.services.gateway
    await gateway.ensure_connected()
    ref = ContractRef(
        symbol=params.symbol,
        sec_type=params.sec_type,
        exchange=params.exchange,
        currency=params.currency,
    )
    underlying = await gateway.resolve_contract(ref)
    chains = await gateway.option_chains(underlying)
    if not chains:
        raise NotFoundError(
            f"{params.symbol} has no listed options.",
            remedy="Check the symbol and sec_type (an index: sec_type IND).",
            details={"symbol": params.symbol},
        )
    chain, others = _pick(chains, params)
    try:
        spot = _spot(await gateway.quote(ref))
    except IbkrMcpError:
        spot = None
    expirations = [
        e
        for e in chain.expirations
        if (params.expiry_from is None or e >= params.expiry_from)
        and (params.expiry_to is None or e <= params.expiry_to)
    ]
    listed = expirations if params.expiry_to else expirations[:DEFAULT_EXPIRATIONS]
    strikes = list(chain.strikes)
    n = params.strikes_around_spot
    if spot is not None and strikes:
        nearest = min(range(len(strikes)), key=lambda i: abs(strikes[i] - spot))
        strikes = strikes[max(0, nearest - n) : nearest + n + 1]
    else:
        middle = len(strikes) // 2
        strikes = strikes[max(0, middle - n) : middle + n + 1]
    return OptionChainResult(
        symbol=underlying.symbol,
        underlying_price=spot,
        exchange=chain.exchange,
        trading_class=chain.trading_class,
        multiplier=chain.multiplier,
        rights=[params.right] if params.right else ["C", "P"],
        expirations=listed,
        strikes=strikes,
        more_expirations=len(chain.expirations) - len(listed),
        other_trading_classes=others,
    )


async def get_option_quotes(params: OptionQuotesInput, ctx: CallContext) -> OptionQuotesResult:
    """Handler of get_option_quotes: every contract concurrently, errors per contract."""
    results = await ctx.services.gateway.quotes([c.to_ref() for c in params.contracts])
    quotes: list[OptionQuote] = []
    errors: list[QuoteError] = []
    for leg, result in zip(params.contracts, results, strict=True):
        name = f"{leg.symbol} {leg.expiry} {leg.strike} {leg.right}"
        if isinstance(result, Quote):
            quotes.append(
                OptionQuote(expiry=leg.expiry, strike=leg.strike, right=leg.right, quote=result)
            )
        elif isinstance(result, IbkrMcpError):
            errors.append(QuoteError(symbol=name, code=result.code, message=result.message,
                                     remedy=result.remedy))  # fmt: skip
        else:
            errors.append(QuoteError(symbol=name, code="INTERNAL_ERROR", message=str(result)))
    return OptionQuotesResult(quotes=quotes, errors=errors)


SPECS: tuple[ToolSpec, ...] = (  # type: ignore[type-arg]
    ToolSpec(
        name="get_option_chain",
        description="Option expirations (YYYYMMDD; next 8 unless a range is given) and the "
        "strikes around spot, with exchange, trading class and multiplier.",
        input_model=OptionChainInput,
        output_model=OptionChainResult,
        handler=get_option_chain,
        http_method="GET",
        http_path="/api/options/chain",
        cli_name="option-chain",
        cli_arguments=("symbol",),
    ),
    ToolSpec(
        name="get_option_quotes",
        description=f"Quotes of up to {MAX_OPTION_QUOTES} options: bid/ask/last, implied vol, "
        "delta, gamma, vega, theta, market data type; per-contract errors.",
        input_model=OptionQuotesInput,
        output_model=OptionQuotesResult,
        handler=get_option_quotes,
        http_method="POST",
        http_path="/api/options/quotes",
        cli_name="option-quotes",
    ),
)
