"""IB's limits, observed by an unmodified ib_async client: pacing, lines, message rate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from ib_async import IB, Stock

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import FixedClock

T0 = datetime(2026, 11, 25, 15, 0, 0, tzinfo=UTC)  # markets open


class FakeMonotonic:
    """An injectable monotonic clock the test advances by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def mono() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
async def make_sim(mono: FakeMonotonic) -> AsyncIterator[Callable[..., Any]]:
    sims: list[Simulator] = []
    clients: list[IB] = []

    async def make(**kw: Any) -> tuple[Simulator, Callable[..., Any]]:
        kw.setdefault("monotonic", mono)
        sim = Simulator(seed=42, clock=FixedClock(T0), **kw)
        await sim.start()
        sims.append(sim)

        async def connect(client_id: int = 1) -> tuple[IB, list[tuple[int, int, str]]]:
            ib = IB()
            errors: list[tuple[int, int, str]] = []
            ib.errorEvent += lambda req_id, code, text, contract: errors.append(
                (req_id, code, text)
            )
            await ib.connectAsync("127.0.0.1", sim.port, clientId=client_id, timeout=3)
            clients.append(ib)
            return ib, errors

        return sim, connect

    yield make
    for ib in clients:
        ib.disconnect()
    for sim in sims:
        await sim.stop()


def codes(errors: list[tuple[int, int, str]]) -> list[int]:
    return [c for _, c, _ in errors if c not in (2104, 2106, 2158, 2199)]


async def bars(ib: IB, contract: Any, duration: str = "60 S", size: str = "5 secs") -> int:
    got = await ib.reqHistoricalDataAsync(
        contract, endDateTime="", durationStr=duration, barSizeSetting=size,
        whatToShow="TRADES", useRTH=False, timeout=3,
    )  # fmt: skip
    return len(got)


PACING = "Historical Market Data Service error message:Historical data request pacing violation"


async def test_identical_small_bar_request_within_15s_is_paced(
    make_sim: Any, mono: FakeMonotonic
) -> None:
    _sim, connect = await make_sim()
    ib, errors = await connect()
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    assert await bars(ib, aapl) > 0
    assert await bars(ib, aapl) == 0
    assert (errors[-1][1], errors[-1][2]) == (162, PACING)
    mono.t += 14.0
    assert await bars(ib, aapl) == 0
    mono.t += 1.5
    assert await bars(ib, aapl) > 0
    assert await bars(ib, aapl, size="1 min") > 0  # bars over 30 s are not paced
    assert await bars(ib, aapl, size="1 min") > 0


async def test_six_requests_same_contract_within_2s(make_sim: Any, mono: FakeMonotonic) -> None:
    _sim, connect = await make_sim()
    ib, errors = await connect()
    [aapl, msft] = await ib.qualifyContractsAsync(
        Stock("AAPL", "SMART", "USD"), Stock("MSFT", "SMART", "USD")
    )
    for seconds in (60, 120, 180, 240, 300):
        assert await bars(ib, aapl, f"{seconds} S") > 0
    assert await bars(ib, aapl, "360 S") == 0
    assert codes(errors) == [162]
    assert await bars(ib, msft, "360 S") > 0  # another contract is not affected
    mono.t += 2.0
    assert await bars(ib, aapl, "420 S") > 0


async def test_more_than_60_in_ten_minutes(make_sim: Any, mono: FakeMonotonic) -> None:
    _sim, connect = await make_sim()
    ib, errors = await connect()
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    for i in range(60):
        mono.t += 3.0
        assert await bars(ib, aapl, f"{60 + i} S") > 0, i
    mono.t += 3.0
    assert await bars(ib, aapl, "999 S") == 0
    assert codes(errors) == [162]
    mono.t += 600.0
    assert await bars(ib, aapl, "999 S") > 0


async def test_pacing_off(make_sim: Any) -> None:
    _sim, connect = await make_sim(pacing=False)
    ib, errors = await connect()
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    for _ in range(7):
        assert await bars(ib, aapl) > 0
    assert codes(errors) == []


async def test_at_most_50_open_historical_requests(
    make_sim: Any, wait: Any, mono: FakeMonotonic
) -> None:
    # keepUpToDate requests stay open until cancelled (or the client goes): IB admits 50.
    sim, connect = await make_sim()
    ib, errors = await connect(1)
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))

    async def open_bars() -> Any:
        mono.t += 0.1  # ten requests a second: well inside the message rate
        return await ib.reqHistoricalDataAsync(
            aapl, endDateTime="", durationStr="5 D", barSizeSetting="1 day",
            whatToShow="TRADES", useRTH=True, keepUpToDate=True, timeout=3,
        )  # fmt: skip

    held = [await open_bars() for _ in range(50)]
    assert all(len(b) > 0 for b in held) and codes(errors) == []
    assert len(await open_bars()) == 0
    assert codes(errors) == [322]  # IB's own code for this one, not a 162 pacing violation
    assert errors[-1][2].endswith("Only 50 simultaneous API historical data requests allowed.")
    ib.cancelHistoricalData(held.pop())
    await wait(lambda: sim.limits.open_historical == 49)
    assert len(await open_bars()) > 0  # a cancelled request frees its place
    assert sim.limits.open_historical == 50
    ib.disconnect()  # the client's open requests go with it
    await wait(lambda: sim.limits.open_historical == 0)


async def test_market_data_lines_across_clients(make_sim: Any, wait: Any) -> None:
    sim, connect = await make_sim(market_data_lines=3)
    ib1, errors1 = await connect(1)
    ib2, errors2 = await connect(2)
    names = ("AAPL", "MSFT", "IBM", "SPY")
    contracts = await ib1.qualifyContractsAsync(*[Stock(s, "SMART", "USD") for s in names])
    ib1.reqMktData(contracts[0])
    ib1.reqMktData(contracts[1])
    ib2.reqMktData(contracts[2])
    await wait(lambda: sim.streams_in_use() == 3)
    fourth = ib2.reqMktData(contracts[3])
    await wait(lambda: 101 in codes(errors2))
    assert (errors2[-1][1], errors2[-1][2]) == (101, "Max number of tickers has been reached.")
    assert sim.streams_in_use() == 3
    [snap] = await ib2.reqTickersAsync(contracts[3])  # snapshots hold no line
    assert snap.bid > 0
    ib2.cancelMktData(fourth.contract)
    ib1.cancelMktData(contracts[0])
    await wait(lambda: sim.streams_in_use() == 2)
    ib2.reqMktData(contracts[3])
    await wait(lambda: sim.streams_in_use() == 3)
    assert 101 not in codes(errors1)


async def test_duplicate_ticker_id_is_error_322(make_sim: Any, wait: Any) -> None:
    _sim, connect = await make_sim()
    ib, errors = await connect()
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    ib.client.reqMktData(9001, aapl, "", False, False, [])
    ib.client.reqMktData(9001, aapl, "", False, False, [])
    await wait(lambda: 322 in codes(errors))
    assert (9001, 322) in [(r, c) for r, c, _ in errors]


async def test_ib_async_own_throttle_never_meets_error_100(make_sim: Any, wait: Any) -> None:
    import time

    sim, connect = await make_sim(monotonic=time.monotonic)
    ib, errors = await connect()
    before = len(sim.received())
    for _ in range(100):  # ib_async paces these at 45/s
        ib.client.reqCurrentTime()
    await wait(lambda: len(sim.received()) - before >= 100, timeout=6)
    assert 100 not in codes(errors)
    assert ib.isConnected()


async def test_message_rate_error_100_then_disconnect(
    make_sim: Any, mono: FakeMonotonic, wait: Any
) -> None:
    sim, connect = await make_sim()
    ib, errors = await connect()
    ib.client.MaxRequests = 0  # an unpaced client
    start = len(sim.received())
    for step in range(3):
        for _ in range(60):
            ib.client.reqCurrentTime()
        await wait(lambda s=step: len(sim.received()) - start >= 60 * (s + 1))
        mono.t += 0.9
    await wait(lambda: codes(errors).count(100) >= 10)
    assert errors[-1][2] == "Max rate of messages per second has been exceeded."
    assert ib.isConnected()
    for _ in range(60):  # still over the rate 2.7 s after the first violation
        ib.client.reqCurrentTime()
    await wait(lambda: not ib.isConnected())


async def test_no_live_subscription_354_live_10167_delayed(make_sim: Any, wait: Any) -> None:
    _sim, connect = await make_sim(no_live_data=("IBM",))
    ib, errors = await connect()
    [ibm, aapl] = await ib.qualifyContractsAsync(
        Stock("IBM", "SMART", "USD"), Stock("AAPL", "SMART", "USD")
    )
    live = ib.reqMktData(ibm)
    await wait(lambda: 354 in codes(errors))
    assert errors[-1][2] == "Requested market data is not subscribed."
    assert live.bid != live.bid  # nothing streamed (NaN)
    ib.cancelMktData(ibm)
    [other] = await ib.reqTickersAsync(aapl)  # subscribed symbols are unaffected
    assert other.bid > 0
    ib.reqMarketDataType(3)
    [delayed] = await ib.reqTickersAsync(ibm)
    assert 10167 in codes(errors)
    assert delayed.marketDataType == 3 and delayed.bid > 0
