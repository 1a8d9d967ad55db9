"""IB's refusals for malformed orders, trigger methods, and the TIF date rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import ib_async
import pytest
from sim_orders_support import connect, order, stock, wait_for

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import ManualClock
from ibkr_mcp.simulator.order_tif import in_regular_hours, parse_good_till

Sim = tuple[Simulator, ManualClock]

BAD = [
    ({"orderType": "TRAIL", "auxPrice": 1.0, "trailingPercent": 1.0}, 321),
    ({"orderType": "TRAIL"}, 321),
    ({"orderType": "TRAIL LIMIT", "auxPrice": 1.0}, 321),
    ({"orderType": "STP"}, 321),
    ({"orderType": "LIT", "auxPrice": 100.0}, 321),
    ({"orderType": "STP", "auxPrice": 100.001}, 110),
    ({"orderType": "LMT", "lmtPrice": 100.0, "tif": "XYZ"}, 201),
    ({"orderType": "LMT", "lmtPrice": 100.0, "tif": "GTD", "goodTillDate": "soon"}, 321),
    ({"orderType": "LOC", "lmtPrice": 100.0, "tif": "GTC"}, 201),
    ({"orderType": "STP", "auxPrice": 100.0, "triggerMethod": 5}, 321),
    ({"orderType": "MKT", "totalQuantity": 0}, 434),
]


async def test_malformed_orders_get_ibs_codes(msim: Sim, ib_logs: Any) -> None:
    sim, _clock = msim
    ib_logs.allow("Error", "Canceled order")
    ib = await connect(ib_async, sim, 1)
    codes: dict[int, int] = {}
    ib.errorEvent += lambda req_id, code, *rest: codes.setdefault(int(req_id), int(code))
    try:
        aapl = await stock(ib_async, ib, "AAPL")
        trades = []
        for spec, _code in BAD:
            kw = {"action": "BUY", "totalQuantity": 1, **spec}
            trades.append(ib.placeOrder(aapl, order(ib_async, **kw)))
        await wait_for(lambda: all(t.order.orderId in codes for t in trades))
        assert [codes[t.order.orderId] for t in trades] == [code for _spec, code in BAD]
        assert not sim.engine.live_orders()
    finally:
        ib.disconnect()


@pytest.mark.parametrize("method", [1, 2, 3, 4, 7, 8])
async def test_every_trigger_method_fires_a_crossed_stop(msim: Sim, method: int) -> None:
    sim, _clock = msim
    ib = await connect(ib_async, sim, 2)
    try:
        aapl = await stock(ib_async, ib, "AAPL")
        [t] = await ib.reqTickersAsync(aapl)
        trade = ib.placeOrder(aapl, order(ib_async, action="SELL", totalQuantity=1,
                                          orderType="STP", auxPrice=round(t.bid + 1, 2),
                                          triggerMethod=method))  # fmt: skip
        await wait_for(lambda: trade.orderStatus.status == "Filled")
        assert trade.orderStatus.avgFillPrice == t.bid
    finally:
        ib.disconnect()


def test_good_till_date_formats() -> None:
    at = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
    assert parse_good_till("20261125 20:00:00 UTC") == at
    assert parse_good_till("20261125-20:00:00") == at
    assert parse_good_till("20261125 15:00:00 US/Eastern") == at
    assert parse_good_till("20261125 20:00:00") == at  # the gateway reports UTC at connect
    assert parse_good_till("20261125") == datetime(2026, 11, 26, tzinfo=UTC)
    assert parse_good_till("tomorrow") is None
    assert parse_good_till("20261125 20:00:00 Mars/Olympus") is None


def test_regular_hours() -> None:
    assert in_regular_hours("STK", datetime(2026, 11, 25, 14, 30, tzinfo=UTC))
    assert not in_regular_hours("STK", datetime(2026, 11, 25, 14, 29, tzinfo=UTC))
    assert not in_regular_hours("STK", datetime(2026, 11, 25, 21, 0, tzinfo=UTC))
    assert not in_regular_hours("STK", datetime(2026, 11, 28, 15, 0, tzinfo=UTC))  # Saturday
    assert in_regular_hours("CASH", datetime(2026, 11, 25, 3, 0, tzinfo=UTC))
