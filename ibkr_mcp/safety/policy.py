"""A JSON-safe description of the effective safety policy (for health, resources and the CLI)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ibkr_mcp.models import json_number
from ibkr_mcp.safety.chain import GATES
from ibkr_mcp.safety.facts import kill_switch_active as _kill_switch_file_exists
from ibkr_mcp.safety.facts import read_override_file

if TYPE_CHECKING:
    from ibkr_mcp.config import Settings


def _override_status(settings: Settings, now: datetime) -> dict[str, Any]:
    path = settings.live_override_path
    out: dict[str, Any] = {"path": str(path)}
    if settings.TRADING_MODE != "live":
        out["required"] = False
        return out
    ov = read_override_file(path)
    problem = None
    if not ov.exists:
        problem = "missing"
    elif not ov.owner_ok:
        problem = "not owned by the server's user"
    elif not ov.mode_ok:
        problem = "writable by group or others"
    elif ov.error is not None:
        problem = f"malformed: {ov.error}"
    elif ov.expires is not None and ov.expires <= now:
        problem = f"expired at {ov.expires.isoformat()}"
    out.update(
        required=True,
        present=ov.exists,
        valid=problem is None,
        problem=problem,
        account=ov.account,
        expires=None if ov.expires is None else ov.expires.isoformat(),
        max_notional=None if ov.max_notional is None else json_number(ov.max_notional),
        symbols=None if ov.symbols is None else list(ov.symbols),
    )
    return out


def _summary(settings: Settings, kill_switch: bool) -> str:
    currency = (
        settings.ALLOWED_CURRENCIES[0] if len(settings.ALLOWED_CURRENCIES) == 1 else "(currency)"
    )
    orders = "orders enabled" if settings.ORDERS_ENABLED else "orders disabled (dry run)"
    text = (
        f"{settings.TRADING_MODE} mode, {orders}, max {settings.MAX_ORDER_QUANTITY} shares / "
        f"{settings.MAX_ORDER_NOTIONAL} {currency} per order, "
        f"price band {settings.PRICE_BAND_PCT}%"
    )
    if kill_switch:
        text = "KILL SWITCH ACTIVE: every order refused; " + text
    return text


def describe_policy(
    settings: Settings, *, kill_switch_active: bool | None = None
) -> dict[str, Any]:
    """Describe the safety policy the chain enforces, JSON-safe.

    Args:
        settings: The effective settings.
        kill_switch_active: Whether the kill switch is engaged (default: check the file now).

    Returns:
        Mode, orders_enabled, the ordered gates with a one-line description each, limits,
        allowlists, kill switch, override file status (when live), token TTL and a ``summary``.
    """
    if kill_switch_active is None:
        kill_switch_active = _kill_switch_file_exists(settings.kill_switch_path)
    from ibkr_mcp.safety.emergency import current_halt

    halt = current_halt(settings)
    summary = _summary(settings, kill_switch_active)
    if halt.halted and halt.source != "kill_switch":
        summary = f"HALTED ({halt.source}: {halt.reason}): every order refused; " + summary
    return {
        "summary": summary,
        "state": "halted" if halt.halted else "trading",
        "halt": halt.to_dict(),
        "mode": settings.TRADING_MODE,
        "orders_enabled": settings.ORDERS_ENABLED,
        "gates": [{"name": g.name, "description": g.description} for g in GATES],
        "limits": {
            "max_order_quantity": json_number(settings.MAX_ORDER_QUANTITY),
            "max_order_notional": json_number(settings.MAX_ORDER_NOTIONAL),
            "notional_currency": "the order's currency (FX: the quote currency)",
            "price_band_pct": json_number(settings.PRICE_BAND_PCT),
            "max_orders_per_minute": settings.MAX_ORDERS_PER_MINUTE,
            "max_orders_per_day": settings.MAX_ORDERS_PER_DAY,
            "max_daily_notional": json_number(settings.MAX_DAILY_NOTIONAL),
            "duplicate_order_window_seconds": settings.DUPLICATE_ORDER_WINDOW_SECONDS,
            "max_rejections": settings.MAX_REJECTIONS,
            "rejection_window_minutes": settings.REJECTION_WINDOW_MINUTES,
            "max_daily_loss": None
            if settings.MAX_DAILY_LOSS is None
            else json_number(settings.MAX_DAILY_LOSS),
            "max_position_pct_of_net_liq": None
            if settings.MAX_POSITION_PCT_OF_NET_LIQ is None
            else json_number(settings.MAX_POSITION_PCT_OF_NET_LIQ),
            "allow_short": settings.ALLOW_SHORT,
            "trading_hours_only": settings.trading_hours_only,
        },
        "approval": {
            "require_approval": settings.REQUIRE_APPROVAL,
            "ttl_seconds": settings.APPROVAL_TTL_SECONDS,
        },
        "toolsets": sorted(settings.enabled_toolsets),
        "allowlists": {
            "all_symbols": not settings.ALLOWED_SYMBOLS,
            "symbols": list(settings.ALLOWED_SYMBOLS),
            "sec_types": list(settings.ALLOWED_SEC_TYPES),
            "currencies": list(settings.ALLOWED_CURRENCIES),
        },
        "kill_switch": {
            "path": str(settings.kill_switch_path),
            "active": kill_switch_active,
        },
        "live_override": _override_status(settings, datetime.now(UTC)),
        "confirmation_token_ttl_seconds": settings.CONFIRMATION_TOKEN_TTL_SECONDS,
    }
