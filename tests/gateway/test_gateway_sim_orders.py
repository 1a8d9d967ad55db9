"""IBGateway against the simulator: account data, what-if, orders, executions, listeners."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from ibkr_mcp.errors import (
    AccountNotManagedError,
    OrderNotFoundError,
    OrderRejectedError,
)
from ibkr_mcp.gateway.ib_gateway import IBGateway
from ibkr_mcp.models import Contract, ContractRef, Fill, OrderInfo, OrderRequest

ACCOUNT = "DU1234567"


async def _eventually(check: Callable[[], Any], timeout: float = 3.0) -> Any:
    """Poll ``check`` until it returns something truthy (the simulator fills on its tick)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def _order(gw: IBGateway, symbol: str = "AAPL", **kw: Any) -> OrderRequest:
    contract: Contract = await gw.resolve_contract(ContractRef(symbol=symbol))
    values: dict[str, Any] = {
        "account": ACCOUNT, "contract": contract, "side": "BUY", "quantity": Decimal(10),
        "order_type": "MKT",
    }  # fmt: skip
    values.update(kw)
    return OrderRequest.model_validate(values)


async def test_account_summary(gw: IBGateway) -> None:
    summary = await gw.account_summary(ACCOUNT)
    assert summary.account == ACCOUNT
    assert summary.currency == "USD"
    assert summary.net_liquidation is not None and summary.net_liquidation > 0
    assert summary.total_cash is not None
    assert summary.buying_power is not None and summary.buying_power > 0
    assert summary.values
    with pytest.raises(AccountNotManagedError) as info:
        await gw.account_summary("DU0000000")
    assert ACCOUNT in (info.value.remedy or "")


async def test_what_if(gw: IBGateway, sim: Any) -> None:
    result = await gw.what_if(await _order(gw, order_type="LMT", limit_price=Decimal(100)))
    assert result.init_margin_change is not None
    assert result.init_margin_change > 0
    assert result.commission is not None and result.commission > 0
    assert result.commission_currency == "USD"
    assert await gw.open_orders() == []  # a preview places nothing
    assert [o.what_if for o in sim.orders()] == [True]


async def test_the_order_caller_answers_before_async_listeners_start(gw: IBGateway) -> None:
    # The acknowledgement wakes place_order first; the listeners' work (audit rows) follows.
    answered = [False]
    heard: list[tuple[str, bool]] = []

    async def listener(info: OrderInfo) -> None:
        heard.append((info.status, answered[0]))

    gw.add_order_status_listener(listener)
    info = await gw.place_order(await _order(gw, quantity=Decimal(1), order_ref="ref-first"))
    answered[0] = True
    assert await _eventually(lambda: any(status == info.status for status, _ in heard))
    assert all(seen_after for status, seen_after in heard if status == info.status), heard


async def test_market_order_fills_with_commission_and_listeners(gw: IBGateway, sim: Any) -> None:
    statuses: list[OrderInfo] = []
    fills: list[Fill] = []
    async_seen: list[str] = []

    async def async_listener(info: OrderInfo) -> None:
        async_seen.append(info.status)

    def broken_listener(info: OrderInfo) -> None:
        raise RuntimeError("listener bug must not propagate")

    gw.add_order_status_listener(statuses.append)
    gw.add_order_status_listener(broken_listener)
    gw.add_order_status_listener(async_listener)
    gw.add_fill_listener(fills.append)

    request = await _order(gw, quantity=Decimal(10), order_ref="ref-mkt-1")
    info = await gw.place_order(request)
    assert info.order_id > 0
    assert info.order_ref == "ref-mkt-1"
    assert info.status not in ("PendingSubmit", "ApiPending")
    assert [o.fields.order_ref for o in sim.orders() if not o.what_if][-1] == "ref-mkt-1"

    filled = await _eventually(
        lambda: (s := gw.orders._find_trade(info.order_id)) and s.orderStatus.status == "Filled"
    )
    assert filled
    status = await gw.order_status(info.order_id)
    assert status.status == "Filled"
    assert status.filled == Decimal(10)
    assert status.avg_fill_price is not None

    await _eventually(lambda: any(f.commission is not None for f in fills))
    assert any(s.status == "Filled" for s in statuses)
    assert await _eventually(lambda: "Filled" in async_seen)  # an async listener: a task
    assert {f.order_id for f in fills} == {info.order_id}

    executions = await gw.executions(ACCOUNT)
    mine = [f for f in executions if f.order_id == info.order_id]
    assert sum(f.quantity for f in mine) == Decimal(10)
    assert all(f.commission is not None and f.commission > 0 for f in mine)
    assert all(f.time.tzinfo is not None for f in mine)
    assert mine[0].order_ref == "ref-mkt-1"

    positions = await gw.positions(ACCOUNT)
    aapl = [p for p in positions if p.symbol == "AAPL"]
    assert aapl and aapl[0].quantity == Decimal(10)
    assert aapl[0].avg_cost > 0

    pnl = await gw.pnl(ACCOUNT)
    assert pnl.account == ACCOUNT
    assert pnl.daily_pnl is not None or pnl.unrealized_pnl is not None
    again = await gw.pnl(ACCOUNT)  # the subscription is kept: no second reqPnL
    assert again.account == ACCOUNT
    assert sum(1 for m in sim.received() if m.name == "REQ_PNL") == 1

    found = await gw.find_orders_by_ref("ref-mkt-1")
    assert [o.order_id for o in found] == [info.order_id]
    assert found[0].status == "Filled"
    assert await gw.find_orders_by_ref("no-such-ref") == []


async def test_limit_order_rests_then_cancels(gw: IBGateway) -> None:
    request = await _order(
        gw, symbol="MSFT", order_type="LMT", limit_price=Decimal(1), order_ref="ref-lmt-1",
        tif="GTC",
    )  # fmt: skip
    info = await gw.place_order(request)
    assert info.status in ("PreSubmitted", "Submitted")
    assert info.limit_price == Decimal(1)
    assert info.remaining == Decimal(10)
    open_now = await gw.open_orders()
    assert info.order_id in [o.order_id for o in open_now]
    cancelled = await gw.cancel_order(info.order_id)
    assert cancelled.status == "Cancelled"
    assert (await gw.order_status(info.order_id)).status == "Cancelled"
    assert info.order_id not in [o.order_id for o in await gw.open_orders()]
    found = await gw.find_orders_by_ref("ref-lmt-1")
    assert [o.status for o in found] == ["Cancelled"]


async def test_off_tick_price_is_rejected_with_remedy(gw: IBGateway) -> None:
    request = await _order(gw, order_type="LMT", limit_price=Decimal("100.001"))
    with pytest.raises(OrderRejectedError) as info:
        await gw.place_order(request)
    err = info.value
    assert err.details["ib_code"] == 110
    assert "min_tick" in (err.remedy or "")
    assert err.details["order_id"] > 0


async def test_unknown_order_ids(gw: IBGateway) -> None:
    with pytest.raises(OrderNotFoundError):
        await gw.cancel_order(987654)
    with pytest.raises(OrderNotFoundError):
        await gw.order_status(987654)


async def test_positions_of_second_account_have_valuations(settings_for: Any) -> None:
    from ibkr_mcp.simulator import Simulator

    sim = Simulator(seed=7, accounts=("DU1111111", "DU2222222"))
    port = await sim.start("127.0.0.1", 0)
    gw = IBGateway(settings_for(port))
    try:
        await gw.ensure_connected()
        assert gw.managed_accounts() == ("DU1111111", "DU2222222")
        request = await _order(gw, symbol="KO", account="DU2222222", quantity=Decimal(5))
        placed = await gw.place_order(request)
        await _eventually(lambda: gw.order_status(placed.order_id))
        await _eventually(
            lambda: gw.orders._find_trade(placed.order_id).orderStatus.status == "Filled"
        )
        positions = await gw.positions("DU2222222")
        assert [(p.symbol, p.quantity) for p in positions] == [("KO", Decimal(5))]
        assert positions[0].market_price is not None
        assert positions[0].market_value is not None
        assert await gw.positions("DU1111111") == []
        summary = await gw.account_summary("DU2222222")
        assert summary.net_liquidation is not None
    finally:
        await gw.close()
        await sim.stop()


async def test_hung_gateway_times_out_every_request(settings_for: Any, sim: Any) -> None:
    gw = IBGateway(settings_for(sim.port, IBKR_REQUEST_TIMEOUT=0.3))
    try:
        request = await _order(gw, order_ref="ref-hung")
        sim.pause(True)  # requests are read but never answered
        calls = [
            gw.bars(ContractRef(symbol="AAPL"), duration="1 D", bar_size="1 hour",
                    what_to_show="TRADES", use_rth=True),
            gw.open_orders(),
            gw.account_summary(ACCOUNT),
            gw.executions(),
            gw.what_if(request),
            gw.place_order(request),
            gw.resolve_contract(ContractRef(symbol="NFLX")),
        ]  # fmt: skip
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        codes = [getattr(o, "code", repr(o)) for o in outcomes]
        assert codes == ["GATEWAY_TIMEOUT"] * len(calls)
        assert "order_ref" in (outcomes[5].remedy or "")  # type: ignore[union-attr]
        assert (await gw.status()).server_time is None  # status still answers
    finally:
        sim.pause(False)
        await gw.close()
