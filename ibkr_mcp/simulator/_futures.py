"""Futures calendar rules: contract months, last trade days and the months a root lists."""

from __future__ import annotations

from datetime import date, timedelta

from ibkr_mcp.simulator._market_calendar import is_trading_day, prev_trading_day

_ONE_DAY = timedelta(days=1)


def third_weekday(year: int, month: int, weekday: int) -> date:
    """The third given weekday (Monday 0) of a month."""
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 14)


def _back(day: date, count: int) -> date:
    for _ in range(count):
        day = prev_trading_day(day)
    return day


def _last_business_day(year: int, month: int) -> date:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return prev_trading_day(nxt)


def last_trade_day(rule: str, year: int, month: int) -> date:
    """The last trading day of a contract month under one of the rules in ``_catalogue_derivs``.

    Args:
        rule: ``3fri``, ``cl``, ``ng``, ``3lbd``, ``7bl`` or ``fx``.
        year: Contract year.
        month: Contract month (1-12).

    Returns:
        The date trading stops (weekdays are business days; no holidays are modelled).
    """
    if rule == "3fri":
        return third_weekday(year, month, 4)
    if rule == "cl":
        the_25th = date(year - (month == 1), (month - 2) % 12 + 1, 25)
        # Three business days before the 25th, four if the 25th is not a business day.
        return _back(the_25th, 3 if is_trading_day(the_25th) else 4)
    if rule == "ng":
        return _back(date(year, month, 1), 3)
    if rule == "3lbd":
        return _back(_last_business_day(year, month), 2)
    if rule == "7bl":
        return _back(_last_business_day(year, month), 7)
    if rule == "fx":
        return _back(third_weekday(year, month, 2), 2)
    raise ValueError(f"unknown last-trade rule {rule!r}")


def contract_months(
    months: tuple[int, ...], rule: str, today: date, ahead: int
) -> list[tuple[int, int]]:
    """Contract months ``(year, month)`` listed on ``today``: not yet expired, within ``ahead``.

    A month counts as expired once its last trade day is before ``today`` (the caller drops
    the last day itself after the close). The horizon is ``ahead`` calendar months from the
    first live contract month, so a monthly root lists about ``ahead`` contracts.
    """
    out: list[tuple[int, int]] = []
    year, month = today.year, today.month
    first: tuple[int, int] | None = None
    for _ in range(ahead + 24):
        if month in months and last_trade_day(rule, year, month) >= today:
            if first is None:
                first = (year, month)
            if (year - first[0]) * 12 + month - first[1] >= ahead:
                break
            out.append((year, month))
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return out
