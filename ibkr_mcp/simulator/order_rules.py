"""Order acceptance and modification rules, answered with IB's own error codes and texts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ibkr_mcp.simulator.contracts import order_refusal
from ibkr_mcp.simulator.order_tif import SUPPORTED_TIFS, parse_good_till
from ibkr_mcp.simulator.order_types import ORDER_TYPES, prices_on_tick_grid, validate

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from ibkr_mcp.simulator.accounts import Account
    from ibkr_mcp.simulator.catalogue import Instrument
    from ibkr_mcp.simulator.incoming_order import OrderFields
    from ibkr_mcp.simulator.order_model import SimOrder

Problem = tuple[int, str]
NO_SECDEF = "No security definition has been found for the request"
TICK_TEXT = "The price does not conform to the minimum price variation for this contract."


def _cause(text: str) -> Problem:
    return 321, f"Error validating request.-'bN' : cause - {text}"


def _rejected(text: str) -> Problem:
    return 201, f"Order rejected - reason:{text}"


def check_order(
    order: SimOrder,
    matches: list[Instrument],
    accounts: Mapping[str, Account],
    parent: SimOrder | None,
    now: datetime,
) -> Problem | None:
    """Why IB would refuse a new order, or ``None``."""
    f = order.fields
    if not matches:
        return 200, NO_SECDEF
    if len(matches) > 1:
        return 200, f"The contract description specified for {f.contract.symbol} is ambiguous."
    if order.account not in accounts:
        return _cause(f"Invalid account {order.account}")
    if f.action not in ("BUY", "SELL"):
        return _cause(f"Invalid side {f.action!r}")
    if f.total_quantity <= 0:
        return 434, "The order size cannot be zero."
    if f.contract.sec_type == "BAG" or f.condition_count or f.algo_strategy:
        return _rejected("Combo, conditional and algo orders are not supported by the simulator.")
    if f.parent_id:
        if parent is None:
            return 135, f"Can't find order with id ={f.parent_id}"
        if parent.is_done and parent.status != "Filled":
            return _rejected("The parent order is no longer active.")
    refusal = order_refusal(matches[0], f.contract.sec_type)  # indices, CONTFUT
    if refusal is not None:
        return refusal
    return _check_terms(f, matches[0], now)


def _check_terms(f: OrderFields, inst: Instrument, now: datetime) -> Problem | None:
    """Type, TIF and prices: shared by new orders and modifications."""
    kind = ORDER_TYPES.get(f.order_type)
    if kind is None or inst.sec_type not in kind.sec_types:
        return 387, f"Unsupported order type {f.order_type} for this exchange and security type."
    if f.tif not in SUPPORTED_TIFS:
        return _rejected(f"Time in force {f.tif or '(empty)'} is not supported.")
    if f.tif == "OPG" and (f.order_type not in ("MKT", "LMT") or inst.sec_type != "STK"):
        return _rejected("OPG is only valid for market and limit orders on stocks.")
    if kind.at_close and f.tif != "DAY":
        return _rejected(f"{f.order_type} orders must have time in force DAY.")
    if f.tif == "GTD":
        until = parse_good_till(f.good_till_date)
        if until is None:
            return _cause(f"Invalid goodTillDate {f.good_till_date!r}")
        if until <= now:
            return _rejected("The Good-Till-Date is in the past.")
    reason = validate(kind, f)
    if reason is not None:
        return _cause(reason)
    if any(p % inst.min_tick for p in prices_on_tick_grid(kind, f)):
        return 110, TICK_TEXT
    return None


def check_modify(order: SimOrder, f: OrderFields, now: datetime) -> Problem | None:
    """Why IB would refuse to modify ``order`` into ``f`` (placeOrder with an existing id)."""
    if order.status == "Filled":
        return 104, "Can't modify a filled order."
    if order.is_done:
        return 103, f"Duplicate order id {f.order_id}"
    old = order.fields
    same_contract = (
        f.contract.symbol.upper() == old.contract.symbol.upper()
        and f.contract.sec_type == old.contract.sec_type
    ) or (f.contract.con_id and f.contract.con_id == getattr(order.instrument, "con_id", 0))
    if f.action != old.action or not same_contract:
        return 105, "Order being modified does not match original order."
    if f.order_type != old.order_type:
        return 329, "Order modify failed. Cannot change to the new order type."
    if f.total_quantity < order.filled:
        return _cause("The new quantity is below the filled quantity.")
    inst = order.instrument
    assert inst is not None
    return _check_terms(f, inst, now)
