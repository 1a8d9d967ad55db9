"""IB session strings (``tradingHours``/``liquidHours``) → "is the instrument open now?"."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: The trading day's time zone for daily counters (IB's and the simulator's day rolls here).
NEW_YORK = ZoneInfo("America/New_York")

#: IB's legacy zone names and what they mean in the tz database.
_ZONE_ALIASES = {
    "EST": "America/New_York",
    "EST5EDT": "America/New_York",
    "CST": "America/Chicago",
    "CST6CDT": "America/Chicago",
    "MET": "Europe/Berlin",
    "GMT": "Europe/London",
    "JST": "Asia/Tokyo",
}


def trading_day_start(now: datetime) -> datetime:
    """Midnight of ``now``'s New York date (the start of the day the daily limits count)."""
    local = now.astimezone(NEW_YORK)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def zone(name: str) -> ZoneInfo:
    """The tz of an IB ``timeZoneId`` (``US/Eastern``, ``EST``...); New York if unknown."""
    try:
        return ZoneInfo(_ZONE_ALIASES.get(name, name or "America/New_York"))
    except (ZoneInfoNotFoundError, ValueError):
        return NEW_YORK


def _moment(stamp: str, tz: ZoneInfo) -> datetime:
    # "20261125:0930" → aware datetime in the instrument's zone.
    return datetime.strptime(stamp, "%Y%m%d:%H%M").replace(tzinfo=tz)


def sessions(hours: str, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """Parse ``20261125:0930-20261125:1600;20261126:CLOSED`` into (start, end) pairs.

    Raises:
        ValueError: If a part is neither a session nor ``CLOSED``.
    """
    out: list[tuple[datetime, datetime]] = []
    for part in (p.strip() for p in hours.split(";")):
        if not part or part.endswith(":CLOSED"):
            continue
        start, sep, end = part.partition("-")
        if not sep:
            raise ValueError(f"not a session: {part!r}")
        if ":" not in end:
            # Older form "20261125:0930-1600": the end is on the start's date.
            end = f"{start.split(':', 1)[0]}:{end}"
        begin, finish = _moment(start, tz), _moment(end, tz)
        if finish <= begin:
            finish += timedelta(days=1)
        out.append((begin, finish))
    return out


def is_open(hours: str, time_zone: str, now: datetime) -> bool | None:
    """Whether ``now`` lies inside one of the sessions of ``hours`` (``None``: no data)."""
    if not hours.strip():
        return None
    try:
        spans = sessions(hours, zone(time_zone))
    except ValueError:
        return None
    return any(start <= now < end for start, end in spans)
