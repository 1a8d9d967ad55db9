"""IBGateway against the simulator over a real socket: connection, contracts, market data."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from ibkr_mcp.errors import (
    AmbiguousContractError,
    ContractNotFoundError,
    GatewayUnavailableError,
    IbkrMcpError,
    InvalidInputError,
)
from ibkr_mcp.gateway.ib_gateway import IBGateway
from ibkr_mcp.gateway.load import market_data_call
from ibkr_mcp.models import ContractRef, Quote


def _count(sim: Any, name: str) -> int:
    return sum(1 for m in sim.received() if m.name == name)


async def test_status_says_simulator(gw: IBGateway, sim: Any) -> None:
    assert gw.connected
    status = await gw.status()
    assert status.connected is True
    assert status.broker == "simulator"
    assert status.port == sim.port
    assert status.accounts == ("DU1234567",)
    assert status.server_version is not None and status.server_version >= 150
    assert status.server_time is not None and status.server_time.tzinfo is not None
    assert status.market_data_type == "live_or_delayed"
    assert gw.managed_accounts() == ("DU1234567",)


async def test_resolve_stock_etf_and_forex(gw: IBGateway) -> None:
    aapl = await gw.resolve_contract(ContractRef(symbol="AAPL"))
    assert (aapl.symbol, aapl.sec_type, aapl.currency) == ("AAPL", "STK", "USD")
    assert aapl.con_id > 0
    assert aapl.primary_exchange
    spy = await gw.resolve_contract(ContractRef(symbol="SPY"))
    assert spy.symbol == "SPY" and spy.con_id != aapl.con_id
    fx = await gw.resolve_contract(ContractRef(symbol="EUR.USD", sec_type="CASH"))
    assert (fx.symbol, fx.sec_type, fx.currency) == ("EUR", "CASH", "USD")
    assert fx.exchange == "IDEALPRO"
    by_id = await gw.resolve_contract(ContractRef(symbol="AAPL", con_id=aapl.con_id))
    assert by_id.con_id == aapl.con_id


async def test_unknown_symbol_is_contract_not_found(gw: IBGateway) -> None:
    with pytest.raises(ContractNotFoundError) as info:
        await gw.resolve_contract(ContractRef(symbol="NOSUCHSYM"))
    assert info.value.code == "CONTRACT_NOT_FOUND"
    assert "NOSUCHSYM" in info.value.message
    assert "search_contracts" in (info.value.remedy or "")
    assert info.value.details["symbol"] == "NOSUCHSYM"


async def test_cache_hit_does_not_requery(gw: IBGateway, sim: Any) -> None:
    ref = ContractRef(symbol="MSFT")
    first = await gw.resolve_contract(ref)
    asked = _count(sim, "REQ_CONTRACT_DATA")
    second = await gw.resolve_contract(ContractRef(symbol="MSFT"))
    assert second == first
    assert _count(sim, "REQ_CONTRACT_DATA") == asked
    assert gw.contracts.cache.hits >= 1


async def test_contract_details_and_search(gw: IBGateway) -> None:
    details = await gw.contract_details(ContractRef(symbol="AAPL"))
    assert len(details) == 1
    assert details[0].min_tick > 0
    assert details[0].long_name
    found = await gw.search_contracts("AAP")
    assert any(c.symbol == "AAPL" for c in found)
    with pytest.raises(InvalidInputError):
        await gw.search_contracts("  ")


async def test_quote_is_labelled_and_timestamped(gw: IBGateway) -> None:
    quote = await gw.quote(ContractRef(symbol="AAPL"))
    assert quote.symbol == "AAPL"
    assert quote.source == "simulator"
    assert quote.market_data_type in ("live", "delayed", "frozen", "delayed_frozen")
    assert quote.timestamp.tzinfo is not None
    assert quote.timestamp.utcoffset() is not None
    assert quote.bid is not None and quote.ask is not None
    assert quote.bid <= quote.ask


async def test_quotes_concurrent_with_error_item(gw: IBGateway, sim: Any) -> None:
    symbols = ["AAPL", "MSFT", "SPY", "QQQ", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "NOSUCHSYM"]
    refs = [ContractRef(symbol=s) for s in symbols]
    for ref in refs[:-1]:  # warm the contract cache: the batch then only asks for quotes
        await gw.resolve_contract(ref)
    mark = max(m.seq for m in sim.received())
    results = await gw.quotes(refs)
    assert len(results) == len(refs)
    assert all(isinstance(r, Quote) for r in results[:-1])
    assert [r.symbol for r in results[:-1] if isinstance(r, Quote)] == symbols[:-1]
    assert isinstance(results[-1], IbkrMcpError)
    assert results[-1].code == "CONTRACT_NOT_FOUND"
    requests = [m for m in sim.received() if m.seq > mark and m.name == "REQ_MKT_DATA"]
    assert len(requests) == 9
    assert len({m.req_id for m in requests}) == 9


async def test_quotes_are_all_requested_before_any_answer(settings_for: Any, sim: Any) -> None:
    # The simulator answers each request as it reads it, so its logs interleave even for a
    # batch sent at once; a paused simulator proves every request left before any answer.
    gw = IBGateway(settings_for(sim.port, IBKR_REQUEST_TIMEOUT=0.5))
    await gw.ensure_connected()
    try:
        refs = [ContractRef(symbol=s) for s in ("AAPL", "MSFT", "SPY", "QQQ", "NVDA")]
        for ref in refs:
            await gw.resolve_contract(ref)
        mark = max(m.seq for m in [*sim.received(), *sim.sent()])
        sim.pause(True)
        results = await gw.quotes(refs)
        requests = [m for m in sim.received() if m.seq > mark and m.name == "REQ_MKT_DATA"]
        assert len(requests) == len(refs)
        assert all(isinstance(r, IbkrMcpError) and r.code == "GATEWAY_TIMEOUT" for r in results)
        sim.pause(False)
        quote = await gw.quote(refs[0])
        assert quote.symbol == "AAPL"
    finally:
        await gw.close()


async def test_daily_bars(gw: IBGateway) -> None:
    bars = await gw.bars(
        ContractRef(symbol="AAPL"), duration="5 D", bar_size="1 day",
        what_to_show="TRADES", use_rth=True,
    )  # fmt: skip
    assert 1 <= len(bars) <= 5
    for bar in bars:
        assert bar.time.tzinfo is not None
        assert (bar.time.hour, bar.time.minute) == (0, 0)
        assert bar.low <= bar.open <= bar.high
        assert bar.low <= bar.close <= bar.high
    assert [b.time for b in bars] == sorted(b.time for b in bars)


async def test_intraday_bars_with_end(gw: IBGateway) -> None:
    end = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
    bars = await gw.bars(
        ContractRef(symbol="SPY"), duration="3600 S", bar_size="5 mins",
        what_to_show="TRADES", use_rth=False, end=end,
    )  # fmt: skip
    assert bars
    assert all(b.time <= end for b in bars)


@pytest.mark.parametrize(
    ("duration", "bar_size", "field"),
    [("5 days", "1 day", "duration"), ("5 D", "1 days", "bar_size")],
)
async def test_bad_bar_strings_fail_before_sending(
    gw: IBGateway, sim: Any, duration: str, bar_size: str, field: str
) -> None:
    before = _count(sim, "REQ_HISTORICAL_DATA")
    with pytest.raises(InvalidInputError) as info:
        await gw.bars(
            ContractRef(symbol="AAPL"), duration=duration, bar_size=bar_size,
            what_to_show="TRADES", use_rth=True,
        )  # fmt: skip
    assert info.value.details["errors"][0]["field"] == field
    assert _count(sim, "REQ_HISTORICAL_DATA") == before


async def test_ambiguous_contract_lists_candidates(gw: IBGateway) -> None:
    with pytest.raises(AmbiguousContractError) as info:
        await gw.resolve_contract(ContractRef(symbol="USD", sec_type="CASH", currency=""))
    candidates = info.value.details["candidates"]
    assert len(candidates) == 3
    assert {c["currency"] for c in candidates} == {"JPY", "CAD", "CHF"}
    assert all(c["con_id"] and c["symbol"] == "USD" for c in candidates)
    assert info.value.code == "AMBIGUOUS_CONTRACT"


async def test_delayed_policy_labels_quotes_delayed(settings_for: Any, sim: Any) -> None:
    gw = IBGateway(settings_for(sim.port, MARKET_DATA_TYPE="delayed"))
    try:
        quote = await gw.quote(ContractRef(symbol="SPY"))
        assert quote.market_data_type == "delayed"
        assert (await gw.status()).market_data_type == "delayed"
    finally:
        await gw.close()


async def test_live_or_delayed_falls_back_to_delayed(gw: IBGateway, sim: Any) -> None:
    ref = ContractRef(symbol="AAPL")
    await gw.resolve_contract(ref)
    mark = max(m.seq for m in sim.received())
    sim.pause(True)  # hold the live request so IB's "not subscribed" can be delivered first
    task = asyncio.create_task(gw.quote(ref))
    for _ in range(100):
        live = [m for m in sim.received() if m.seq > mark and m.name == "REQ_MKT_DATA"]
        if live:
            break
        await asyncio.sleep(0.01)
    assert live
    sim.pause(False)
    # What IB sends when live data is not subscribed, fed through ib_async's own error entry.
    gw.ib.wrapper.error(live[0].req_id, 10089, "Requested market data requires additional "
                        "subscription for API. Delayed market data is available.", "")  # fmt: skip
    quote = await asyncio.wait_for(task, 5)
    assert quote.market_data_type == "delayed"
    after = [m.name for m in sim.received() if m.seq > mark]
    assert after.count("REQ_MKT_DATA") == 2
    assert "REQ_MARKET_DATA_TYPE" in after


async def test_client_id_in_use_names_the_setting(
    gw: IBGateway, settings_for: Any, sim: Any
) -> None:
    second = IBGateway(settings_for(sim.port))  # same IBKR_CLIENT_ID as the connected `gw`
    try:
        with pytest.raises(GatewayUnavailableError) as info:
            await second.ensure_connected()
        assert info.value.details["ib_code"] == 326
        assert "IBKR_CLIENT_ID" in (info.value.remedy or "")
        assert gw.connected  # the first client is unaffected
    finally:
        await second.close()


async def test_connectivity_lost_and_restored(gw: IBGateway) -> None:
    # IB Gateway reports its own link to IB's servers with 1100 / 1102 on reqId -1.
    gw.ib.wrapper.error(
        -1, 1100, "Connectivity between IB and Trader Workstation has been lost.", ""
    )
    assert not gw.connected
    with pytest.raises(GatewayUnavailableError) as info:
        await gw.resolve_contract(ContractRef(symbol="AAPL"))
    assert info.value.details["ib_code"] == 1100
    assert (await gw.status()).connected is False
    gw.ib.wrapper.error(-1, 1102, "Connectivity between IB and TWS has been restored.", "")
    assert gw.connected
    assert (await gw.resolve_contract(ContractRef(symbol="AAPL"))).symbol == "AAPL"


async def test_quote_cache(settings_for: Any, sim: Any) -> None:
    gw = IBGateway(settings_for(sim.port, QUOTE_CACHE_SECONDS=30))
    try:
        first = await gw.quote(ContractRef(symbol="IBM"))
        asked = _count(sim, "REQ_MKT_DATA")
        second = await gw.quote(ContractRef(symbol="IBM"))
        assert second == first
        assert _count(sim, "REQ_MKT_DATA") == asked
        batch = await gw.quotes([ContractRef(symbol="IBM")])
        assert batch == [first]
        # Data-lost (1101) drops cached market data.
        gw.ib.wrapper.error(-1, 1101, "Connectivity restored - data lost.", "")
        await gw.quote(ContractRef(symbol="IBM"))
        assert _count(sim, "REQ_MKT_DATA") == asked + 1
    finally:
        await gw.close()


async def test_quote_cache_refreshes_ahead_of_expiry(settings_for: Any, sim: Any) -> None:
    now = [100.0]
    gw = IBGateway(settings_for(sim.port, QUOTE_CACHE_SECONDS=1), quote_clock=lambda: now[0])
    ref = ContractRef(symbol="IBM")
    try:
        with market_data_call():
            first = await gw.quote(ref)
            asked = _count(sim, "REQ_MKT_DATA")
            now[0] = 100.5  # young: served, nothing refreshed
            assert await gw.quote(ref) is first
            await gw.market_data.settled()
            assert _count(sim, "REQ_MKT_DATA") == asked
            now[0] = 100.8  # past 3/4 of its life: still served, one refresh behind the answers
            assert await gw.quote(ref) is first
            assert await gw.quote(ref) is first
            await gw.market_data.settled()
            assert _count(sim, "REQ_MKT_DATA") == asked + 1
            now[0] = 101.5  # the first quote has expired: the refreshed one answers, no miss
            second = await gw.quote(ref)
            assert second is not first and second.symbol == "IBM"
            assert await gw.quotes([ref]) == [second]
            await gw.market_data.settled()
            assert _count(sim, "REQ_MKT_DATA") == asked + 1
    finally:
        await gw.close()
