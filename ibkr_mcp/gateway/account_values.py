"""IB's account values (all sent as text) as what they mean: numbers, text or "no value".

IB sends every account tag as a string: money (``"1000000.00"``), counts (``"0"``), ratios,
and a few texts (``AccountType`` ``"INDIVIDUAL"``, ``Currency`` ``"USD"``). An agent reading
``values`` needs the numbers as numbers, and IB's "no value" sentinels as ``null`` like every
other output, while the texts stay text.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

from ibkr_mcp.gateway.base import decimal_or_none

#: Tags that name something (an account, a currency) and stay text even when they look like a
#: number: an account code of digits is an identifier, not a quantity.
#: (``SegmentTitle-<segment>`` tags are text too.)
TEXT_TAGS: Final = frozenset(
    {"AccountCode", "AccountOrGroup", "AccountType", "Currency", "RealCurrency"}
)
#: Tags whose ``-1`` is IB's "not applicable" (no pattern-day-trader limit: unlimited day
#: trades), not a count of -1; the ``T+1`` .. ``T+4`` variants share the prefix.
_MINUS_ONE_UNSET: Final = "DayTradesRemaining"
#: A number as IB writes one: plain decimal text, or the exponent form of its unset double
#: (``1.7976931348623157E308``). ASCII only; anything else (``INDIVIDUAL``, ``true``) is text.
_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
#: IB's spellings of "no number" (a double that was never set, or not finite).
_NOT_A_NUMBER: Final = re.compile(r"[+-]?(?:nan|inf|infinity)", re.ASCII | re.IGNORECASE)


def account_value(tag: str, text: str) -> Decimal | str | None:
    """One account value as a ``Decimal``, its text, or ``None`` for IB's "no value".

    Args:
        tag: IB's tag (``NetLiquidation``, ``DayTradesRemaining``, ``AccountType``, ...).
        text: The value as IB sent it.

    Returns:
        ``None`` for an empty value and IB's sentinels (NaN, infinities, the unset double
        1.797e308, ``-1`` day trades remaining); a ``Decimal`` for a number; else the text.
    """
    if tag in TEXT_TAGS or tag.startswith("SegmentTitle"):
        return text
    value = text.strip()
    if not value or _NOT_A_NUMBER.fullmatch(value):
        return None
    if not _NUMBER.fullmatch(value):
        return text
    number = decimal_or_none(value)  # the unset double (and anything near it) is None
    if number is not None and tag.startswith(_MINUS_ONE_UNSET) and number == -1:
        return None
    return number
