"""modify_order starts from, and answers with, the order as the broker holds it (simulator).

ib_async refreshes only some fields of a known order from IB's openOrder echo (prices, type,
quantity, ref); tif, outsideRth and goodTillDate stayed as first sent, so a second modification
silently undid the first one's tif, and a tif-only change answered before IB acknowledged it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ib_async.decoder import Decoder
from ib_async.order import Order

from ibkr_mcp.gateway.echo import ECHOED, NOT_ECHOED, BrokerIB, EchoWrapper
from ibkr_mcp.gateway.ib_gateway import IBGateway
from ibkr_mcp.models import ContractRef, OrderInfo, OrderRequest
from ibkr_mcp.runtime import open_runtime
from ibkr_mcp.tools import build_registry

ACCOUNT = "DU1234567"
#: The simulator's fixed clock is 2026-11-25 15:00 UTC: a GTD a week later is valid.
GOOD_TILL = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)


async def _resting(gw: IBGateway, **kw: Any) -> tuple[OrderRequest, OrderInfo]:
    """A BUY LMT 3% under the bid (it rests), placed; ``kw`` overrides the request's fields."""
    contract = await gw.resolve_contract(ContractRef(symbol="AAPL"))
    quote = await gw.quote(ContractRef(symbol="AAPL"))
    assert quote.bid is not None
    values: dict[str, Any] = {
        "account": ACCOUNT, "contract": contract, "side": "BUY", "quantity": Decimal(5),
        "order_type": "LMT", "limit_price": (quote.bid * 97 / 100).quantize(Decimal("0.01")),
        "tif": "GTC",
    }  # fmt: skip
    values.update(kw)
    request = OrderRequest.model_validate(values)
    placed = await gw.place_order(request)
    assert placed.status in ("Submitted", "PreSubmitted")
    return request, placed


def _at_sim(sim: Any, order_id: int) -> Any:
    """The simulator's own record of ``order_id`` (the broker's truth)."""
    (order,) = [o for o in sim.orders() if o.order_id == order_id and not o.what_if]
    return order.fields


async def _received(sim: Any, request: str, count: int) -> None:
    """Yield to the loop until the simulator has logged ``count`` requests named ``request``.

    This waits on socket I/O between the client and the simulator, not on a clock.
    """
    for _ in range(2000):
        if sum(1 for r in sim.received() if r.name == request) >= count:
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"the simulator never received {count} {request}")


def test_the_echoed_fields_are_those_ibs_open_order_message_carries() -> None:
    # What ib_async's decoder reads from an openOrder message (the installed version): every
    # other Order field keeps the value this client sent.
    source = inspect.getsource(Decoder.openOrder)
    decoded = set(re.findall(r"\bo\.([A-Za-z0-9_]+)", source))
    names = {f.name for f in dataclasses.fields(Order)}
    assert names - decoded == NOT_ECHOED
    assert {"tif", "outsideRth", "goodTillDate", "lmtPriceOffset"} <= set(ECHOED)


def test_the_client_decodes_into_the_echo_wrapper() -> None:
    ib = BrokerIB()
    assert isinstance(ib.wrapper, EchoWrapper)
    assert ib.client.wrapper is ib.wrapper and ib.client.decoder.wrapper is ib.wrapper


async def test_tif_change_is_kept_by_the_next_modification(gw: IBGateway, sim: Any) -> None:
    request, placed = await _resting(gw)
    day = await gw.modify_order(placed.order_id, request.model_copy(update={"tif": "DAY"}))
    assert _at_sim(sim, placed.order_id).tif == "DAY"
    assert day.tif == "DAY"  # the answer reports what the broker now holds
    assert (await gw.order_status(placed.order_id)).tif == "DAY"
    # A price-only change built the way modify_order's tool builds it: from the order's
    # current state as the gateway reports it.
    current = await gw.order_status(placed.order_id)
    price = request.limit_price + Decimal("0.05")  # type: ignore[operator]
    second = request.model_copy(update={"tif": current.tif, "limit_price": price})
    answer = await gw.modify_order(placed.order_id, second)
    at_sim = _at_sim(sim, placed.order_id)
    assert (at_sim.tif, at_sim.lmt_price) == ("DAY", price)
    assert (answer.tif, answer.limit_price) == ("DAY", price)


async def test_outside_rth_and_good_till_are_reported_as_the_broker_holds_them(
    gw: IBGateway, sim: Any
) -> None:
    request, placed = await _resting(gw)
    changed = request.model_copy(update={"tif": "GTD", "good_till": GOOD_TILL, "outside_rth": True})
    answer = await gw.modify_order(placed.order_id, changed)
    at_sim = _at_sim(sim, placed.order_id)
    assert (at_sim.tif, at_sim.outside_rth, at_sim.good_till_date) == (
        "GTD", True, "20261202 20:00:00 UTC"
    )  # fmt: skip
    for info in (answer, await gw.order_status(placed.order_id)):
        assert (info.tif, info.outside_rth) == ("GTD", True)
        assert info.good_till == "20261202 20:00:00 UTC"
    # And back: the next modification starts from that state, not from the first placement.
    back = await gw.modify_order(
        placed.order_id, request.model_copy(update={"tif": "DAY", "outside_rth": False})
    )
    at_sim = _at_sim(sim, placed.order_id)
    assert (at_sim.tif, at_sim.outside_rth, at_sim.good_till_date) == ("DAY", False, "")
    assert (back.tif, back.outside_rth, back.good_till) == ("DAY", False, None)


async def test_a_tif_only_change_answers_after_the_broker_acknowledged_it(
    gw: IBGateway, sim: Any
) -> None:
    request, placed = await _resting(gw)
    # The gateway holds the modification: nothing acknowledges it until it resumes.
    before = sum(1 for r in sim.received() if r.name == "PLACE_ORDER")
    sim.pause_on("PLACE_ORDER")
    task = asyncio.ensure_future(
        gw.modify_order(placed.order_id, request.model_copy(update={"tif": "DAY"}))
    )
    try:
        await _received(sim, "PLACE_ORDER", before + 1)
        assert not task.done(), "answered before the broker acknowledged the modification"
    finally:
        sim.pause(False)
    answer = await task
    assert answer.tif == "DAY"
    assert _at_sim(sim, placed.order_id).tif == "DAY"


async def test_modify_order_tool_keeps_an_earlier_tif_change(settings_for: Any, sim: Any) -> None:
    # The red-team repro end to end: GTC → DAY, then a price-only change through the tool.
    registry = build_registry()

    async def call(services: Any, tool: str, args: dict[str, Any]) -> Any:
        return (await registry.call(tool, args, services=services, surface="internal")).output

    async def two_step(services: Any, tool: str, args: dict[str, Any], key: str) -> Any:
        preview = await call(services, tool, args)
        assert preview.stage == "preview" and preview.preview.refusals == []
        token = preview.preview.confirmation_token
        done = await call(services, tool, {**args, "confirmation_token": token,
                                           "idempotency_key": key})  # fmt: skip
        assert done.stage == "done"
        return done.result

    settings = settings_for(sim.port, ORDERS_ENABLED=True)
    async with open_runtime(settings, wait_connected=5.0) as services:
        quote = await call(services, "get_quote", {"symbol": "AAPL"})
        price = (quote.bid * 97 / 100).quantize(Decimal("0.01"))
        order = {"symbol": "AAPL", "side": "BUY", "quantity": 5, "order_type": "LMT",
                 "limit_price": str(price), "tif": "GTC"}  # fmt: skip
        preview = await call(services, "preview_order", order)
        placed = await call(services, "place_order", {
            **order, "confirmation_token": preview.confirmation_token,
            "idempotency_key": "echo-place-01",
        })  # fmt: skip
        order_id = placed.order_id
        await two_step(
            services, "modify_order", {"order_id": order_id, "tif": "DAY"}, "echo-mod-01"
        )
        assert _at_sim(sim, order_id).tif == "DAY"
        new_price = str(price + Decimal("0.05"))
        args = {"order_id": order_id, "limit_price": new_price}
        second = await two_step(services, "modify_order", args, "echo-mod-02")
        assert _at_sim(sim, order_id).tif == "DAY"
        assert second.order.tif == "DAY"
        status = await call(services, "get_order_status", {"order_id": order_id})
        assert status.order.tif == "DAY"
