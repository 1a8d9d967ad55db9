"""Shared input pieces for tool declarations: base model, contract fields, account resolution."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core.core_schema import CoreSchema

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


#: The largest order id IB accepts (a signed 32-bit int on the wire).
MAX_ORDER_ID: Final[int] = 2**31 - 1

#: Decimal text accepted (and documented as the schema's ``pattern``): ASCII only.
DECIMAL_PATTERN: Final[str] = r"^-?[0-9]+(\.[0-9]+)?$"
_DECIMAL_TEXT: Final = re.compile(DECIMAL_PATTERN, re.ASCII)
_INT_TEXT: Final = re.compile(r"[0-9]+", re.ASCII)


def _plain_decimal(value: Any) -> Any:
    """Accept JSON numbers and plain ASCII decimal text only (no spaces, ``_``, exponents)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value):
        raise ValueError(
            "must be a JSON number or plain decimal text such as 10 or 187.25 "
            "(ASCII digits and one '.', no spaces, separators or exponents)"
        )
    return value


def _plain_int(value: Any) -> Any:
    """Accept JSON integers and plain ASCII digit text only (path parameters are text)."""
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    if isinstance(value, str) and not _INT_TEXT.fullmatch(value):
        raise ValueError("must be a whole number written with ASCII digits only")
    return value


class _DecimalTextSchema:
    """Documents the text form: the schema's string branch gets the accepted pattern."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        for branch in schema.get("anyOf", [schema]):
            if branch.get("type") == "string":
                branch["pattern"] = DECIMAL_PATTERN
        return schema


#: Put after a ``Field`` with the number's constraints (constraints first, or pydantic cannot
#: document them): ``Annotated[Decimal, Field(gt=0, ...), *DECIMAL_TEXT]``.
PLAIN_DECIMAL: Final = BeforeValidator(_plain_decimal)
DECIMAL_TEXT_SCHEMA: Final = _DecimalTextSchema()

#: An order id as IB knows it: 1 .. 2**31-1 (anything larger can never name an order).
OrderId = Annotated[
    int,
    Field(ge=1, le=MAX_ORDER_ID),
    BeforeValidator(_plain_int),
    Field(description="The order id (as returned by place_order)."),
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
