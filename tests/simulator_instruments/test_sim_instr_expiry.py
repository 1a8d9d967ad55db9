"""Expiry on the simulated clock, on the accounts directly: options and futures."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import ManualClock
from ibkr_mcp.simulator.contracts import resolve
from ibkr_mcp.simulator.expiry import expire_options
from ibkr_mcp.simulator.incoming import ContractSpec

T0 = datetime(2026, 12, 18, 15, 0, tzinfo=UTC)  # the December expiry day, 10:00 New York
ONE = Decimal(1)


def test_spx_cash_settles_puts_assign_stock_and_futures_settle_at_the_close() -> None:
    clock = ManualClock(T0)
    sim = Simulator(seed=3, clock=clock)
    acct = sim.account("DU1234567")
    market = sim.market
    [spx] = sim.catalogue.find("SPX", sec_type="IND")
    [spy] = sim.catalogue.find("SPY", sec_type="STK")
    spx_level = market.reference_price(spx, T0)
    spy_level = market.reference_price(spy, T0)
    [call] = resolve(sim.catalogue, ContractSpec(
        symbol="SPX", sec_type="OPT", last_trade="20261218", right="C", trading_class="SPXW",
        strike=float(5 * int(spx_level * Decimal("0.95") / 5))), market)  # fmt: skip
    [put] = resolve(sim.catalogue, ContractSpec(
        symbol="SPY", sec_type="OPT", last_trade="20261218", right="P",
        strike=float(5 * int(spy_level * Decimal("1.05") / 5))), market)  # fmt: skip
    [es] = resolve(sim.catalogue, ContractSpec(symbol="ES", sec_type="CONTFUT"), market)
    assert es.last_trade == "20261218"
    acct.apply_fill(call, Decimal(2), Decimal(1), Decimal(0), ONE)
    acct.apply_fill(put, Decimal(-1), Decimal(1), Decimal(0), ONE)
    entry = market.quote(es).last
    acct.apply_fill(es, Decimal(1), entry, Decimal(0), ONE)
    cash = acct.cash
    assert expire_options({"DU1234567": acct}, market, clock.now()) == []  # before the close
    clock.advance(6 * 3600 + 60)  # 16:01 New York
    changed: list[tuple[str, int]] = []
    done = expire_options(
        {"DU1234567": acct}, market, clock.now(), lambda a, c: changed.append((a, c))
    )
    by_id = {e.instrument.con_id: e for e in done}
    assert set(by_id) == {call.con_id, put.con_id, es.con_id}
    assert by_id[call.con_id].exercised and by_id[put.con_id].exercised
    assert all(acct.positions[c].quantity == 0 for c in by_id)
    # short put assigned: 100 SPY bought at the strike
    assert acct.positions[spy.con_id].quantity == 100
    assert acct.positions[spy.con_id].avg_cost == put.strike
    intrinsic = by_id[call.con_id].settlement
    settle = by_id[es.con_id].settlement
    # futures are marked to market: only the gain since entry moves cash
    expected = 2 * 100 * intrinsic + 50 * (settle - entry) - 100 * put.strike
    assert acct.cash - cash == expected
    assert (("DU1234567", spy.con_id) in changed) and len(changed) == 4
    assert expire_options({"DU1234567": acct}, market, clock.now()) == []  # only once
