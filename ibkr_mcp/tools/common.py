"""Shared input pieces for tool declarations: base model, contract fields, account resolution."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import CoreSchema

from ibkr_mcp.errors import AccountNotManagedError, GatewayUnavailableError
from ibkr_mcp.models import ContractRef, NumbersAsJson, OptionRight, SecType
from ibkr_mcp.tools.registry import CallContext


class ToolInput(BaseModel):
    """Base of every tool input: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class ToolOutput(NumbersAsJson):
    """Base of every tool output (Decimals as exact JSON numbers)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def field_errors(model: BaseModel, problems: Iterable[tuple[str, str]]) -> ValidationError:
    """The ``ValidationError`` a model validator raises so each problem names its field.

    A ``ValueError`` raised by a model validator has no location: the caller would see the
    whole input blamed (``(input)``). Raised as a ``ValidationError``, pydantic keeps each
    error's location (prefixed by the outer one when the model is nested), so
    ``details.errors[].field`` names the field to fix; a problem shared by several fields
    (``expiry``, ``strike``, ``right`` for an option) is one error per field.

    Args:
        model: The model being validated (its name titles the error; the inputs are read).
        problems: ``(field, message)`` pairs, in the order the caller should read them.

    Returns:
        The error to raise (``raise field_errors(self, problems)``).
    """
    details = [
        InitErrorDetails(
            # The message goes in as context, not as the template: braces in it stay text.
            type=PydanticCustomError("value_error", "{reason}", {"reason": message}),
            loc=(name,),
            input=getattr(model, name, None),
        )
        for name, message in problems
    ]
    return ValidationError.from_exception_data(type(model).__name__, details)


def upper_enum(value: Any) -> Any:
    """Enum text in any case (``buy``, ``Stp Lmt``) as the canonical upper-case literal."""
    if isinstance(value, str):
        return value.strip().upper().replace(" ", "_")
    return value


def _right(value: Any) -> Any:
    value = upper_enum(value)
    return {"CALL": "C", "PUT": "P"}.get(value, value) if isinstance(value, str) else value


Symbol = Annotated[
    str,
    Field(
        min_length=1,
        max_length=24,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9.\- ]*$",
        description="Ticker (AAPL); FX: EUR.USD with CASH.",
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
        description="Default: first managed.",
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


#: An approval id or idempotency key asked for by reference: it holds a letter (digits alone
#: are an order id). Keys without a letter are asked for by their approval_id.
QUEUED_REF_PATTERN: Final = r"^[0-9]*[A-Za-z][A-Za-z0-9._:\-]*$"
_QUEUED_REF = re.compile(QUEUED_REF_PATTERN)


#: An integer as JSON Schema sees one (``2.0`` is the integer 2), as text.
_INTEGRAL_TEXT: Final = re.compile(r"([0-9]+)(?:\.0*)?", re.ASCII)


def _order_ref(value: Any) -> Any:
    """An order id (an integer, or its text), or an approval id / idempotency key."""
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        integral = _INTEGRAL_TEXT.fullmatch(value)
        if integral is None:
            if not (8 <= len(value) <= 64 and _QUEUED_REF.fullmatch(value)):
                raise ValueError(
                    f"must be an order id (1..{MAX_ORDER_ID}), an approval_id or an idempotency_key"
                )
            return value
        value = int(integral.group(1))
    if not isinstance(value, int):
        raise ValueError("must be an order id (an integer), an approval_id or an idempotency_key")
    if not 1 <= value <= MAX_ORDER_ID:
        raise ValueError(f"order id must be 1..{MAX_ORDER_ID}")
    return value


#: An order id, or (for an order queued for approval, which has none yet) its approval_id or
#: idempotency_key.
OrderRef = Annotated[
    Annotated[int, Field(ge=1, le=MAX_ORDER_ID)]
    | Annotated[str, Field(min_length=8, max_length=64, pattern=QUEUED_REF_PATTERN)],
    BeforeValidator(_order_ref),
    Field(description="Order id, or approval_id / idempotency_key."),
]


SecTypeIn = Annotated[SecType, BeforeValidator(upper_enum)]


def _calendar(value: str) -> str:
    # Not in the pattern, which stays short (it is in every tool's schema the agent loads); IB
    # would answer "no security definition", blaming the contract rather than the date.
    try:
        date(int(value[:4]), int(value[4:6]), int(value[6:8] or 1))
    except ValueError:
        raise PydanticCustomError(
            "value_error", "{value} is not a calendar date (YYYYMMDD or YYYYMM)", {"value": value}
        ) from None
    return value


#: YYYYMMDD or YYYYMM, a real calendar date (20261318 was looked up and reported as "no
#: contract"): the schema's pattern says the shape, ``_calendar`` the date.
Expiry = Annotated[str, Field(pattern=r"^[0-9]{6}([0-9]{2})?$"), AfterValidator(_calendar)]
Right = Annotated[OptionRight, BeforeValidator(_right)]
#: An option's strike (a plain decimal, as every price).
#: Documented as a plain number: query strings carry it as text, which is parsed as a decimal.
Strike = Annotated[Decimal, Field(gt=0), WithJsonSchema({"type": "number", "exclusiveMinimum": 0})]
#: An option's trading class (SPX vs SPXW); upper-cased, letters and digits.
TradingClass = Annotated[
    str, Field(max_length=16, pattern=r"^[A-Za-z0-9]+$"), AfterValidator(str.upper)
]
#: Fields only options and futures use.
_DERIVATIVE_FIELDS = ("expiry", "strike", "right", "trading_class")


class ContractInput(ToolInput):
    """A contract named by symbol and qualifiers."""

    symbol: Symbol
    sec_type: SecTypeIn = Field(
        "STK",
        description="OPT needs expiry, strike, right.",
    )
    exchange: Exchange = "SMART"
    currency: Currency = "USD"
    expiry: Expiry | None = Field(None, description="OPT YYYYMMDD; FUT YYYYMM or front.")
    strike: Strike | None = None
    right: Right | None = None
    trading_class: TradingClass | None = None

    @model_validator(mode="after")
    def _derivative_fields(self) -> ContractInput:
        if self.sec_type == "OPT":
            problems = [
                (n, f"{n} is required for sec_type OPT")
                for n in ("expiry", "strike", "right")
                if getattr(self, n) is None
            ]
        elif self.sec_type == "FUT":
            problems = [
                (n, f"{n} is only for sec_type OPT")
                for n in ("strike", "right")
                if getattr(self, n) is not None
            ]
        else:
            problems = [
                (n, f"{n} is only for sec_type OPT or FUT")
                for n in _DERIVATIVE_FIELDS
                if getattr(self, n) is not None
            ]
        if problems:
            raise field_errors(self, problems)
        return self

    def to_ref(self) -> ContractRef:
        """The domain ``ContractRef``; ``EUR.USD`` with CASH becomes EUR/USD on IDEALPRO."""
        return contract_ref(
            self.symbol,
            self.sec_type,
            self.exchange,
            self.currency,
            expiry=self.expiry,
            strike=self.strike,
            right=self.right,
            trading_class=self.trading_class,
        )


def contract_ref(
    symbol: str, sec_type: SecType, exchange: str, currency: str, **derivative: Any
) -> ContractRef:
    """Build a ``ContractRef``, applying the FX conventions agents expect."""
    symbol = symbol.upper()
    if sec_type == "CASH":
        if "." in symbol:
            base, _, quote = symbol.partition(".")
            symbol, currency = base, quote
        if exchange == "SMART":
            exchange = "IDEALPRO"
    extra = {k: v for k, v in derivative.items() if v is not None}
    return ContractRef(
        symbol=symbol, sec_type=sec_type, exchange=exchange, currency=currency, **extra
    )


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
