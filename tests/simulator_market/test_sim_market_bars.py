import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from ibkr_mcp.simulator.catalogue import DEFAULT_CATALOGUE
from ibkr_mcp.simulator.clock import FixedClock
from ibkr_mcp.simulator.market import BarData, MarketDataRequestError, MarketModel

ET = ZoneInfo("America/New_York")
AFTER_CLOSE = datetime(2026, 11, 25, 21, 0, tzinfo=ET)  # Wednesday, after the stock session
AAPL = DEFAULT_CATALOGUE.find("AAPL")[0]
SPY = DEFAULT_CATALOGUE.find("SPY")[0]
EUR = DEFAULT_CATALOGUE.find("EUR.USD")[0]
JPY = DEFAULT_CATALOGUE.find("USD.JPY")[0]


def _model(at: datetime = AFTER_CLOSE, seed: int = 42) -> MarketModel:
    return MarketModel(DEFAULT_CATALOGUE, seed=seed, clock=FixedClock(at))


def _et(bar: BarData) -> datetime:
    return bar.time.astimezone(ET)


def _assert_ohlc(bars: list[BarData], step: Decimal, *, half_ticks: bool = False) -> None:
    grid = step / 2 if half_ticks else step
    for bar in bars:
        assert bar.time.utcoffset() == timedelta(0)
        assert bar.high >= max(bar.open, bar.close)
        assert bar.low <= min(bar.open, bar.close)
        assert bar.low > 0
        for price in (bar.open, bar.high, bar.low, bar.close):
            assert price % grid == 0
    times = [b.time for b in bars]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_one_day_of_minute_bars_covers_extended_hours() -> None:
    bars = _model().bars(AAPL, end=AFTER_CLOSE, duration="1 D", bar_size="1 min")
    assert len(bars) == 960
    assert _et(bars[0]).time().isoformat() == "04:00:00"
    assert _et(bars[-1]).time().isoformat() == "19:59:00"
    _assert_ohlc(bars, AAPL.min_tick)
    for bar in bars:
        assert bar.volume > 0 and bar.count > 0
        assert bar.low <= bar.wap <= bar.high


def test_rth_minute_bars() -> None:
    bars = _model().bars(AAPL, end=AFTER_CLOSE, duration="1 D", bar_size="1 min", use_rth=True)
    assert len(bars) == 390
    assert _et(bars[0]).time().isoformat() == "09:30:00"
    assert _et(bars[-1]).time().isoformat() == "15:59:00"


def test_rth_hour_bars_start_at_the_open() -> None:
    bars = _model().bars(AAPL, end=AFTER_CLOSE, duration="2 D", bar_size="1 hour", use_rth=True)
    first_day = [b for b in bars if _et(b).date() == date(2026, 11, 24)]
    assert [_et(b).strftime("%H:%M") for b in first_day] == [
        "09:30", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00",
    ]  # fmt: skip
    _assert_ohlc(bars, AAPL.min_tick)


def test_minute_bar_matches_quotes_second_by_second() -> None:
    model = _model()
    bars = model.bars(AAPL, end=AFTER_CLOSE, duration="1 D", bar_size="1 min")
    for bar in (bars[0], bars[100], bars[330], bars[719], bars[-1]):
        lasts = [model.quote_at(AAPL, bar.time + timedelta(seconds=s)).last for s in range(60)]
        assert bar.open == lasts[0]
        assert bar.close == lasts[-1]
        assert bar.high == max(lasts)
        assert bar.low == min(lasts)


def test_minute_bar_close_is_last_trade_at_end_of_minute() -> None:
    model = _model()
    bars = model.bars(AAPL, end=AFTER_CLOSE, duration="1 D", bar_size="1 min")
    for bar in bars[::37]:
        end = bar.time + timedelta(minutes=1) - timedelta(microseconds=1)
        assert model.quote_at(AAPL, end).last == bar.close


def test_small_bars_aggregate_to_minute_bars() -> None:
    model = _model()
    end = datetime(2026, 11, 25, 11, 0, tzinfo=ET)
    minutes = model.bars(AAPL, end=end, duration="1800 S", bar_size="1 min")
    fives = model.bars(AAPL, end=end, duration="1800 S", bar_size="5 secs")
    assert len(minutes) == 30 and len(fives) == 360
    for i, bar in enumerate(minutes):
        part = fives[12 * i : 12 * i + 12]
        assert part[0].time == bar.time
        assert part[0].open == bar.open and part[-1].close == bar.close
        assert max(p.high for p in part) == bar.high
        assert min(p.low for p in part) == bar.low
        assert sum(p.volume for p in part) == bar.volume


def test_volume_telescopes_to_the_quote_volume() -> None:
    model = _model()
    end = datetime(2026, 11, 25, 13, 0, tzinfo=ET)
    bars = model.bars(AAPL, end=end, duration="1 D", bar_size="1 min")
    assert sum(b.volume for b in bars) == model.quote_at(AAPL, end).volume
    day = model.bars(AAPL, end=AFTER_CLOSE, duration="1 D", bar_size="1 day")[0]
    total = sum(
        b.volume for b in model.bars(AAPL, end=AFTER_CLOSE, duration="1 D", bar_size="1 min")
    )
    assert day.volume == total == model.quote(AAPL).volume


def test_daily_bars_close_at_the_anchor_and_skip_weekends() -> None:
    model = _model()
    daily = model.bars(AAPL, end=AFTER_CLOSE, duration="1 M", bar_size="1 day")
    assert 20 <= len(daily) <= 23
    _assert_ohlc(daily, AAPL.min_tick)
    for bar in daily:
        assert bar.time.time().isoformat() == "00:00:00"
        assert bar.time.weekday() < 5
    # The close of day N is the previous close every quote of day N+1 reports...
    for prev, nxt in itertools.pairwise(daily):
        next_day = nxt.time.date()
        during = datetime(next_day.year, next_day.month, next_day.day, 11, tzinfo=ET)
        assert model.quote_at(AAPL, during).close == prev.close
    # ...and the close of the last regular-hours minute.
    rth = model.bars(AAPL, end=AFTER_CLOSE, duration="1 D", bar_size="1 min", use_rth=True)
    assert rth[-1].close == daily[-1].close
    assert (
        daily[-1].open
        == model.bars(AAPL, end=AFTER_CLOSE, duration="1 D", bar_size="1 min")[0].open
    )


def test_rth_daily_bars_open_at_930() -> None:
    model = _model()
    daily = model.bars(AAPL, end=AFTER_CLOSE, duration="5 D", bar_size="1 day", use_rth=True)
    assert len(daily) == 5
    rth = model.bars(AAPL, end=AFTER_CLOSE, duration="1 D", bar_size="1 min", use_rth=True)
    assert daily[-1].open == rth[0].open
    assert daily[-1].close == rth[-1].close
    assert daily[-1].high >= max(b.close for b in rth)


def test_no_intraday_stock_bars_on_weekends_and_d_counts_sessions() -> None:
    sunday = datetime(2026, 11, 29, 12, 0, tzinfo=ET)
    model = _model(sunday)
    bars = model.bars(AAPL, end=sunday, duration="1 W", bar_size="30 mins")
    assert bars and all(_et(b).weekday() < 5 for b in bars)
    one_day = model.bars(AAPL, end=sunday, duration="1 D", bar_size="1 hour")
    assert {_et(b).date() for b in one_day} == {date(2026, 11, 27)}  # Friday's session
    assert len(model.bars(AAPL, end=sunday, duration="3 D", bar_size="1 day")) == 3


def test_weekly_and_monthly_bars_aggregate_daily() -> None:
    model = _model()
    daily = model.bars(SPY, end=AFTER_CLOSE, duration="1 Y", bar_size="1 day")
    weekly = model.bars(SPY, end=AFTER_CLOSE, duration="1 Y", bar_size="1 week")
    monthly = model.bars(SPY, end=AFTER_CLOSE, duration="1 Y", bar_size="1 month")
    assert 255 <= len(daily) <= 263
    assert 52 <= len(weekly) <= 54
    assert 12 <= len(monthly) <= 13
    assert weekly[-1].close == daily[-1].close == monthly[-1].close
    assert weekly[0].open == daily[0].open == monthly[0].open
    assert max(b.high for b in weekly) == max(b.high for b in daily) == max(b.high for b in monthly)
    assert sum(b.volume for b in weekly) == sum(b.volume for b in daily)
    _assert_ohlc(weekly, SPY.min_tick)
    _assert_ohlc(monthly, SPY.min_tick)


@pytest.mark.parametrize("what", ["MIDPOINT", "BID", "ASK", "BID_ASK"])
@pytest.mark.parametrize("bar_size", ["5 secs", "1 min", "1 hour", "1 day"])
def test_non_trade_bars(what: str, bar_size: str) -> None:
    duration = "1 W" if bar_size == "1 day" else "3600 S" if bar_size == "5 secs" else "1 D"
    end = datetime(2026, 11, 25, 15, 0, tzinfo=ET)
    for inst in (AAPL, EUR):
        bars = _model().bars(inst, end=end, duration=duration, bar_size=bar_size, what_to_show=what)
        assert bars
        _assert_ohlc(bars, inst.min_tick, half_ticks=what == "MIDPOINT")
        for bar in bars:
            assert bar.volume == Decimal(-1) and bar.wap == Decimal(-1) and bar.count == -1


def test_bid_and_ask_minute_bars_match_quotes() -> None:
    model = _model()
    bids = model.bars(AAPL, end=AFTER_CLOSE, duration="1 D", bar_size="1 min", what_to_show="BID")
    asks = model.bars(AAPL, end=AFTER_CLOSE, duration="1 D", bar_size="1 min", what_to_show="ASK")
    mids = model.bars(
        AAPL, end=AFTER_CLOSE, duration="1 D", bar_size="1 min", what_to_show="MIDPOINT"
    )
    for i in (5, 400, 900):
        ticks = [model.quote_at(AAPL, bids[i].time + timedelta(seconds=s)) for s in range(60)]
        assert bids[i].high == max(t.bid for t in ticks)
        assert bids[i].low == min(t.bid for t in ticks)
        assert asks[i].close == ticks[-1].ask and asks[i].open == ticks[0].ask
        assert mids[i].close == (ticks[-1].bid + ticks[-1].ask) / 2


def test_adjusted_last_is_trades() -> None:
    model = _model()
    trades = model.bars(AAPL, end=AFTER_CLOSE, duration="1 D", bar_size="1 hour")
    adjusted = model.bars(
        AAPL, end=AFTER_CLOSE, duration="1 D", bar_size="1 hour", what_to_show="ADJUSTED_LAST"
    )
    assert trades == adjusted


def test_forex_refuses_trades_with_162() -> None:
    for what in ("TRADES", "ADJUSTED_LAST"):
        with pytest.raises(MarketDataRequestError) as info:
            _model().bars(EUR, end=AFTER_CLOSE, duration="1 D", bar_size="1 min", what_to_show=what)
        assert info.value.code == 162
        assert "No data of type TRADES is available for the exchange 'IDEALPRO'" in (
            info.value.message
        )


def test_forex_bars_follow_the_forex_calendar() -> None:
    sunday_night = datetime(2026, 11, 29, 20, 0, tzinfo=ET)
    model = _model(sunday_night)
    bars = model.bars(EUR, end=sunday_night, duration="1 W", bar_size="15 mins",
                      what_to_show="MIDPOINT")  # fmt: skip
    for bar in bars:
        local = _et(bar)
        assert local.weekday() != 5
        assert not (local.weekday() == 4 and local.hour >= 17)
        assert not (local.weekday() == 6 and (local.hour, local.minute) < (17, 15))
        assert not (local.hour == 17 and local.minute < 15)
    sunday = [b for b in bars if _et(b).date() == date(2026, 11, 29)]
    assert _et(sunday[0]).strftime("%H:%M") == "17:15"
    daily = model.bars(EUR, end=sunday_night, duration="1 W", bar_size="1 day",
                       what_to_show="MIDPOINT")  # fmt: skip
    # Monday 23rd opened on Sunday 22nd 17:15, before the week began at 20:00.
    assert [b.time.weekday() for b in daily] == [1, 2, 3, 4, 0]
    _assert_ohlc(bars, EUR.min_tick, half_ticks=True)
    jpy = model.bars(JPY, end=sunday_night, duration="1 D", bar_size="1 hour", what_to_show="BID")
    _assert_ohlc(jpy, JPY.min_tick)


@pytest.mark.parametrize(
    ("kwargs", "code", "text"),
    [
        ({"duration": "1 X", "bar_size": "1 min"}, 321, "'1 X'"),
        ({"duration": "1 D", "bar_size": "1 minute"}, 321, "'1 minute'"),
        ({"duration": "1 D", "bar_size": "1 min", "what_to_show": "VOLUME"},
         321, "Invalid what to show"),
        ({"duration": "1 Y", "bar_size": "1 secs"}, 162, "Time length exceed max."),
        ({"duration": "1 D", "bar_size": "5 secs"}, 162, "Time length exceed max."),
    ],
)  # fmt: skip
def test_bar_request_errors(kwargs: dict[str, str], code: int, text: str) -> None:
    with pytest.raises(MarketDataRequestError) as info:
        _model().bars(AAPL, end=AFTER_CLOSE, **kwargs)  # type: ignore[arg-type]
    assert info.value.code == code
    assert text in info.value.message


def test_largest_allowed_request_works() -> None:
    end = datetime(2026, 11, 25, 15, 0, tzinfo=ET)
    bars = _model().bars(AAPL, end=end, duration="10000 S", bar_size="1 secs")
    assert len(bars) == 10000
    _assert_ohlc(bars[:500], AAPL.min_tick)


def test_bars_stop_at_the_clock_and_last_bar_may_be_partial() -> None:
    now = datetime(2026, 11, 25, 10, 30, 20, tzinfo=ET)
    model = _model(now)
    bars = model.bars(AAPL, end=now + timedelta(hours=5), duration="1 D", bar_size="5 mins")
    assert _et(bars[-1]).strftime("%H:%M") == "10:30"
    assert bars[-1].close == model.quote_at(AAPL, now - timedelta(seconds=1)).last
    assert model.bars(AAPL, end=now, duration="1 D", bar_size="5 mins") == bars


def test_bars_are_deterministic_and_seed_dependent() -> None:
    a = _model().bars(AAPL, end=AFTER_CLOSE, duration="2 D", bar_size="5 mins")
    b = _model().bars(AAPL, end=AFTER_CLOSE, duration="2 D", bar_size="5 mins")
    c = _model(seed=43).bars(AAPL, end=AFTER_CLOSE, duration="2 D", bar_size="5 mins")
    assert a == b
    assert [x.close for x in a] != [x.close for x in c]


def test_bars_accept_any_aware_end() -> None:
    end_utc = AFTER_CLOSE.astimezone(UTC)
    assert _model().bars(AAPL, end=end_utc, duration="1 D", bar_size="1 hour") == _model().bars(
        AAPL, end=AFTER_CLOSE, duration="1 D", bar_size="1 hour"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        _model().bars(AAPL, end=datetime(2026, 1, 1), duration="1 D", bar_size="1 hour")  # noqa: DTZ001
