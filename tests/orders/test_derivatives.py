"""Options, futures and indices through the tools and the simulator: chains, greeks, orders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from order_helpers import call, preview_and_place, sent_orders


@pytest.fixture
async def deriv(settings_for: Any, sim: Any) -> AsyncIterator[Any]:
    """Orders enabled with options and futures allowed (they still default to STK only)."""
    from ibkr_mcp.runtime import open_runtime

    settings = settings_for(
        sim.port,
        ORDERS_ENABLED=True,
        ALLOWED_SEC_TYPES="STK,OPT,FUT",
        MAX_ORDER_NOTIONAL=500000,
        MAX_DAILY_NOTIONAL=1000000,
    )
    async with open_runtime(settings, wait_connected=5.0) as svc:
        yield svc


async def test_index_resolves_without_exchange_and_quotes(services: Any) -> None:
    details = await call(services, "get_contract_details", {"symbol": "SPX", "sec_type": "ind"})
    assert details.details[0].contract.exchange == "CBOE"
    quote = await call(services, "get_quote", {"symbol": "VIX", "sec_type": "IND"})
    assert quote.last is not None or quote.close is not None
    bars = await call(services, "get_bars", {"symbol": "SPX", "sec_type": "IND",
                                             "what_to_show": "TRADES"})  # fmt: skip
    assert bars.bars


async def test_future_front_month_carries_expiry_and_local_symbol(services: Any) -> None:
    details = await call(services, "get_contract_details", {"symbol": "ES", "sec_type": "FUT"})
    contracts = [d.contract for d in details.details]
    assert len(contracts) > 1  # every listed month
    quote = await call(services, "get_quote", {"symbol": "ES", "sec_type": "FUT"})
    front = min(contracts, key=lambda c: c.expiry)
    assert quote.con_id == front.con_id
    assert front.local_symbol.startswith("ES") and front.multiplier == 50


async def _chain(services: Any) -> Any:
    return await call(services, "get_option_chain", {"symbol": "AAPL", "strikes_around_spot": 3})


async def test_option_chain_is_compact_around_spot(services: Any) -> None:
    chain = await _chain(services)
    assert chain.multiplier == 100
    assert 1 <= len(chain.expirations) <= 8
    assert len(chain.strikes) <= 7
    assert chain.underlying_price is not None
    assert min(chain.strikes) <= chain.underlying_price <= max(chain.strikes)
    assert all(len(e) == 8 and e.isdigit() for e in chain.expirations)


async def test_option_quotes_and_get_quote_carry_greeks(services: Any) -> None:
    chain = await _chain(services)
    expiry = chain.expirations[0]
    strike = chain.strikes[len(chain.strikes) // 2]
    legs = [{"symbol": "AAPL", "expiry": expiry, "strike": str(strike), "right": r}
            for r in ("C", "p")]  # fmt: skip
    legs.append({"symbol": "AAPL", "expiry": expiry, "strike": "1.5", "right": "C"})
    result = await call(services, "get_option_quotes", {"contracts": legs})
    assert [q.right for q in result.quotes] == ["C", "P"]
    assert len(result.errors) == 1 and "1.5" in result.errors[0].symbol
    call_greeks = result.quotes[0].quote.greeks
    assert call_greeks is not None and call_greeks.delta is not None
    assert Decimal(0) < call_greeks.delta < Decimal(1)
    assert result.quotes[1].quote.greeks.delta < 0
    single = await call(services, "get_quote", {"symbol": "AAPL", "sec_type": "OPT",
                                                "expiry": expiry, "strike": str(strike),
                                                "right": "CALL"})  # fmt: skip
    assert single.greeks is not None and single.greeks.implied_vol is not None


async def test_option_order_counts_the_multiplier(deriv: Any, sim: Any) -> None:
    chain = await _chain(deriv)
    leg = {"symbol": "AAPL", "sec_type": "OPT", "expiry": chain.expirations[0],
           "strike": str(chain.strikes[len(chain.strikes) // 2]), "right": "C"}  # fmt: skip
    quote = await call(deriv, "get_quote", leg)
    order = {
        **leg,
        "side": "BUY",
        "quantity": 2,
        "order_type": "LMT",
        "limit_price": str(quote.ask),
    }
    preview = await call(deriv, "preview_order", order)
    assert preview.order.multiplier == 100
    assert preview.order.estimated_notional == 2 * quote.ask * 100
    placed = await preview_and_place(deriv, order, "opt-order-01")
    assert placed.sent is True
    [sent] = sent_orders(sim)
    assert sent.fields.contract.sec_type == "OPT"


async def test_future_order_through_the_gates(deriv: Any, sim: Any) -> None:
    order = {"symbol": "ES", "sec_type": "FUT", "side": "BUY", "quantity": 1, "order_type": "MKT"}
    preview = await call(deriv, "preview_order", order)
    assert preview.order.multiplier == 50
    assert preview.refusals == [], preview.refusals
    placed = await preview_and_place(deriv, order, "fut-order-01")
    assert placed.sent is True
    assert len(sent_orders(sim)) == 1


async def test_option_multiplier_refused_by_the_notional_limit(settings_for: Any, sim: Any) -> None:
    from ibkr_mcp.errors import GateRefusedError
    from ibkr_mcp.runtime import open_runtime

    settings = settings_for(sim.port, ORDERS_ENABLED=True, ALLOWED_SEC_TYPES="STK,OPT")
    async with open_runtime(settings, wait_connected=5.0) as svc:
        chain = await _chain(svc)
        leg = {"symbol": "AAPL", "sec_type": "OPT", "expiry": chain.expirations[0],
               "strike": str(chain.strikes[len(chain.strikes) // 2]), "right": "C"}  # fmt: skip
        quote = await call(svc, "get_quote", leg)
        # quantity × ask is far below MAX_ORDER_NOTIONAL (50,000); × the multiplier 100 above.
        quantity = int(60_000 / (quote.ask * 100)) + 1
        assert quantity * quote.ask < 50_000 and quantity <= 1000
        order = {**leg, "side": "BUY", "quantity": quantity, "order_type": "LMT",
                 "limit_price": str(quote.ask)}  # fmt: skip
        preview = await call(svc, "preview_order", order)
        assert [r.gate for r in preview.refusals] == ["notional"]
        assert "multiplier 100" in preview.refusals[0].reason
        with pytest.raises(GateRefusedError):
            await preview_and_place(svc, order, "opt-notional-1")
    assert sent_orders(sim) == []
