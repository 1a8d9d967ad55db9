"""Domain ``OrderRequest`` → ib_async ``Order``: IB's order type names and price fields."""

from __future__ import annotations

from datetime import UTC
from typing import Final

from ib_async import Order

from ibkr_mcp.errors import InvalidInputError
from ibkr_mcp.models import GOOD_TILL_FORMAT, OrderRequest

#: Our order type literals (identifiers) and IB's names where they differ.
IB_ORDER_TYPES: Final[dict[str, str]] = {"STP_LMT": "STP LMT", "TRAIL_LIMIT": "TRAIL LIMIT"}
#: IB's names back to ours.
FROM_IB_ORDER_TYPES: Final[dict[str, str]] = {v: k for k, v in IB_ORDER_TYPES.items()}
#: Types whose stop_price is IB's auxPrice (for trailing types auxPrice is the trail amount).
AUX_STOP_TYPES: Final = frozenset({"STP", "STP_LMT", "MIT", "LIT"})
TRAIL_TYPES: Final = frozenset({"TRAIL", "TRAIL_LIMIT"})


def good_till_text(request: OrderRequest) -> str:
    """IB's ``goodTillDate`` text for a GTD order (UTC, ``YYYYMMDD HH:MM:SS UTC``)."""
    if request.good_till is None:
        return ""
    return request.good_till.astimezone(UTC).strftime(GOOD_TILL_FORMAT)


def _missing(field: str, order_type: str) -> InvalidInputError:
    return InvalidInputError(
        f"A {order_type} order needs {field}.",
        remedy=f"Pass {field}.",
        details={"errors": [{"field": field, "message": f"required for {order_type}"}]},
    )


def build_order(request: OrderRequest) -> Order:
    """The ib_async order for ``request``: type, prices, tif, account, orderRef, bracket links."""
    kind = request.order_type
    order = Order(
        action=request.side,
        totalQuantity=float(request.quantity),
        orderType=IB_ORDER_TYPES.get(kind, kind),
    )
    if kind in ("LMT", "STP_LMT", "LIT", "LOC"):
        if request.limit_price is None:
            raise _missing("limit_price", kind)
        order.lmtPrice = float(request.limit_price)
    if kind in AUX_STOP_TYPES:
        if request.stop_price is None:
            raise _missing("stop_price", kind)
        order.auxPrice = float(request.stop_price)
    if kind in TRAIL_TYPES:
        if request.trailing_amount is not None:
            order.auxPrice = float(request.trailing_amount)
        elif request.trailing_percent is not None:
            order.trailingPercent = float(request.trailing_percent)
        else:
            raise _missing("trailing_amount or trailing_percent", kind)
        if request.stop_price is not None:
            order.trailStopPrice = float(request.stop_price)
        if kind == "TRAIL_LIMIT":
            if request.limit_offset is None:
                raise _missing("limit_offset", kind)
            order.lmtPriceOffset = float(request.limit_offset)
    order.tif = request.tif
    order.goodTillDate = good_till_text(request)
    order.outsideRth = request.outside_rth
    order.account = request.account
    order.orderRef = request.order_ref or ""
    if request.parent_id is not None:
        order.parentId = request.parent_id
    if request.oca_group:
        # Bracket legs: filling (or cancelling) one leg cancels the other.
        order.ocaGroup = request.oca_group
        order.ocaType = 1
    return order
