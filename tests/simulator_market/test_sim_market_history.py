"""The simulator's history over the wire, read by unmodified ib_async: a start, no 1970s bars.

A query before the history's start (reqHeadTimeStamp) is answered with IB's error 162 "HMDS
query returned no data", never with bars an IB client cannot decode (negative epoch times).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ib_async import IB, Stock
from sim_watch import IbLogWatch, fsim, ib_logs

from ibkr_mcp.simulator import Simulator

__all__ = ["fsim", "ib_logs"]

NO_DATA = "HMDS query returned no data: SPY@SMART Trades"


async def test_ancient_end_is_error_162_and_no_bars(fsim: Simulator, ib_logs: IbLogWatch) -> None:
    ib_logs.allow(NO_DATA)
    ib = IB()
    await ib.connectAsync("127.0.0.1", fsim.port, clientId=7, timeout=5)
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda _req, code, text, *_: errors.append((code, text))
    try:
        spy = Stock("SPY", "SMART", "USD")
        head: Any = await ib.reqHeadTimeStampAsync(spy, "TRADES", False, 2)
        bars = await ib.reqHistoricalDataAsync(
            spy, "19001201 15:00:00 UTC", "1 D", "1 hour", "TRADES", False, 2, timeout=5
        )
        # A span reaching back past the head timestamp starts there.
        first = await ib.reqHistoricalDataAsync(
            spy, "20161129 21:00:00 UTC", "1 W", "1 hour", "TRADES", False, 2, timeout=5
        )
    finally:
        ib.disconnect()
    assert len(bars) == 0
    assert errors == [(162, f"Historical Market Data Service error message:{NO_DATA}")]
    assert head == datetime(2016, 11, 25, 14, 30, tzinfo=UTC)
    assert first and min(b.date for b in first) >= head
