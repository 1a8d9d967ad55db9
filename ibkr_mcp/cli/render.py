"""Rich rendering of tool outputs: lists of records as tables, other fields as key/value."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

#: Columns shown first (in this order) when a record has them; the rest follow.
_PREFERRED = (
    "symbol",
    "order_id",
    "account",
    "side",
    "quantity",
    "bid",
    "ask",
    "last",
    "market_data_type",
    "status",
    "gate",
    "outcome",
    "reason",
)
#: Explicit columns for the records people look at most.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "Quote": ("symbol", "bid", "ask", "last", "bid_size", "ask_size", "market_data_type",
              "timestamp"),
    "Bar": ("time", "open", "high", "low", "close", "volume"),
    "Position": ("symbol", "quantity", "avg_cost", "market_price", "market_value",
                 "unrealized_pnl"),
    "OrderInfo": ("order_id", "symbol", "side", "quantity", "order_type", "limit_price",
                  "status", "filled", "avg_fill_price"),
    "Fill": ("exec_id", "order_id", "symbol", "side", "quantity", "price", "commission", "time"),
}  # fmt: skip
_HEADERS = {"market_data_type": "Data", "timestamp": "Time", "avg_cost": "Avg cost"}
#: At most this many columns in a generic records table (the rest is in --json).
_MAX_COLUMNS = 9
#: Columns that make wide tables unreadable and carry little for a human.
_HIDDEN = frozenset({"values", "con_id", "perm_id", "client_id", "source", "wap", "bar_count"})


def fmt(value: Any) -> str:
    """A value for a table cell: Decimals exactly, datetimes ISO, None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value) or "—"
    if isinstance(value, BaseModel):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value)
    return str(value)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, BaseModel | dict | list | tuple) or (
        isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    )


def records_table(title: str, rows: list[BaseModel]) -> Table:
    """A table with one row per record; columns are the scalar fields set in some row."""
    names: list[str] = []
    explicit = _COLUMNS.get(type(rows[0]).__name__) if rows else None
    if explicit:
        names = list(explicit)
    elif rows:
        for name in type(rows[0]).model_fields:
            if name in _HIDDEN:
                continue
            values = [getattr(r, name) for r in rows]
            if all(v is None for v in values) or not all(_is_scalar(v) for v in values):
                continue
            names.append(name)
    if not explicit:
        names.sort(key=lambda n: _PREFERRED.index(n) if n in _PREFERRED else len(_PREFERRED))
        names = names[:_MAX_COLUMNS]
    table = Table(title=title, title_justify="left")
    for name in names:
        header = _HEADERS.get(name, name.replace("_", " ").capitalize())
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(fmt(getattr(row, n)) for n in names))
    if not rows:
        table.add_column("(none)")
    return table


def key_value_table(title: str, pairs: list[tuple[str, Any]]) -> Table:
    """A two-column table of labels and values."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("Field", style="bold")
    table.add_column("Value", overflow="fold")
    for name, value in pairs:
        table.add_row(name.replace("_", " "), fmt(value))
    return table


#: Outputs that read best as a one-row table (a quote, an order).
_ROW_MODELS = frozenset({"Quote", "OrderInfo", "PnL", "CancelResult"})


def render_model(console: Console, title: str, model: BaseModel) -> None:
    """Print ``model``: scalars as one key/value table, record lists and sub-models after it."""
    if type(model).__name__ in _ROW_MODELS:
        console.print(records_table(title, [model]))
        return
    scalars: list[tuple[str, Any]] = []
    later: list[Table] = []
    for name, value in model:
        if isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
            later.append(records_table(name.replace("_", " ").title(), value))
        elif isinstance(value, list) and not value:
            scalars.append((name, "none"))
        elif isinstance(value, BaseModel):
            later.append(key_value_table(name.replace("_", " ").title(), list(value)))
        elif isinstance(value, dict):
            if value and name not in _HIDDEN:
                later.append(key_value_table(name.replace("_", " ").title(), list(value.items())))
        else:
            scalars.append((name, value))
    if scalars:
        console.print(key_value_table(title, scalars))
    for table in later:
        console.print(table)
