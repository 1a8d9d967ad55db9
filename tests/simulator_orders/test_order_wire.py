"""IB's own decoder (ibapi) reads every order-book message with zero leftover fields."""

from __future__ import annotations

from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest
from ib_decode import RecordingWrapper, decode_stream
from sim_orders_support import T0, order, stock, wait_for

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import ManualClock


def decode_all(raw: bytes, server_version: int) -> RecordingWrapper:
    """IB's decoder over the captured stream (nothing left over); the recorded callbacks."""
    return decode_stream(raw, server_version)[0]


async def exercise(lib: ModuleType, sim: Simulator, clock: ManualClock) -> bytes:
    """Every order type, a bracket, OCA, modification, partial fills, the close; raw bytes."""
    ib = lib.IB()
    raw = bytearray()
    ib.client.conn.hasData += raw.extend
    await ib.connectAsync("127.0.0.1", sim.port, clientId=3, timeout=5)
    try:
        aapl = await stock(lib, ib, "AAPL")
        spy = await stock(lib, ib, "SPY")
        [t] = await ib.reqTickersAsync(aapl)
        last, bid, ask = t.last, t.bid, t.ask
        specs: list[dict[str, Any]] = [
            {"orderType": "STP", "action": "BUY", "auxPrice": round(last - 3, 2)},
            {"orderType": "STP LMT", "action": "SELL", "auxPrice": round(last - 30, 2),
             "lmtPrice": round(last - 31, 2)},
            {"orderType": "TRAIL", "action": "SELL", "auxPrice": 1.5, "tif": "GTC"},
            {"orderType": "TRAIL", "action": "BUY", "trailingPercent": 2.0,
             "trailStopPrice": round(ask + 5, 2)},
            {"orderType": "TRAIL LIMIT", "action": "SELL", "auxPrice": 2.0,
             "lmtPriceOffset": 0.25},
            {"orderType": "MIT", "action": "SELL", "auxPrice": round(last + 30, 2)},
            {"orderType": "LIT", "action": "BUY", "auxPrice": round(last + 3, 2),
             "lmtPrice": round(ask + 1, 2)},
            {"orderType": "MOC", "action": "BUY"},
            {"orderType": "LOC", "action": "SELL", "lmtPrice": round(bid - 50, 2)},
            {"orderType": "LMT", "action": "BUY", "lmtPrice": round(bid - 9, 2), "tif": "OPG"},
            {"orderType": "LMT", "action": "BUY", "lmtPrice": round(bid - 9, 2), "tif": "GTD",
             "goodTillDate": "20261125 20:00:00 UTC"},
        ]  # fmt: skip
        for spec in specs:
            ib.placeOrder(aapl, order(lib, totalQuantity=2, **spec))
        for leg in ib.bracketOrder(
            "BUY", 5, round(ask + 1, 2), round(ask + 40, 2), round(bid - 40, 2)
        ):
            ib.placeOrder(aapl, leg)
        low = round(bid - 20, 2)
        ib.placeOrder(aapl, order(lib, action="BUY", totalQuantity=1, orderType="LMT",
                                  lmtPrice=low, ocaGroup="x", ocaType=2))  # fmt: skip
        ib.placeOrder(aapl, order(lib, action="BUY", totalQuantity=1, orderType="MKT",
                                  ocaGroup="x", ocaType=2))  # fmt: skip
        big = ib.placeOrder(spy, order(lib, action="BUY", totalQuantity=2500, orderType="MKT"))
        await wait_for(lambda: bool(big.fills))
        for _ in range(60):
            clock.advance(1)
            sim.tick()
        await wait_for(lambda: big.orderStatus.status == "Filled")
        clock.set(datetime(2026, 11, 25, 21, 0, 1, tzinfo=UTC))
        sim.tick()
        await ib.reqOpenOrdersAsync()
        await ib.reqAllOpenOrdersAsync()
        await ib.reqExecutionsAsync()
        await ib.reqCompletedOrdersAsync(False)
        await ib.reqPositionsAsync()
    finally:
        ib.disconnect()
    return bytes(raw)


@pytest.mark.parametrize(("lib_name", "version"), [("ib_async", 178), ("ib_insync", 176)])
async def test_ibapi_reads_every_order_message(lib_name: str, version: int) -> None:
    lib = pytest.importorskip(lib_name)
    clock = ManualClock(T0)
    sim = Simulator(seed=42, clock=clock)
    await sim.start()
    try:
        raw = await exercise(lib, sim, clock)
    finally:
        await sim.stop()
    wrapper = decode_all(raw, version)
    names = {n for n, _ in wrapper.calls}
    assert {"openOrder", "orderStatus", "execDetails", "completedOrder",
            "openOrderEnd", "execDetailsEnd", "completedOrdersEnd"} <= names  # fmt: skip
    opened = [a[2] for n, a in wrapper.calls if n == "openOrder"]
    assert {o.orderType for o in opened} >= {"STP", "STP LMT", "TRAIL", "TRAIL LIMIT", "MIT",
                                             "LIT", "MOC", "LOC", "LMT", "MKT"}  # fmt: skip
    assert any(o.parentId and o.ocaGroup for o in opened)  # bracket legs carry their group
    assert any(o.orderType == "TRAIL LIMIT" and o.lmtPriceOffset == 0.25 for o in opened)
    assert any(n.startswith("commission") for n in names)
    fills = [a for n, a in wrapper.calls if n == "execDetails"]
    assert len(fills) > 3  # partial fills each have their execution


async def test_same_seed_and_clock_give_byte_identical_order_streams() -> None:
    import ib_async

    raws = []
    for _ in range(2):
        clock = ManualClock(T0)
        sim = Simulator(seed=5, clock=clock)
        await sim.start()
        try:
            raws.append(await exercise(ib_async, sim, clock))
        finally:
            await sim.stop()
    assert raws[0] == raws[1]
