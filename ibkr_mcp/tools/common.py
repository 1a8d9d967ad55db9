"""Shared input pieces for tool declarations: base model, contract fields, account resolution."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ibkr_mcp.errors import AccountNotManagedError, GatewayUnavailableError
from ibkr_mcp.models import ContractRef, SecType
from ibkr_mcp.tools.registry import CallContext


class ToolInput(BaseModel):
    """Base of every tool input: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class ToolOutput(BaseModel):
    """Base of every tool output."""

    model_config = ConfigDict(frozen=True, extra="forbid")


Symbol = Annotated[
    str,
    Field(
        min_length=1,
        max_length=24,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9.\- ]*$",
        description="Ticker (AAPL), or FX pair (EUR.USD) with sec_type CASH.",
    ),
    AfterValidator(str.upper),
]
Exchange = Annotated[
    str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9]+$"), AfterValidator(str.upper)
]
Currency = Annotated[
    str, Field(min_length=3, max_length=3, pattern=r"^[A-Za-z]{3}$"), AfterValidator(str.upper)
]
Account = Annotated[
    str | None,
    Field(
        default=None,
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9]+$",
        description="Account id; default: the first managed account.",
    ),
]


class ContractInput(ToolInput):
    """A contract named by symbol and qualifiers."""

    symbol: Symbol
    sec_type: SecType = Field("STK", description="STK (stocks, ETFs) or CASH (FX).")
    exchange: Exchange = "SMART"
    currency: Currency = "USD"

    def to_ref(self) -> ContractRef:
        """The domain ``ContractRef``; ``EUR.USD`` with CASH becomes EUR/USD on IDEALPRO."""
        return contract_ref(self.symbol, self.sec_type, self.exchange, self.currency)


def contract_ref(symbol: str, sec_type: SecType, exchange: str, currency: str) -> ContractRef:
    """Build a ``ContractRef``, applying the FX conventions agents expect."""
    symbol = symbol.upper()
    if sec_type == "CASH":
        if "." in symbol:
            base, _, quote = symbol.partition(".")
            symbol, currency = base, quote
        if exchange == "SMART":
            exchange = "IDEALPRO"
    return ContractRef(symbol=symbol, sec_type=sec_type, exchange=exchange, currency=currency)


async def resolve_account(ctx: CallContext, account: str | None) -> str:
    """The account to use: the one given (if the gateway manages it) or the first managed one.

    Raises:
        GatewayUnavailableError: If not connected.
        AccountNotManagedError: If ``account`` is not managed by the connected gateway.
    """
    gateway = ctx.services.gateway
    await gateway.ensure_connected()
    accounts = gateway.managed_accounts()
    if not accounts:
        raise GatewayUnavailableError(
            "The gateway reports no managed accounts.",
            remedy="Check that IB Gateway / TWS is logged in, then retry.",
        )
    if account is None:
        return accounts[0]
    if account not in accounts:
        raise AccountNotManagedError(
            f"Account {account!r} is not managed by the connected gateway.",
            remedy=f"Use one of: {', '.join(accounts)}.",
            details={"account": account, "managed_accounts": list(accounts)},
        )
    return account
