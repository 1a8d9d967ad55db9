"""Input and output models of modify_order, close_position, cancel_all_orders, wait_for_order."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator
from pydantic_core import PydanticCustomError

from ibkr_mcp.models import Fill, OrderInfo
from ibkr_mcp.tools.common import (
    Account,
    OrderId,
    OrderRef,
    SecTypeIn,
    Symbol,
    ToolInput,
    ToolOutput,
    field_errors,
)
from ibkr_mcp.tools.order_models import (
    KEY_PATTERN,
    IdempotencyKey,
    Percent,
    PlaceResult,
    PreviewResult,
    Price,
    Quantity,
    TifIn,
    request_hash,
)

TWO_STEP = (
    "Without confirmation_token it previews (every gate) and returns one; call again with it "
    "and an idempotency_key to act."
)


class TwoStep(ToolInput):
    """The confirmation fields of a two-step tool."""

    confirmation_token: str | None = Field(None, min_length=8, max_length=128)
    idempotency_key: str | None = Field(
        None,
        min_length=8,
        max_length=64,
        pattern=KEY_PATTERN,
        description=IdempotencyKey.description,
    )

    @model_validator(mode="after")
    def _both_or_neither(self) -> TwoStep:
        if self.confirmation_token is not None and self.idempotency_key is None:
            raise field_errors(
                self, [("idempotency_key", "idempotency_key is required with confirmation_token")]
            )
        return self

    def request_fingerprint(self) -> str:
        """A hash of the request without its token and key."""
        fields = set(type(self).model_fields) - {"confirmation_token", "idempotency_key"}
        return request_hash(self, fields)


class ModifyInput(TwoStep):
    """Input of modify_order: the working order and the fields to change."""

    order_id: OrderId
    quantity: Quantity | None = None
    limit_price: Price | None = None
    stop_price: Price | None = None
    trailing_amount: Price | None = None
    trailing_percent: Percent | None = None
    limit_offset: Price | None = None
    tif: TifIn | None = None
    good_till: AwareDatetime | None = None
    outside_rth: bool | None = None

    @model_validator(mode="after")
    def _something_changes(self) -> ModifyInput:
        changes = self.changes()
        if not changes:
            # No one field is wrong: the whole input is (the error's field is "(input)").
            raise PydanticCustomError(
                "value_error", "name at least one field to change (quantity, limit_price, ...)"
            )
        return self

    def changes(self) -> dict[str, object]:
        """The fields given (the rest keep the order's current values)."""
        skip = {"order_id", "confirmation_token", "idempotency_key"}
        return {
            k: v
            for k, v in self.model_dump(exclude=skip).items()
            if v is not None and k in self.model_fields_set
        }


class ClosePositionInput(TwoStep):
    """Input of close_position."""

    symbol: Symbol
    sec_type: SecTypeIn | None = None
    con_id: int | None = Field(None, ge=1, description="If several positions match.")
    quantity: Quantity | None = Field(None, description="Default: the whole position.")
    order_type: Literal["MKT", "LMT"] = "MKT"
    limit_price: Price | None = None
    account: Account = None

    @model_validator(mode="after")
    def _limit(self) -> ClosePositionInput:
        if self.order_type == "LMT" and self.limit_price is None:
            raise field_errors(self, [("limit_price", "limit_price is required for a LMT order")])
        if self.order_type == "MKT" and self.limit_price is not None:
            raise field_errors(
                self, [("limit_price", "limit_price is not used by a MKT order; omit it")]
            )
        return self


class TwoStepResult(ToolOutput):
    """A two-step tool's answer: ``stage`` says which half ran."""

    stage: Literal["preview", "done"]
    preview: PreviewResult | None = None
    result: PlaceResult | None = None


class CancelAllInput(ToolInput):
    """Input of cancel_all_orders."""

    symbol: Symbol | None = Field(None, description="Only this symbol's orders.")
    account: Account = None


class CancelledOrder(ToolOutput):
    """One order's outcome in cancel_all_orders."""

    order_id: int
    symbol: str
    status: str
    error: str | None = None


class CancelAllResult(ToolOutput):
    """What cancel_all_orders did, order by order."""

    cancelled: int
    orders: list[CancelledOrder]
    message: str
    correlation_id: str


class WaitInput(ToolInput):
    """Input of wait_for_order."""

    order_id: OrderRef
    until: Literal["filled", "done"] = Field(
        "done", description="filled, or done (filled, cancelled or inactive)."
    )
    timeout_seconds: int = Field(10, ge=1, le=60)


class OrderFillsResult(ToolOutput):
    """An order's state and its fills; a queued order's approval state (no order id yet)."""

    order_id: int | None
    status: str
    filled: Decimal
    remaining: Decimal
    avg_fill_price: Decimal | None
    fills: list[Fill]
    #: wait_for_order: whether the wait ended by the timeout (the state is as it stands).
    timed_out: bool = False
    order: OrderInfo | None
    #: An order queued for approval: its id and state (pending, approved, denied, ..., sent).
    approval_id: str | None = None
    approval_state: str | None = None
