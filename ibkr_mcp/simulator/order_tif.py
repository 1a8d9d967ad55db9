"""Time in force and session rules: DAY/GTD expiry, auction times, regular trading hours."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ibkr_mcp.simulator._market_calendar import ET, is_trading_day, next_trading_day
from ibkr_mcp.simulator.derivatives import expiry_instant, last_day

if TYPE_CHECKING:
    from ibkr_mcp.simulator.order_model import SimOrder

SUPPORTED_TIFS = frozenset({"DAY", "GTC", "IOC", "FOK", "GTD", "OPG"})
#: When a DAY order's session ends (New York time): the stock close, or IDEALPRO's 17:00 roll.
DAY_CLOSE = {"STK": time(16, 0), "CASH": time(17, 0)}
#: The regular-hours open, when OPG (market/limit-on-open) orders execute.
OPEN = time(9, 30)
#: Regular trading hours of US stocks (New York time).
RTH = (time(9, 30), time(16, 0))


def _session_day(created: datetime, boundary: time) -> datetime:
    local = created.astimezone(ET)
    day = local.date()
    if local.time() >= boundary or not is_trading_day(day):
        day = next_trading_day(day)
    return datetime.combine(day, boundary, tzinfo=ET)


def day_order_expiry(order: SimOrder) -> datetime:
    """The end of the session a DAY order belongs to, as IB expires it (not UTC midnight).

    An order sent after the close (or on a weekend) belongs to the next trading day.
    """
    return _session_day(order.created, DAY_CLOSE.get(order.fields.contract.sec_type, time(16, 0)))


def close_auction(order: SimOrder) -> datetime:
    """When a MOC/LOC order executes: the close of the session it belongs to."""
    return _session_day(order.created, time(16, 0))


def open_auction(order: SimOrder) -> datetime:
    """When an OPG order executes: the next regular-hours open."""
    return _session_day(order.created, OPEN)


def parse_good_till(text: str) -> datetime | None:
    """IB's goodTillDate: ``yyyymmdd hh:mm:ss [zone]`` or ``yyyymmdd-hh:mm:ss`` (UTC).

    Without a zone the gateway's own zone applies; the simulator reports UTC at connect.
    Returns ``None`` for text that is not a date.
    """
    text = text.strip()
    try:
        if len(text) == 8 and text.isdigit():
            return datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC) + timedelta(days=1)
        if len(text) >= 17 and text[8] == "-":
            return datetime.strptime(text[:17], "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        parts = text.split()
        zone = ZoneInfo(parts[2]) if len(parts) > 2 else UTC
        stamp = datetime.strptime(parts[0] + " " + parts[1], "%Y%m%d %H:%M:%S").replace(tzinfo=zone)
        return stamp.astimezone(UTC)
    except (ValueError, IndexError, KeyError, ZoneInfoNotFoundError):
        return None


def _tif_expiry(order: SimOrder) -> datetime | None:
    tif = order.fields.tif
    if tif == "DAY":
        return day_order_expiry(order)
    if tif == "GTD":
        return parse_good_till(order.fields.good_till_date)
    return None


def contract_expiry(order: SimOrder) -> datetime | None:
    """When the order's future or option stops trading (its working orders are cancelled)."""
    inst = order.instrument
    if inst is None or inst.sec_type not in ("OPT", "FUT") or len(inst.last_trade) < 8:
        return None
    return expiry_instant(last_day(inst))


def expiry(order: SimOrder) -> datetime | None:
    """When the order expires unfilled: DAY, GTD, or its contract's last trading day."""
    ends = [t for t in (_tif_expiry(order), contract_expiry(order)) if t is not None]
    return min(ends) if ends else None


def in_regular_hours(sec_type: str, at: datetime) -> bool:
    """Whether ``at`` lies in regular trading hours (forex: whenever it trades)."""
    if sec_type == "CASH":
        return True
    local = at.astimezone(ET)
    return is_trading_day(local.date()) and RTH[0] <= local.time() < RTH[1]
