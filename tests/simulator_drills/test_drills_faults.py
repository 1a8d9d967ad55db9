"""Fault drills through the control channel, observed by an unmodified ib_async client."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from ib_async import IB, LimitOrder, Stock

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.control import SimControl, control_path
from ibkr_mcp.simulator.faults import DrillError


def ctl(sim: Simulator) -> SimControl:
    assert sim.control is not None and sim.control.path is not None
    return SimControl(sim.port, sim.control.path.parent)


async def test_control_endpoint_is_derived_from_the_port(dsim: Simulator, control_dir: Any) -> None:
    assert dsim.control is not None
    assert dsim.control.path == control_path(dsim.port, control_dir)
    assert dsim.control.path.stat().st_mode & 0o777 == 0o600
    status = await ctl(dsim).status()
    assert set(status) == {"clients", "orders", "positions", "faults"}
    assert status["faults"] == {}


async def test_status_lists_clients_orders_positions(
    wait: Any, dsim: Simulator, connect: Any
) -> None:
    ib = await connect(5)
    trade = ib.placeOrder(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 10, 1.00, tif="GTC"))
    await wait(lambda: trade.orderStatus.status == "Submitted")
    status = await ctl(dsim).status()
    assert [c["client_id"] for c in status["clients"]] == [5]
    assert status["clients"][0]["since"].startswith("2026-11-25T15:00:00")
    [order] = status["orders"]
    assert (order["client_id"], order["symbol"], order["quantity"], order["tif"]) == (
        5, "AAPL", 10, "GTC"
    )  # fmt: skip
    assert status["positions"] == {"DU1234567": []}


async def test_hang_answers_nothing_then_catches_up(
    wait: Any, dsim: Simulator, connect: Any
) -> None:
    ib = await connect(1)
    start = time.monotonic()
    message = await ctl(dsim).hang(0.4)
    assert "hanging for 0.4 s" in message
    assert "hang" in (await ctl(dsim).status())["faults"]
    trade = ib.placeOrder(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 1, 1.00, tif="GTC"))
    got = await ib.reqCurrentTimeAsync()  # answered only after the hang: nothing is lost
    assert time.monotonic() - start >= 0.4
    assert got is not None
    await wait(lambda: trade.orderStatus.status == "Submitted")
    assert ib.isConnected()
    assert (await ctl(dsim).status())["faults"] == {}


async def test_hang_also_holds_new_connections(dsim: Simulator) -> None:
    start = time.monotonic()
    dsim.drills.hang(0.3)
    ib = IB()
    await ib.connectAsync("127.0.0.1", dsim.port, clientId=9, timeout=3)
    try:
        assert time.monotonic() - start >= 0.3  # the handshake waited for the catch-up
    finally:
        ib.disconnect()


async def test_drop_closes_every_connection(wait: Any, dsim: Simulator, connect: Any) -> None:
    a, b = await connect(1), await connect(2)
    message = await ctl(dsim).drop()
    assert message == "dropped 2 connection(s)"
    await wait(lambda: not a.isConnected() and not b.isConnected())
    again = await connect(1)  # the gateway itself is still there
    assert again.isConnected()


async def test_refuse_refuses_new_connections_only(
    wait: Any, dsim: Simulator, connect: Any
) -> None:
    ib = await connect(1)
    await ctl(dsim).refuse(0.3)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", dsim.port)
    assert ib.isConnected()
    assert await ib.reqCurrentTimeAsync() is not None
    await wait(lambda: not dsim.drills.refusing)
    await wait(lambda: dsim._listening)
    other = await connect(2)
    assert other.isConnected()


async def test_error_sends_ibs_text_and_1101_kills_subscriptions(
    wait: Any, dsim: Simulator, connect: Any
) -> None:
    ib = await connect(1)
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: seen.append((req_id, code, text))
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    ticker = ib.reqMktData(aapl)
    await wait(lambda: ticker.bid == ticker.bid and ticker.bid > 0)
    await ctl(dsim).error(2110)
    await ctl(dsim).error(162, message="custom text", req_id=77)
    await wait(lambda: len(seen) >= 2)
    assert seen[0] == (
        -1, 2110,
        "Connectivity between Trader Workstation and server is broken. "
        "It will be restored automatically.",
    )  # fmt: skip
    assert seen[1] == (77, 162, "custom text")
    assert sum(len(s.market_data.streams) for s in dsim._sessions.values()) == 1
    await ctl(dsim).error(1101)
    await wait(lambda: any(code == 1101 for _, code, _ in seen))
    assert sum(len(s.market_data.streams) for s in dsim._sessions.values()) == 0
    with pytest.raises(DrillError, match="no IB default text for code 9999"):
        await ctl(dsim).error(9999)


async def test_farm_outage_freezes_data_then_recovers(
    wait: Any, dsim: Simulator, connect: Any
) -> None:
    ib = await connect(1)
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, text, contract: codes.append(code)
    await ctl(dsim).farm_outage(0.3)
    await wait(lambda: codes[-2:] == [2103, 2105])
    assert dsim.drills.data_frozen
    await wait(lambda: codes[-2:] == [2104, 2106])
    assert not dsim.drills.data_frozen


async def test_latency_delays_every_answer_in_order(dsim: Simulator, connect: Any) -> None:
    ib = await connect(1)
    await ctl(dsim).latency(150, jitter=20)
    start = time.monotonic()
    details = await ib.reqContractDetailsAsync(Stock("AAPL", "SMART", "USD"))
    assert time.monotonic() - start >= 0.12
    assert details[0].contract is not None and details[0].contract.symbol == "AAPL"
    assert "latency off" in await ctl(dsim).latency(0)


async def test_reject_next_rejects_with_ibs_message(
    wait: Any, dsim: Simulator, connect: Any
) -> None:
    ib = await connect(1)
    await ctl(dsim).reject_next(1)
    contract = Stock("AAPL", "SMART", "USD")
    rejected = ib.placeOrder(contract, LimitOrder("BUY", 1, 1.00, tif="GTC"))
    await wait(lambda: rejected.orderStatus.status == "Cancelled")  # how ib_async shows a 201
    assert dsim.orders()[-1].status == "Inactive"
    assert any(e.errorCode == 201 and "Order rejected - reason:" in e.message for e in rejected.log)
    accepted = ib.placeOrder(contract, LimitOrder("BUY", 1, 1.00, tif="GTC"))
    await wait(lambda: accepted.orderStatus.status == "Submitted")
    ib.cancelOrder(accepted.order)
    await wait(lambda: accepted.orderStatus.status == "Cancelled")


async def test_reset_keeps_gtc_and_positions_expires_day(
    wait: Any, dsim: Simulator, connect: Any
) -> None:
    ib = await connect(1)
    contract = Stock("AAPL", "SMART", "USD")
    bought = ib.placeOrder(contract, LimitOrder("BUY", 5, 1000.00))
    gtc = ib.placeOrder(contract, LimitOrder("BUY", 1, 1.00, tif="GTC"))
    day = ib.placeOrder(contract, LimitOrder("BUY", 2, 1.00, tif="DAY"))
    await wait(lambda: bought.orderStatus.status == "Filled")
    await wait(lambda: day.orderStatus.status == "Submitted")
    message = await ctl(dsim).reset()
    assert "1 DAY order(s) expired" in message
    await wait(lambda: not ib.isConnected())
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", dsim.port)
    await wait(lambda: dsim._listening)
    again = await connect(1)
    open_ids = {t.order.orderId for t in await again.reqAllOpenOrdersAsync()}
    assert open_ids == {gtc.order.orderId}
    positions = await again.reqPositionsAsync()
    assert [(p.contract.symbol, p.position) for p in positions] == [("AAPL", 5.0)]
    status = await ctl(dsim).status()
    assert [o["order_id"] for o in status["orders"]] == [gtc.order.orderId]
    assert status["faults"] == {}


async def test_unknown_command_is_a_clear_error(dsim: Simulator) -> None:
    reply = await ctl(dsim).call("explode")
    assert reply["ok"] is False
    assert "unknown command 'explode'" in reply["error"]


async def test_bad_arguments_are_refused(dsim: Simulator) -> None:
    with pytest.raises(DrillError, match="hang must be between"):
        await ctl(dsim).hang(-1)
    with pytest.raises(DrillError, match="seconds must be a number"):
        await ctl(dsim)._ok("hang", seconds="soon")
