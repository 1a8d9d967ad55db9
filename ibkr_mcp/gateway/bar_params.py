"""Up-front validation of IB's historical-data strings (duration, bar size, what to show)."""

from __future__ import annotations

import re
from typing import Final

from ibkr_mcp.errors import InvalidInputError

#: Duration units IB accepts: seconds, days, weeks, months, years.
DURATION_UNITS: Final[frozenset[str]] = frozenset({"S", "D", "W", "M", "Y"})
#: Every bar size IB's reqHistoricalData accepts, spelled as IB spells it.
BAR_SIZES: Final[tuple[str, ...]] = (
    "1 secs", "5 secs", "10 secs", "15 secs", "30 secs",
    "1 min", "2 mins", "3 mins", "5 mins", "10 mins", "15 mins", "20 mins", "30 mins",
    "1 hour", "2 hours", "3 hours", "4 hours", "8 hours",
    "1 day", "1 week", "1 month",
)  # fmt: skip
#: ``whatToShow`` values for bars.
WHAT_TO_SHOW: Final[frozenset[str]] = frozenset(
    {
        "TRADES",
        "MIDPOINT",
        "BID",
        "ASK",
        "BID_ASK",
        "ADJUSTED_LAST",
        "HISTORICAL_VOLATILITY",
        "OPTION_IMPLIED_VOLATILITY",
        "AGGTRADES",
    }
)

_DURATION_RE: Final = re.compile(r"^\s*(\d{1,6})\s*([A-Za-z])\s*$")
_BAR_SIZES_LOWER: Final[dict[str, str]] = {size.lower(): size for size in BAR_SIZES}


def _invalid(field: str, value: str, allowed: str) -> InvalidInputError:
    return InvalidInputError(
        f"Invalid {field} {value!r}: expected {allowed}.",
        remedy=f"Pass {field} as {allowed}.",
        details={"errors": [{"field": field, "value": value, "allowed": allowed}]},
    )


def parse_duration(value: str) -> str:
    """Validate an IB duration (``"5 D"``, ``"3600 S"``) and return IB's spelling.

    Raises:
        InvalidInputError: If ``value`` is not ``"<positive integer> <S|D|W|M|Y>"``.
    """
    allowed = "'<positive integer> <unit>' with unit S, D, W, M or Y (e.g. '5 D', '3600 S')"
    match = _DURATION_RE.match(value or "")
    if not match:
        raise _invalid("duration", value, allowed)
    count, unit = int(match.group(1)), match.group(2).upper()
    if count <= 0 or unit not in DURATION_UNITS:
        raise _invalid("duration", value, allowed)
    return f"{count} {unit}"


def parse_bar_size(value: str) -> str:
    """Validate a bar size (``"1 day"``, ``"5 mins"``) and return IB's spelling.

    Raises:
        InvalidInputError: If ``value`` is not one of ``BAR_SIZES``.
    """
    key = " ".join((value or "").split()).lower()
    size = _BAR_SIZES_LOWER.get(key)
    if size is None:
        raise _invalid("bar_size", value, "one of " + ", ".join(repr(s) for s in BAR_SIZES))
    return size


def parse_what_to_show(value: str) -> str:
    """Validate ``what_to_show`` (``TRADES``, ``MIDPOINT``, ...) and return it upper-cased.

    Raises:
        InvalidInputError: If ``value`` is not one of ``WHAT_TO_SHOW``.
    """
    upper = (value or "").strip().upper()
    if upper not in WHAT_TO_SHOW:
        raise _invalid("what_to_show", value, "one of " + ", ".join(sorted(WHAT_TO_SHOW)))
    return upper


_UNIT_SECONDS: Final[dict[str, int]] = {
    "sec": 1, "secs": 1, "min": 60, "mins": 60, "hour": 3600, "hours": 3600, "day": 86400,
}  # fmt: skip


def bar_seconds(bar_size: str) -> int | None:
    """Seconds in one bar of IB's ``bar_size`` (``None`` for weeks and months)."""
    count, _, unit = bar_size.partition(" ")
    per = _UNIT_SECONDS.get(unit)
    return int(count) * per if per is not None and count.isdigit() else None
