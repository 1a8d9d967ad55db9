"""Catalogue tables: stocks/ETFs, indices, futures months and option chains as data."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from ibkr_mcp.simulator._options_pricing import black_scholes, implied_vol, surface
from ibkr_mcp.simulator.catalogue import DEFAULT_CATALOGUE as CAT
from ibkr_mcp.simulator.catalogue import SYNTHETIC_BASE
from ibkr_mcp.simulator.clock import FixedClock
from ibkr_mcp.simulator.contracts import by_con_id, resolve
from ibkr_mcp.simulator.derivatives import book_for
from ibkr_mcp.simulator.incoming import ContractSpec
from ibkr_mcp.simulator.market import MarketModel

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
BOOK = book_for(CAT)
MARKET = MarketModel(CAT, seed=42, clock=FixedClock(T0))

SP100 = tuple(
    [
        "AAPL",
        "ABBV",
        "ABT",
        "ACN",
        "ADBE",
        "AIG",
        "AMD",
        "AMGN",
        "AMT",
        "AMZN",
        "AVGO",
        "AXP",
        "BA",
        "BAC",
        "BK",
        "BKNG",
        "BLK",
        "BMY",
        "BRK_B",
        "C",
        "CAT",
        "CHTR",
        "CL",
        "CMCSA",
        "COF",
        "COP",
        "COST",
        "CRM",
        "CSCO",
        "CVS",
        "CVX",
        "DE",
        "DHR",
        "DIS",
        "DUK",
        "EMR",
        "F",
        "FDX",
        "GD",
        "GE",
        "GILD",
        "GM",
        "GOOG",
        "GOOGL",
        "GS",
        "HD",
        "HON",
        "IBM",
        "INTC",
        "INTU",
        "ISRG",
        "JNJ",
        "JPM",
        "KO",
        "LIN",
        "LLY",
        "LMT",
        "LOW",
        "MA",
        "MCD",
        "MDLZ",
        "MDT",
        "MET",
        "META",
        "MMM",
        "MO",
        "MRK",
        "MS",
        "MSFT",
        "NEE",
        "NFLX",
        "NKE",
        "NOW",
        "NVDA",
        "ORCL",
        "PEP",
        "PFE",
        "PG",
        "PLTR",
        "PM",
        "PYPL",
        "QCOM",
        "RTX",
        "SBUX",
        "SCHW",
        "SO",
        "SPG",
        "T",
        "TGT",
        "TMO",
        "TMUS",
        "TSLA",
        "TXN",
        "UBER",
        "UNH",
        "UNP",
        "UPS",
        "USB",
        "V",
        "VZ",
        "WFC",
        "WMT",
        "XOM",
    ]
)
SP100 = tuple("BRK B" if s == "BRK_B" else s for s in SP100)
ETFS = ("SPY", "QQQ", "IWM", "DIA", "GLD", "SLV", "TLT", "HYG", "XLF", "XLE", "XLK", "XLV",
        "EEM", "EFA", "VXX")  # fmt: skip


@pytest.mark.parametrize("symbol", SP100)
def test_every_sp100_member_is_a_stock_with_details(symbol: str) -> None:
    [inst] = CAT.find(symbol, sec_type="STK", currency="USD", exchange="SMART")
    assert inst.primary_exchange in ("NYSE", "NASDAQ")
    assert inst.min_tick == Decimal("0.01") and inst.long_name and inst.stock_type == "COMMON"
    assert inst.multiplier == 1


@pytest.mark.parametrize("symbol", ETFS)
def test_common_etfs(symbol: str) -> None:
    [inst] = CAT.find(symbol, sec_type="STK")
    assert inst.stock_type == "ETF" and inst.primary_exchange in ("ARCA", "NASDAQ", "CBOE")


def test_con_ids_are_real_where_recorded_and_synthetic_elsewhere() -> None:
    stocks = [i for i in CAT.all() if i.sec_type == "STK"]
    assert len(stocks) >= len(SP100) + len(ETFS)
    real = {i.symbol: i.con_id for i in stocks if i.real_con_id}
    assert real["AAPL"] == 265598 and real["SPY"] == 756733 and real["IBM"] == 8314
    for inst in stocks:
        synthetic = SYNTHETIC_BASE <= inst.con_id < SYNTHETIC_BASE + 90_000_000
        assert synthetic != inst.real_con_id, inst.symbol
    assert not CAT.find("CVX")[0].real_con_id


@pytest.mark.parametrize(
    ("symbol", "exchange", "con_id"),
    [("SPX", "CBOE", 416904), ("NDX", "NASDAQ", 416843), ("RUT", "RUSSELL", 416888),
     ("VIX", "CBOE", 13455763), ("DJX", "CBOE", None)],
)  # fmt: skip
def test_indices_resolve_with_or_without_currency(
    symbol: str, exchange: str, con_id: int | None
) -> None:
    with_ccy = resolve(CAT, ContractSpec(symbol=symbol, sec_type="IND", exchange=exchange,
                                         currency="USD"), MARKET)  # fmt: skip
    without = resolve(CAT, ContractSpec(symbol=symbol, sec_type="IND", exchange=exchange), MARKET)
    assert with_ccy == without and len(without) == 1
    inst = without[0]
    assert inst.sec_type == "IND" and inst.order_types == ""
    assert con_id is None or inst.con_id == con_id


@pytest.mark.parametrize(
    ("symbol", "local", "last", "multiplier", "exchange", "trading_class"),
    [("ES", "ESZ6", "20261218", "50", "CME", "ES"),
     ("MES", "MESZ6", "20261218", "5", "CME", "MES"),
     ("NQ", "NQZ6", "20261218", "20", "CME", "NQ"),
     ("MNQ", "MNQZ6", "20261218", "2", "CME", "MNQ"),
     ("YM", "YMZ6", "20261218", "5", "CBOT", "YM"),
     ("RTY", "RTYZ6", "20261218", "50", "CME", "RTY"),
     ("CL", "CLF7", "20261222", "1000", "NYMEX", "CL"),
     ("NG", "NGZ6", "20261126", "10000", "NYMEX", "NG"),
     ("GC", "GCZ6", "20261229", "100", "COMEX", "GC"),
     ("SI", "SIZ6", "20261229", "5000", "COMEX", "SI"),
     ("ZN", "ZNZ6", "20261222", "1000", "CBOT", "ZN"),
     ("ZB", "ZBZ6", "20261222", "1000", "CBOT", "ZB"),
     ("EUR", "6EZ6", "20261214", "125000", "CME", "6E")],
)  # fmt: skip
def test_futures_front_months(
    symbol: str, local: str, last: str, multiplier: str, exchange: str, trading_class: str
) -> None:
    [front] = resolve(CAT, ContractSpec(symbol=symbol, sec_type="CONTFUT"), MARKET)
    assert (front.local_symbol, front.last_trade, front.wire_multiplier) == (
        local,
        last,
        multiplier,
    )
    month = {"CL": "202701", "NG": "202612"}.get(symbol, last[:6])
    assert (front.exchange, front.trading_class, front.contract_month) == (
        exchange,
        trading_class,
        month,
    )
    assert by_con_id(CAT, front.con_id) == front
    listed = resolve(CAT, ContractSpec(symbol=symbol, sec_type="FUT", exchange=exchange), MARKET)
    assert listed[0] == front and len(listed) >= 3
    assert len({i.con_id for i in listed}) == len(listed)


def test_expired_future_months_do_not_resolve_but_live_ones_do() -> None:
    assert (
        resolve(CAT, ContractSpec(symbol="ES", sec_type="FUT", last_trade="202609"), MARKET) == []
    )
    [dec] = resolve(CAT, ContractSpec(symbol="ES", sec_type="FUT", last_trade="202612"), MARKET)
    sep = BOOK.future(BOOK.future_root("ES"), 2026, 9)  # type: ignore[arg-type]
    assert resolve(CAT, ContractSpec(con_id=sep.con_id), MARKET) == []
    assert resolve(CAT, ContractSpec(con_id=dec.con_id, sec_type="FUT"), MARKET) == [dec]
    assert resolve(CAT, ContractSpec(symbol="6E", sec_type="FUT", local_symbol="6EZ6"), MARKET)


def test_option_expiries_weeklies_then_monthlies_for_more_than_a_year() -> None:
    [aapl] = CAT.find("AAPL")
    [root] = BOOK.option_roots(aapl)
    days = BOOK.expiries(root, T0)
    fridays = [d for d in days if d.weekday() == 4]
    assert days == fridays and days[0] == date(2026, 11, 27)
    assert all((b - a).days == 7 for a, b in itertools.pairwise(days[:8]))
    assert (days[-1] - days[0]).days > 365
    assert all(15 <= d.day <= 21 for d in days[8:])  # third Fridays


def test_spx_has_am_monthly_and_pm_weekly_classes() -> None:
    [spx] = CAT.find("SPX", sec_type="IND")
    roots = {r.trading_class: r for r in BOOK.option_roots(spx)}
    assert set(roots) == {"SPX", "SPXW"}
    monthly = BOOK.expiries(roots["SPX"], T0)
    weekly = BOOK.expiries(roots["SPXW"], T0)
    assert all(15 <= d.day <= 21 for d in monthly) and date(2026, 11, 27) in weekly
    assert date(2026, 11, 27) not in monthly


def test_option_contracts_round_trip_their_con_ids_and_sit_on_the_grid() -> None:
    spec = ContractSpec(symbol="SPY", sec_type="OPT", last_trade="20261218", right="P")
    puts = resolve(CAT, spec, MARKET)
    assert len(puts) > 20 and all(p.right == "P" and p.multiplier == 100 for p in puts)
    spot = MARKET.reference_price(CAT.find("SPY")[0], T0)
    strikes = [p.strike for p in puts]
    assert min(strikes) < spot < max(strikes)
    assert all(s % 5 == 0 for s in strikes)  # SPY trades above $250: the $5 grid
    for p in puts[::7]:
        assert by_con_id(CAT, p.con_id) == p
        assert p.local_symbol == f"SPY   261218P{int(p.strike * 1000):08d}"


def test_black_scholes_put_call_parity_and_implied_vol() -> None:
    s, k, t, v, r, q = 100.0, 95.0, 0.5, 0.3, 0.04, 0.01
    call = black_scholes(s, k, t, v, r, q, True)
    put = black_scholes(s, k, t, v, r, q, False)
    assert math.isclose(call.price - put.price, s * math.exp(-q * t) - k * math.exp(-r * t),
                        rel_tol=1e-9)  # fmt: skip
    assert 0 < call.delta < 1 and -1 < put.delta < 0 and call.gamma > 0 and call.theta < 0
    assert implied_vol(call.price, s, k, t, r, q, True) == pytest.approx(v, abs=1e-5)


def test_volatility_surface_has_skew_and_term_structure_and_follows_the_seed() -> None:
    surf = surface(42, 416904, 0.16, True)
    assert surf.vol(6000, 6800, 0.1) > surf.vol(6800, 6800, 0.1) > surf.vol(7200, 6800, 0.1)
    assert surf.atm(0.02) != surf.atm(1.0)
    assert surface(42, 416904, 0.16, True) == surf != surface(43, 416904, 0.16, True)


@pytest.mark.parametrize(
    ("et_hour", "minute", "future_open", "index_open", "stock_open"),
    [(3, 0, True, False, False), (8, 0, True, False, True), (10, 0, True, True, True),
     (17, 30, False, False, True), (19, 0, True, False, True)],
)  # fmt: skip
def test_futures_trade_globex_hours_and_indices_regular_hours(
    et_hour: int, minute: int, future_open: bool, index_open: bool, stock_open: bool
) -> None:
    from zoneinfo import ZoneInfo

    at = datetime(2026, 11, 25, et_hour, minute, tzinfo=ZoneInfo("America/New_York"))
    hours = MarketModel(CAT, seed=42, clock=FixedClock(at), trading_hours=True)
    [es] = resolve(CAT, ContractSpec(symbol="ES", sec_type="CONTFUT"), MARKET)
    assert hours.is_open(es, at) is future_open
    assert hours.is_open(CAT.find("SPX")[0], at) is index_open
    assert hours.is_open(CAT.find("AAPL")[0], at) is stock_open
    assert es.time_zone_id == "US/Central"  # CME: hours in Chicago time
    assert es.trading_hours(at.date()).startswith("20261124:1700-20261125:1600;")
    assert es.liquid_hours(at.date()).startswith("20261125:0830-20261125:1500;")
