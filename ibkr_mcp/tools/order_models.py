"""Input and output models of the order tools (preview_order, place_order, cancel_order)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from pydantic import AwareDatetime, BeforeValidator, ConfigDict, Field, model_validator

from ibkr_mcp.models import OrderType, Quote, Side, TimeInForce, WhatIf
from ibkr_mcp.tools import order_types
from ibkr_mcp.tools.common import (
    DECIMAL_TEXT_SCHEMA,
    PLAIN_DECIMAL,
    Account,
    ContractInput,
    OrderId,
    ToolInput,
    ToolOutput,
    field_errors,
    upper_enum,
)

Quantity = Annotated[
    Decimal, Field(gt=0, max_digits=12, decimal_places=4), PLAIN_DECIMAL, DECIMAL_TEXT_SCHEMA
]
LimitPrice = Annotated[
    Decimal, Field(gt=0, max_digits=14, decimal_places=6), PLAIN_DECIMAL, DECIMAL_TEXT_SCHEMA
]

SideIn = Annotated[Side, BeforeValidator(upper_enum)]
OrderTypeIn = Annotated[OrderType, BeforeValidator(upper_enum)]
TifIn = Annotated[TimeInForce, BeforeValidator(upper_enum)]
Price = LimitPrice
Percent = Annotated[
    Decimal, Field(gt=0, le=50, decimal_places=4), PLAIN_DECIMAL, DECIMAL_TEXT_SCHEMA
]


def _order_schema(schema: dict[str, Any]) -> None:
    # The discriminated union over order_type: which price fields each type needs or forbids.
    schema["oneOf"] = order_types.schema_variants()


KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"
IdempotencyKey = Field(
    min_length=8,
    max_length=64,
    pattern=KEY_PATTERN,
    description="A retry with the same key never sends twice.",
)


#: The fields an order had before the newer order shapes: always hashed (keys recorded then
#: still match). Any other field joins the hash only when set (not None / False).
_LEGACY_FIELDS = frozenset(
    {"symbol", "sec_type", "exchange", "currency", "side", "quantity", "order_type",
     "limit_price", "tif", "account"}
)  # fmt: skip


def request_hash(model: ToolInput, fields: set[str]) -> str:
    """A hash of ``fields`` of ``model`` as requested, decimals normalized (``185.0`` = ``185``)."""
    data: dict[str, Any] = {}
    for key, value in model.model_dump(include=fields).items():
        if key not in _LEGACY_FIELDS and (value is None or value is False):
            continue
        if isinstance(value, Decimal):
            value = str(value.normalize())
        elif not isinstance(value, str | bool | int | None):
            value = str(value)
        data[key] = value
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


class OrderFields(ToolInput):
    """Order type, prices and time in force (shared by new orders and modify_order)."""

    order_type: OrderTypeIn = "LMT"
    limit_price: Price | None = None
    stop_price: Price | None = Field(None, description="Trigger price.")
    trailing_amount: Price | None = None
    trailing_percent: Percent | None = None
    limit_offset: Price | None = Field(None, description="TRAIL_LIMIT: limit vs stop.")
    tif: TifIn = Field("DAY", description="GTD needs good_till.")
    good_till: AwareDatetime | None = None
    outside_rth: bool = False


class OrderInput(ContractInput, OrderFields):
    """The order itself (contract fields plus side, size, type); shared by preview and place."""

    model_config = ConfigDict(json_schema_extra=_order_schema)

    side: SideIn
    quantity: Quantity = Field(description="Shares, or contracts (OPT/FUT).")
    take_profit_price: Price | None = None
    stop_loss_price: Price | None = None
    stop_loss_limit_price: Price | None = Field(None, description="Makes the stop STP_LMT.")
    account: Account = None

    @model_validator(mode="after")
    def _fields_for_type(self) -> OrderInput:
        # Every problem at once, each naming its field: the caller fixes them in one go.
        problems = order_types.field_problems(
            self.model_dump(include=set(OrderFields.model_fields))
        )
        if self.sec_type != "CASH" and self.quantity != self.quantity.to_integral_value():
            problems.append(("quantity", "quantity must be whole shares / contracts"))
        if self.stop_loss_limit_price is not None and self.stop_loss_price is None:
            problems.append(("stop_loss_price", "stop_loss_limit_price needs stop_loss_price"))
        if self.is_bracket:
            if self.order_type not in order_types.BRACKET_PARENTS:
                problems.append(
                    ("order_type", "take_profit_price/stop_loss_price (a bracket) need order_type "
                     f"{'/'.join(sorted(order_types.BRACKET_PARENTS))}"),
                )  # fmt: skip
            if self.tif in ("IOC", "FOK", "OPG"):
                problems.append(("tif", f"a bracket cannot use tif {self.tif}"))
            problems.extend(self._bracket_sides())
        if problems:
            raise field_errors(self, problems)
        return self

    def _bracket_sides(self) -> list[tuple[str, str]]:
        """``(field, message)`` for a take-profit or stop-loss on the wrong side of the entry."""
        entry = self.limit_price or self.stop_price
        if entry is None:
            return []
        up = self.side == "BUY"
        problems = []
        for name, profit in (("take_profit_price", True), ("stop_loss_price", False)):
            price = getattr(self, name)
            if price is None:
                continue
            above = up == profit  # BUY: profit above, loss below; SELL the reverse
            if (price <= entry) if above else (price >= entry):
                where = "above" if above else "below"
                problems.append(
                    (
                        name,
                        f"{name} must be {where} the entry price {entry} of a {self.side} bracket",
                    )
                )
        return problems

    @property
    def is_bracket(self) -> bool:
        """Whether take-profit or stop-loss children are attached."""
        return self.take_profit_price is not None or self.stop_loss_price is not None

    def request_fingerprint(self) -> str:
        """A hash of the order as requested (for idempotency: compared before any I/O)."""
        return request_hash(self, set(OrderInput.model_fields))


class PreviewInput(OrderInput):
    """Input of preview_order."""


class PlaceInput(OrderInput):
    """Input of place_order."""

    confirmation_token: str = Field(
        min_length=8, max_length=128, description="From preview_order; valid for minutes."
    )
    idempotency_key: str = IdempotencyKey


class CancelInput(ToolInput):
    """Input of cancel_order."""

    order_id: OrderId


class GateVerdict(ToolOutput):
    """One gate's decision."""

    gate: str
    outcome: Literal["allow", "refuse", "dry_run", "skip", "hold"]
    reason: str
    remedy: str | None = None


class OrderSummary(ToolOutput):
    """The order as understood after validation and contract resolution."""

    account: str
    symbol: str
    con_id: int
    sec_type: str
    currency: str
    side: Side
    quantity: Decimal
    order_type: str
    limit_price: Decimal | None
    stop_price: Decimal | None = None
    trailing_amount: Decimal | None = None
    trailing_percent: Decimal | None = None
    limit_offset: Decimal | None = None
    tif: str
    good_till: AwareDatetime | None = None
    outside_rth: bool = False
    multiplier: Decimal | None = None
    estimated_notional: Decimal | None
    take_profit_price: Decimal | None = None
    stop_loss_price: Decimal | None = None
    stop_loss_limit_price: Decimal | None = None
    #: modify_order: the working order this changes.
    modifies: int | None = None


class PreviewResult(ToolOutput):
    """What the order would do: refused or not first, the token that allows it, the details."""

    would_send: bool
    #: The refusing gates in full (gate, reason, remedy); empty when none refused.
    refusals: list[GateVerdict]
    #: The gates that did not refuse, in one line.
    passed: str
    next_step: str
    confirmation_token: str | None
    token_expires_at: AwareDatetime | None
    order: OrderSummary
    quote: Quote | None
    what_if: WhatIf | None
    what_if_error: str | None = None


class LegResult(ToolOutput):
    """One bracket child as the broker acknowledged it."""

    role: str
    order_id: int
    status: str
    order_ref: str | None = None


class PlaceResult(ToolOutput):
    """The outcome of an order action. ``sent`` says whether anything reached the broker."""

    sent: bool
    status: str
    message: str
    order_id: int | None = None
    perm_id: int | None = None
    filled: Decimal | None = None
    avg_fill_price: Decimal | None = None
    legs: list[LegResult] = Field(default_factory=list)
    idempotency_key: str
    replayed: bool = False
    correlation_id: str
    passed: str | None = None
    order: OrderSummary | None = None
    what_if: WhatIf | None = None
    approval_id: str | None = Field(
        None, description="Set when status is PENDING_APPROVAL: the id a human approves."
    )
    approval_expires_at: AwareDatetime | None = None


class CancelResult(ToolOutput):
    """The order's state after the cancel request."""

    order_id: int
    status: str
    message: str
    correlation_id: str
