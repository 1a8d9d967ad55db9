import re
from datetime import date
from decimal import Decimal

import pytest

from ibkr_mcp.simulator.catalogue import DEFAULT_CATALOGUE, Catalogue, Instrument

CAT = DEFAULT_CATALOGUE


def _one(symbol: str, **kw: str) -> Instrument:
    found = CAT.find(symbol, **kw)
    assert len(found) == 1, found
    return found[0]


def test_catalogue_size_and_unique_ids() -> None:
    stocks = [i for i in CAT.all() if i.sec_type == "STK"]
    fx = [i for i in CAT.all() if i.sec_type == "CASH"]
    assert 120 <= len(stocks) <= 200
    assert {i.local_symbol for i in fx} == {
        "EUR.USD", "GBP.USD", "USD.JPY", "AUD.USD", "USD.CAD", "USD.CHF",
    }  # fmt: skip
    assert len({i.con_id for i in CAT.all()}) == len(CAT.all())


@pytest.mark.parametrize(
    ("symbol", "con_id"),
    [("AAPL", 265598), ("MSFT", 272093), ("SPY", 756733), ("QQQ", 320227571), ("IWM", 9579970),
     ("AMZN", 3691937), ("TSLA", 76792991), ("NVDA", 4815747), ("GOOGL", 208813719),
     ("META", 107113386), ("IBM", 8314)],
)  # fmt: skip
def test_real_con_ids(symbol: str, con_id: int) -> None:
    inst = _one(symbol)
    assert inst.con_id == con_id
    assert CAT.by_con_id(con_id) is inst


def test_find_aapl_details() -> None:
    aapl = _one("AAPL", sec_type="STK", currency="USD", exchange="SMART")
    assert aapl.primary_exchange == "NASDAQ"
    assert aapl.exchange == "SMART"
    assert aapl.long_name == "APPLE INC"
    assert aapl.stock_type == "COMMON"
    assert aapl.min_tick == Decimal("0.01")
    assert aapl.time_zone_id == "US/Eastern"
    assert "LMT" in aapl.order_types.split(",") and "MKT" in aapl.order_types.split(",")
    assert aapl.valid_exchanges.startswith("SMART,")
    assert aapl.base_price > 0 and 0 < aapl.annual_volatility < 1
    assert aapl.avg_daily_volume > 1_000_000


def test_find_is_case_insensitive_and_smart_matches_every_stock() -> None:
    assert _one("spy").symbol == "SPY"
    for inst in CAT.all():
        if inst.sec_type == "STK":
            assert CAT.find(inst.symbol, exchange="SMART") == [inst]
            assert CAT.find(inst.symbol, primary_exchange=inst.primary_exchange) == [inst]


def test_find_filters() -> None:
    assert CAT.find("AAPL", sec_type="CASH") == []
    assert CAT.find("AAPL", currency="EUR") == []
    assert CAT.find("AAPL", exchange="IDEALPRO") == []
    assert CAT.find("AAPL", primary_exchange="NYSE") == []
    assert _one("AAPL", primary_exchange="ISLAND").symbol == "AAPL"
    assert _one("AAPL", exchange="ISLAND", sec_type="", currency="").symbol == "AAPL"


def test_find_forex_as_ib_async_sends_it() -> None:
    eur = _one("EUR", sec_type="CASH", currency="USD", exchange="IDEALPRO")
    assert eur.local_symbol == "EUR.USD"
    assert eur.currency == "USD"
    assert eur.exchange == eur.primary_exchange == "IDEALPRO"
    assert eur.stock_type == ""
    assert eur.min_tick == Decimal("0.00005")
    assert _one("EUR.USD") is eur
    assert _one("eurusd") is eur
    assert CAT.find("EUR", currency="JPY") == []
    assert CAT.find("EUR", exchange="SMART") == []
    jpy = _one("USD", currency="JPY")
    assert jpy.local_symbol == "USD.JPY" and jpy.min_tick == Decimal("0.005")
    assert len(CAT.find("USD", sec_type="CASH")) == 3


def test_unknown_symbol_gives_empty_list() -> None:
    assert CAT.find("NOPE") == []
    assert CAT.find("") == []
    assert CAT.by_con_id(1) is None


def test_etfs_are_stk_with_etf_stock_type() -> None:
    for symbol in ("SPY", "QQQ", "IWM", "DIA", "GLD", "TLT", "XLF"):
        inst = _one(symbol)
        assert inst.sec_type == "STK"
        assert inst.stock_type == "ETF"
    assert _one("SPY").primary_exchange == "ARCA"


def test_search_prefix_first_then_names() -> None:
    found = [i.symbol for i in CAT.search("APP")]
    assert "AAPL" in found  # "APPLE INC"
    assert CAT.search("AA")[0].symbol == "AAPL"
    ms = CAT.search("ms")
    assert [i.symbol for i in ms[:2]] == ["MS", "MSFT"]  # the exact symbol first
    assert [i.symbol for i in CAT.search("microsoft")] == ["MSFT"]
    assert CAT.search("zzzz") == []
    assert CAT.search("") == []
    assert len(CAT.search("A", limit=3)) == 3
    eur = CAT.search("EUR")
    assert eur[0].local_symbol == "EUR.USD"


def test_duplicate_con_ids_are_refused() -> None:
    aapl = _one("AAPL")
    with pytest.raises(ValueError, match="duplicate conId"):
        Catalogue([aapl, aapl])


_STK_ITEM = re.compile(r"^\d{8}:(CLOSED|\d{4}-\d{8}:\d{4})$")


def test_stock_trading_hours_strings() -> None:
    aapl = _one("AAPL")
    hours = aapl.trading_hours(date(2026, 11, 25))  # a Wednesday
    items = hours.split(";")
    assert len(items) == 7
    assert all(_STK_ITEM.match(item) for item in items)
    assert items[0] == "20261125:0400-20261125:2000"
    assert items[3] == "20261128:CLOSED" and items[4] == "20261129:CLOSED"
    assert items[5] == "20261130:0400-20261130:2000"
    liquid = aapl.liquid_hours(date(2026, 11, 25)).split(";")
    assert liquid[0] == "20261125:0930-20261125:1600"
    assert liquid[3] == "20261128:CLOSED"


def test_forex_trading_hours_strings() -> None:
    eur = _one("EUR.USD")
    items = eur.trading_hours(date(2026, 11, 25)).split(";")
    assert items[0] == "20261124:1715-20261125:1700"
    assert "20261128:CLOSED" in items
    assert "20261129:1715-20261130:1700" in items  # Monday's session opens on Sunday
    assert all(_STK_ITEM.match(item) for item in items)
    assert eur.liquid_hours(date(2026, 11, 25)) == eur.trading_hours(date(2026, 11, 25))


def test_hours_strings_parse_with_ib_async() -> None:
    from ib_async import ContractDetails

    aapl = _one("AAPL")
    details = ContractDetails(
        timeZoneId=aapl.time_zone_id,
        tradingHours=aapl.trading_hours(date(2026, 11, 25)),
        liquidHours=aapl.liquid_hours(date(2026, 11, 25)),
    )
    sessions = details.tradingSessions()
    assert len(sessions) == 5
    assert sessions[0].start.hour == 4 and sessions[0].end.hour == 20
    assert details.liquidSessions()[0].start.minute == 30
