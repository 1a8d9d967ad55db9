"""Input and output models of the order tools (preview_order, place_order, cancel_order)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Annotated, Literal

import orjson
from pydantic import AwareDatetime, Field, model_validator

from ibkr_mcp.models import OrderType, Quote, Side, TimeInForce, WhatIf
from ibkr_mcp.tools.common import (
    DECIMAL_TEXT_SCHEMA,
    PLAIN_DECIMAL,
    Account,
    ContractInput,
    OrderId,
    ToolInput,
    ToolOutput,
)

Quantity = Annotated[
    Decimal, Field(gt=0, max_digits=12, decimal_places=4), PLAIN_DECIMAL, DECIMAL_TEXT_SCHEMA
]
LimitPrice = Annotated[
    Decimal, Field(gt=0, max_digits=14, decimal_places=6), PLAIN_DECIMAL, DECIMAL_TEXT_SCHEMA
]

IdempotencyKey = Field(
    min_length=8,
    max_length=64,
    pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$",
    description="Your client order id (8-64 chars); reusing it never sends a second order.",
)


class OrderInput(ContractInput):
    """The order itself (contract fields plus side, size, type); shared by preview and place."""

    side: Side
    quantity: Quantity = Field(description="Shares (> 0).")
    order_type: OrderType = "LMT"
    limit_price: LimitPrice | None = Field(None, description="Required for LMT; not for MKT.")
    tif: TimeInForce = "DAY"
    account: Account = None
    outside_rth: bool = Field(
        False, description="Allow filling outside regular trading hours (extended session)."
    )

    @model_validator(mode="after")
    def _fields_for_type(self) -> OrderInput:
        if self.order_type == "LMT" and self.limit_price is None:
            raise ValueError("limit_price is required for a LMT order")
        if self.order_type == "MKT" and self.limit_price is not None:
            raise ValueError("limit_price is not used by a MKT order; omit it or use LMT")
        if self.sec_type == "STK" and self.quantity != self.quantity.to_integral_value():
            raise ValueError("quantity must be whole shares for stocks and ETFs")
        return self

    def request_fingerprint(self) -> str:
        """A hash of the order as requested (for idempotency: compared before any I/O)."""
        data = self.model_dump(mode="json", include=set(OrderInput.model_fields))
        for key in ("quantity", "limit_price"):
            if data.get(key) is not None:
                data[key] = str(Decimal(str(data[key])).normalize())
        if not data.get("outside_rth"):
            # Absent and false hash alike: keys recorded before the field existed still match.
            data.pop("outside_rth", None)
        return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


class PreviewInput(OrderInput):
    """Input of preview_order."""


class PlaceInput(OrderInput):
    """Input of place_order."""

    confirmation_token: str = Field(
        min_length=8, max_length=128, description="The token returned by preview_order."
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
    tif: str
    estimated_notional: Decimal | None


class PreviewResult(ToolOutput):
    """What placing this order would do, and the token that allows placing it."""

    order: OrderSummary
    quote: Quote | None
    what_if: WhatIf | None
    what_if_error: str | None = None
    verdicts: list[GateVerdict]
    would_send: bool
    refusals: list[GateVerdict]
    confirmation_token: str | None
    token_expires_at: AwareDatetime | None
    next_step: str


class PlaceResult(ToolOutput):
    """The outcome of place_order. ``sent`` says whether anything reached the broker."""

    sent: bool
    status: str
    message: str
    order_id: int | None = None
    perm_id: int | None = None
    filled: Decimal | None = None
    avg_fill_price: Decimal | None = None
    idempotency_key: str
    replayed: bool = False
    correlation_id: str
    order: OrderSummary | None = None
    verdicts: list[GateVerdict] = Field(default_factory=list)
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
