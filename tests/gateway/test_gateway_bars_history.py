"""Bars outside the instrument's history, through IBGateway to the simulator over a socket.

IB answers a historical query that finds no bars with error 162 "HMDS query returned no data"
(before the instrument's history, small bars older than about six months, a span without a
session), never with an empty list or bars from before 1970; we report it as
MARKET_DATA_UNAVAILABLE. The simulator's clock is fixed at 2026-11-25 15:00 UTC (``sim``), so
its history starts on 2016-11-25 (ten years back) and small bars on 2026-05-26.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ibkr_mcp.errors import IbkrMcpError
from ibkr_mcp.gateway.ib_gateway import IBGateway
from ibkr_mcp.models import ContractRef

SPY = ContractRef(symbol="SPY")
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


async def _no_data(gw: IBGateway, end: datetime, duration: str, bar_size: str) -> IbkrMcpError:
    with pytest.raises(IbkrMcpError) as info:
        await gw.bars(
            SPY, duration=duration, bar_size=bar_size, what_to_show="TRADES", use_rth=False,
            end=end,
        )  # fmt: skip
    return info.value


@pytest.mark.parametrize(
    "end",
    [
        datetime(1900, 12, 1, 15, 0, tzinfo=UTC),  # the red-team's request
        datetime(1969, 12, 31, 23, 59, tzinfo=UTC),
        datetime(1, 1, 2, tzinfo=UTC),  # a year IB's date text must still carry in 4 digits
    ],
)
async def test_ancient_end_is_ibs_no_data(gw: IBGateway, end: datetime) -> None:
    error = await _no_data(gw, end, "1 D", "1 hour")
    assert error.code == "MARKET_DATA_UNAVAILABLE"
    assert error.details["ib_code"] == 162
    assert error.details["ib_message"] == (
        "Historical Market Data Service error message:HMDS query returned no data: SPY@SMART Trades"
    )
    assert "history" in (error.remedy or "")


async def test_end_before_the_history_start_is_no_data(gw: IBGateway) -> None:
    error = await _no_data(gw, datetime(2016, 11, 18, 21, 0, tzinfo=UTC), "5 D", "1 day")
    assert error.code == "MARKET_DATA_UNAVAILABLE" and error.details["ib_code"] == 162


async def test_history_is_cut_at_its_start_and_at_now(gw: IBGateway) -> None:
    early = await gw.bars(
        SPY, duration="2 W", bar_size="1 day", what_to_show="TRADES", use_rth=False,
        end=datetime(2016, 12, 2, 21, 0, tzinfo=UTC),
    )  # fmt: skip
    assert early and all(b.time.date() >= date(2016, 11, 25) for b in early)
    # An end after now is answered up to now (IB has nothing later, and it is no error).
    late = await gw.bars(
        SPY, duration="1 D", bar_size="1 hour", what_to_show="TRADES", use_rth=False,
        end=datetime(2030, 1, 4, 15, 0, tzinfo=UTC),
    )  # fmt: skip
    assert late and late[-1].time < NOW


async def test_small_bars_go_back_about_six_months(gw: IBGateway) -> None:
    end = datetime(2026, 3, 3, 16, 0, tzinfo=UTC)
    error = await _no_data(gw, end, "1800 S", "5 secs")
    assert error.code == "MARKET_DATA_UNAVAILABLE" and error.details["ib_code"] == 162
    minutes = await gw.bars(
        SPY, duration="1800 S", bar_size="1 min", what_to_show="TRADES", use_rth=False, end=end
    )
    assert len(minutes) == 30


async def test_a_span_without_a_session_is_no_data(gw: IBGateway) -> None:
    saturday = datetime(2026, 11, 21, 17, 0, tzinfo=UTC)
    error = await _no_data(gw, saturday, "3600 S", "1 min")
    assert error.code == "MARKET_DATA_UNAVAILABLE" and error.details["ib_code"] == 162
