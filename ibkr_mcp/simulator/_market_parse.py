"""IB historical-data request strings (duration, bar size, whatToShow) and their errors."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final


class MarketDataRequestError(ValueError):
    """A historical/market data request IB would refuse, with IB's error code and text.

    Args:
        code: IB error code (321 validation, 162 historical data service, ...).
        message: IB-style error text.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


HMDS: Final = "Historical Market Data Service error message:"

_LEGAL_BAR_SIZES: Final = (
    "1 secs, 5 secs, 10 secs, 15 secs, 30 secs, 1 min, 2 mins, 3 mins, 5 mins, 10 mins, "
    "15 mins, 20 mins, 30 mins, 1 hour, 2 hours, 3 hours, 4 hours, 8 hours, 1 day, 1W, 1M"
)

_BAR_SIZES: Final[dict[str, timedelta]] = {
    "1 secs": timedelta(seconds=1),
    "1 sec": timedelta(seconds=1),
    "5 secs": timedelta(seconds=5),
    "10 secs": timedelta(seconds=10),
    "15 secs": timedelta(seconds=15),
    "30 secs": timedelta(seconds=30),
    "1 min": timedelta(minutes=1),
    "2 mins": timedelta(minutes=2),
    "3 mins": timedelta(minutes=3),
    "5 mins": timedelta(minutes=5),
    "10 mins": timedelta(minutes=10),
    "15 mins": timedelta(minutes=15),
    "20 mins": timedelta(minutes=20),
    "30 mins": timedelta(minutes=30),
    "1 hour": timedelta(hours=1),
    "2 hours": timedelta(hours=2),
    "3 hours": timedelta(hours=3),
    "4 hours": timedelta(hours=4),
    "8 hours": timedelta(hours=8),
    "1 day": timedelta(days=1),
    "1 week": timedelta(days=7),
    "1w": timedelta(days=7),
    "1 month": timedelta(days=30),
    "1m": timedelta(days=30),
}

_DURATION = re.compile(r"^\s*(\d{1,9})\s+([SDWMY])\s*$")
_DURATION_UNITS: Final[dict[str, timedelta]] = {
    "S": timedelta(seconds=1),
    "D": timedelta(days=1),
    "W": timedelta(days=7),
    "M": timedelta(days=30),
    "Y": timedelta(days=365),
}

WHAT_TO_SHOW: Final = frozenset({"TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST"})


def parse_duration(text: str) -> timedelta:
    """Parse an IB duration string (``"60 S"``, ``"30 D"``, ``"2 W"``, ``"1 M"``, ``"1 Y"``).

    A month counts as 30 days and a year as 365.

    Args:
        text: The ``durationStr`` of ``reqHistoricalData``.

    Returns:
        The span as a timedelta.

    Raises:
        MarketDataRequestError: 321 when the string is not a positive count and unit.
    """
    match = _DURATION.match(text)
    if match is None or int(match.group(1)) <= 0:
        raise MarketDataRequestError(
            321,
            f"Error validating request.-'bI' : cause - Historical data duration '{text}' is "
            "invalid. Use an integer and a unit: S, D, W, M or Y (e.g. '30 D').",
        )
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


def duration_unit(text: str) -> str:
    """The unit letter of an already validated duration string."""
    return text.strip()[-1]


def duration_count(text: str) -> int:
    """The count of an already validated duration string."""
    return int(text.split()[0])


def parse_bar_size(text: str) -> timedelta:
    """Parse an IB bar size (``"1 secs"`` ... ``"8 hours"``, ``"1 day"``, ``"1 week"``, ...).

    Args:
        text: The ``barSizeSetting`` of ``reqHistoricalData``.

    Returns:
        The bar length (a week is 7 days, a month 30 days).

    Raises:
        MarketDataRequestError: 321 listing the legal sizes, as IB does.
    """
    size = _BAR_SIZES.get(" ".join(text.split()).lower())
    if size is None:
        raise MarketDataRequestError(
            321,
            f"Error validating request.-'bI' : cause - Historical data bar size setting "
            f"'{text}' is invalid. Legal ones are: {_LEGAL_BAR_SIZES}",
        )
    return size


def check_what_to_show(text: str) -> str:
    """Validate ``whatToShow`` (case-insensitive) and return it upper-cased.

    Raises:
        MarketDataRequestError: 321 for anything but TRADES, MIDPOINT, BID, ASK, BID_ASK and
            ADJUSTED_LAST.
    """
    what = text.strip().upper()
    if what not in WHAT_TO_SHOW:
        raise MarketDataRequestError(
            321, f"Error validating request.-'bS' : cause - Invalid what to show: '{text}'"
        )
    return what
