"""Market data subscription errors and open historical requests, as ib_async sees them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from ib_async import IB, Stock

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import FixedClock
from ibkr_mcp.simulator.control import SimControl, apply_faults

T0 = datetime(2026, 11, 25, 15, 0, 0, tzinfo=UTC)  # markets open
Errors = list[tuple[int, int, str]]


@pytest.fixture
async def make_sim() -> AsyncIterator[Callable[..., Any]]:
    sims: list[Simulator] = []
    clients: list[IB] = []

    async def make(**kw: Any) -> tuple[Simulator, IB, Errors]:
        sim = Simulator(seed=42, clock=FixedClock(T0), **kw)
        await sim.start()
        sims.append(sim)
        ib = IB()
        errors: Errors = []
        ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code, text))
        await ib.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=3)
        clients.append(ib)
        return sim, ib, errors

    yield make
    for ib in clients:
        ib.disconnect()
    for sim in sims:
        sim.drills.clear()
        await sim.stop()


def codes(errors: Errors) -> list[int]:
    return [code for _, code, _ in errors]


async def test_api_subscription_missing_10089_then_delayed(make_sim: Any, wait: Any) -> None:
    _sim, ib, errors = await make_sim(market_data_gaps={"IBM": "api"})
    [ibm] = await ib.qualifyContractsAsync(Stock("IBM", "SMART", "USD"))
    live = ib.reqMktData(ibm)
    await wait(lambda: 10089 in codes(errors))
    assert errors[-1][2] == (
        "Requested market data requires additional subscription for API. See link in "
        "'Market Data Connections' dialog for more details.Delayed market data is available."
        "IBM NYSE/TOP/ALL"
    )
    assert live.bid != live.bid  # nothing streamed (NaN)
    ib.cancelMktData(ibm)
    ib.reqMarketDataType(3)
    [delayed] = await ib.reqTickersAsync(ibm)
    assert 10167 in codes(errors)
    assert delayed.marketDataType == 3 and delayed.bid > 0


async def test_no_delayed_data_either_10168(make_sim: Any, wait: Any) -> None:
    _sim, ib, errors = await make_sim(market_data_gaps={"IBM": "none"}, delayed_data=False)
    [ibm] = await ib.qualifyContractsAsync(Stock("IBM", "SMART", "USD"))
    ib.reqMarketDataType(3)
    ticker = ib.reqMktData(ibm)
    await wait(lambda: 10168 in codes(errors))
    assert errors[-1][2] == (
        "Requested market data is not subscribed. Delayed market data is not enabled."
    )
    ib.reqMarketDataType(1)
    ib.reqMktData(ibm)  # live: 354 without the "delayed available" hint
    await wait(lambda: 354 in codes(errors))
    assert ticker.bid != ticker.bid


@pytest.mark.parametrize(("kind", "code"), [("partial", 10090), ("partial-api", 10091)])
async def test_partial_subscription_keeps_independent_ticks(
    make_sim: Any, wait: Any, kind: str, code: int
) -> None:
    _sim, ib, errors = await make_sim(market_data_gaps={"AAPL": kind})
    [aapl, ibm] = await ib.qualifyContractsAsync(
        Stock("AAPL", "SMART", "USD"), Stock("IBM", "SMART", "USD")
    )
    ticker = ib.reqMktData(aapl, "104")  # historical volatility: subscription-independent
    await wait(lambda: code in codes(errors) and ticker.histVolatility == ticker.histVolatility)
    assert "Part of requested market data" in errors[-1][2]
    assert "Delayed market data is not available." in errors[-1][2]
    assert ticker.bid != ticker.bid and ticker.last != ticker.last  # no priced ticks
    [other] = await ib.reqTickersAsync(ibm)
    assert other.bid > 0


async def test_competing_live_session_10197(make_sim: Any, wait: Any) -> None:
    sim, ib, errors = await make_sim()
    [ibm] = await ib.qualifyContractsAsync(Stock("IBM", "SMART", "USD"))
    streaming = ib.reqMktData(ibm)
    await wait(lambda: streaming.bid > 0)
    apply_faults(sim.drills, ["competing-session=60"])  # via SIM_FAULTS / --fault
    await wait(lambda: 10197 in codes(errors))
    req_id, _, text = errors[-1]
    assert req_id > 0 and text == "No market data during competing live session"
    assert sim.drills.active()["competing_session"]["remaining_s"] > 0
    assert not sim.sessions()[0].market_data.streams  # the live stream ended
    ib.cancelMktData(ibm)
    ib.reqMktData(ibm)
    await wait(lambda: codes(errors).count(10197) == 2)
    ib.cancelMktData(ibm)
    ib.reqMarketDataType(3)  # delayed data is not taken by the other session
    [delayed] = await ib.reqTickersAsync(ibm)
    assert delayed.marketDataType == 3 and delayed.bid > 0
    sim.drills.clear()
    ib.reqMarketDataType(1)
    [live] = await ib.reqTickersAsync(ibm)
    assert live.marketDataType == 1 and live.bid > 0


async def test_51st_open_historical_request_is_refused(make_sim: Any, wait: Any) -> None:
    sim, ib, errors = await make_sim(historical_seconds=60, message_rate=0)
    ib.client.MaxRequests = 0  # an unpaced client: all 51 arrive together
    [ibm] = await ib.qualifyContractsAsync(Stock("IBM", "SMART", "USD"))
    tasks = [
        asyncio.ensure_future(
            ib.reqHistoricalDataAsync(ibm, "", f"{n + 1} D", "1 day", "TRADES", True, timeout=0)
        )
        for n in range(51)
    ]
    await wait(lambda: 322 in codes(errors))
    assert errors[-1][2] == (
        "Error processing request:-'wd' : cause - Only 50 simultaneous API historical data "
        "requests allowed."
    )
    assert sim.limits.open_historical == 50
    assert sum(t.done() for t in tasks) == 1  # only the refused one ended
    first = next(iter(sim.sessions()[0].market_data.pending_historical))
    ib.client.cancelHistoricalData(first)  # one closes: room for one more
    await wait(lambda: sim.limits.open_historical == 49)
    ib.client.reqHistoricalData(9999, ibm, "", "2 W", "1 day", "TRADES", 1, 1, False, [])
    await wait(lambda: sim.limits.open_historical == 50)
    assert codes(errors).count(322) == 1
    ib.disconnect()  # a client's open requests end with it
    await wait(lambda: sim.limits.open_historical == 0)
    for task in tasks:
        task.cancel()


async def test_slow_historical_answer_arrives(make_sim: Any) -> None:
    _sim, ib, _errors = await make_sim(historical_seconds=0.05)
    [ibm] = await ib.qualifyContractsAsync(Stock("IBM", "SMART", "USD"))
    bars = await ib.reqHistoricalDataAsync(ibm, "", "5 D", "1 day", "TRADES", True, timeout=5)
    assert len(bars) >= 4


async def test_competing_session_via_control_ends_on_its_own(
    dsim: Simulator, connect: Any, wait: Any
) -> None:
    assert dsim.control is not None and dsim.control.path is not None
    ctl = SimControl(dsim.port, dsim.control.path.parent)
    ib = await connect()
    errors: Errors = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code, text))
    [ibm] = await ib.qualifyContractsAsync(Stock("IBM", "SMART", "USD"))
    assert "10197" in await ctl.competing_session(0.2)
    assert (await ctl.status())["faults"]["competing_session"]["remaining_s"] <= 0.2
    ib.reqMktData(ibm)
    await wait(lambda: 10197 in codes(errors))
    await wait(lambda: dsim.drills.active() == {})  # the other session logged out
    ib.cancelMktData(ibm)
    [live] = await ib.reqTickersAsync(ibm)
    assert live.marketDataType == 1 and live.bid > 0
    assert (await ctl.call("competing-session"))["ok"] is False  # needs seconds
