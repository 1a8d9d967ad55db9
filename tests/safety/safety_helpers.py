"""Builders shared by the safety tests (a uniquely named module: test dirs have no __init__)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ibkr_mcp.config import Settings
from ibkr_mcp.safety.context import OrderIntent, OverrideFile, ReferenceQuote, TokenCheck

NOW = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)
PAPER = "DU1234567"
LIVE = "U7654321"
VALID_TOKEN = TokenCheck(present=True, valid=True, reason=None)
_DEFAULT = object()


def build_settings(data_dir: Any, **overrides: Any) -> Settings:
    overrides.setdefault("DATA_DIR", data_dir)
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


def build_intent(**overrides: Any) -> OrderIntent:
    fields: dict[str, Any] = {
        "account": PAPER,
        "symbol": "AAPL",
        "con_id": 265598,
        "sec_type": "STK",
        "currency": "USD",
        "exchange": "SMART",
        "side": "BUY",
        "quantity": Decimal(10),
        "order_type": "LMT",
        "limit_price": Decimal("190.00"),
        "tif": "DAY",
        "min_tick": Decimal("0.01"),
    }
    fields.update(overrides)
    return OrderIntent(**fields)


def build_quote(
    bid: str | None = "189.90",
    ask: str | None = "190.10",
    last: str | None = "190.00",
    *,
    delayed: bool = False,
) -> ReferenceQuote:
    def dec(v: str | None) -> Decimal | None:
        return None if v is None else Decimal(v)

    return ReferenceQuote(dec(bid), dec(ask), dec(last), delayed, NOW)


def valid_override(path: Any, **overrides: Any) -> OverrideFile:
    fields: dict[str, Any] = {
        "path": path,
        "exists": True,
        "owner_ok": True,
        "mode_ok": True,
        "account": LIVE,
        "expires": datetime(2026, 1, 16, tzinfo=UTC),
        "max_notional": None,
        "symbols": None,
        "error": None,
    }
    fields.update(overrides)
    return OverrideFile(**fields)
