"""Compact records of the day's orders and fills: what a long session keeps in memory per order."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, NamedTuple, TypeVar

from pydantic import BaseModel

from ibkr_mcp.models import Fill, OrderInfo, Side

M = TypeVar("M", bound=BaseModel)

#: Decimals kept once: quantities and zero amounts repeat across orders (a Decimal is 104 bytes).
_DECIMALS: dict[Decimal, Decimal] = {}
_MAX_SHARED_DECIMALS: Final = 4096


def _dec(value: Decimal | None) -> Decimal | None:
    """``value``, or the equal Decimal already held when it is a small whole number."""
    if value is None or value != value.to_integral_value() or abs(value) > 100_000:
        return value
    shared = _DECIMALS.get(value)
    if shared is not None and str(shared) == str(value):  # 1 and 1.0 are equal, not the same
        return shared
    if len(_DECIMALS) < _MAX_SHARED_DECIMALS:
        _DECIMALS.setdefault(value, value)
    return value


def _str(value: str | None) -> str | None:
    # Interned: account, symbol, status, ... repeat; an orderRef is shared by its order and fills,
    # an exec id by the fill's record and the listeners' "heard" set.
    return None if value is None else sys.intern(value)


class OrderRecord(NamedTuple):
    """One order as ``OrderInfo`` has it, held as a tuple (~0.5 kB instead of ~2.3 kB).

    The fields are exactly ``OrderInfo``'s, in its order (a test pins this); ``info()`` gives
    the model back without validating again (the values came from a validated one).
    """

    order_id: int
    perm_id: int | None
    client_id: int | None
    account: str
    symbol: str
    con_id: int | None
    sec_type: str | None
    multiplier: Decimal | None
    side: Side
    quantity: Decimal
    order_type: str
    limit_price: Decimal | None
    stop_price: Decimal | None
    trailing_amount: Decimal | None
    trailing_percent: Decimal | None
    limit_offset: Decimal | None
    tif: str
    good_till: str | None
    outside_rth: bool
    parent_id: int | None
    oca_group: str | None
    status: str
    filled: Decimal
    remaining: Decimal
    avg_fill_price: Decimal | None
    order_ref: str | None
    why_held: str | None
    error: str | None
    updated_at: datetime | None

    @classmethod
    def of(cls, info: OrderInfo) -> OrderRecord:
        """The record of ``info`` (strings interned, small whole Decimals shared)."""
        return cls(*_values(info, cls._fields))

    @property
    def key(self) -> tuple[int, ...]:
        """The order's identity: its perm id, else (client id, order id)."""
        return (self.perm_id,) if self.perm_id else (self.client_id or 0, self.order_id)

    def info(self) -> OrderInfo:
        """The ``OrderInfo`` this record holds."""
        return _model(OrderInfo, self._asdict())


class FillRecord(NamedTuple):
    """One execution as ``Fill`` has it, held as a tuple (~0.5 kB instead of ~2 kB)."""

    exec_id: str
    order_id: int
    perm_id: int | None
    account: str
    symbol: str
    con_id: int | None
    side: Side
    quantity: Decimal
    price: Decimal
    time: datetime
    commission: Decimal | None
    commission_currency: str | None
    realized_pnl: Decimal | None
    order_ref: str | None

    @classmethod
    def of(cls, fill: Fill) -> FillRecord:
        """The record of ``fill`` (strings interned, small whole Decimals shared)."""
        return cls(*_values(fill, cls._fields))

    def fill(self) -> Fill:
        """The ``Fill`` this record holds."""
        return _model(Fill, self._asdict())


#: How a field's value is kept: repeated strings interned, small whole Decimals shared.
_KEEP: Final[dict[str, Callable[[Any], Any]]] = {
    **dict.fromkeys(
        (
            "exec_id",
            "account",
            "symbol",
            "sec_type",
            "order_type",
            "tif",
            "status",
            "order_ref",
            "why_held",
            "commission_currency",
        ),
        _str,
    ),
    **dict.fromkeys(("quantity", "filled", "remaining", "realized_pnl"), _dec),
}


def _values(model: BaseModel, fields: tuple[str, ...]) -> list[Any]:
    values = model.__dict__
    return [
        values[name] if (keep := _KEEP.get(name)) is None else keep(values[name]) for name in fields
    ]


def _model(model: type[M], values: dict[str, Any]) -> M:
    # Every field is set (no defaults to fill in), and the values came from a validated model.
    return model.model_construct(_fields_set=set(values), **values)
