import itertools
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibkr_mcp.simulator.catalogue import DEFAULT_CATALOGUE, Instrument
from ibkr_mcp.simulator.clock import FixedClock, ManualClock
from ibkr_mcp.simulator.market import MarketModel

ET = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 25, 14, 30, 15, tzinfo=ET)  # a Wednesday afternoon
INSTRUMENTS = DEFAULT_CATALOGUE.all()
AAPL = DEFAULT_CATALOGUE.find("AAPL")[0]
EUR = DEFAULT_CATALOGUE.find("EUR.USD")[0]
# One model shared by the property tests: caches must never change answers.
SHARED = MarketModel(DEFAULT_CATALOGUE, seed=7, clock=FixedClock(NOW))


def _model(seed: int = 42, at: datetime = NOW) -> MarketModel:
    return MarketModel(DEFAULT_CATALOGUE, seed=seed, clock=FixedClock(at))


def test_same_seed_same_clock_same_quotes() -> None:
    a, b = _model(), _model()
    for inst in INSTRUMENTS:
        assert a.quote(inst) == b.quote(inst)
        assert a.mid_at(inst, NOW) == b.mid_at(inst, NOW)


def test_different_seed_different_quotes() -> None:
    a, b = _model(1), _model(2)
    differing = sum(a.quote(i).last != b.quote(i).last for i in INSTRUMENTS)
    assert differing >= len(INSTRUMENTS) - 2


def test_quote_is_quote_at_clock_now() -> None:
    clock = ManualClock(NOW)
    model = MarketModel(DEFAULT_CATALOGUE, seed=42, clock=clock)
    for _ in range(5):
        clock.advance(7.25)
        assert model.quote(AAPL) == model.quote_at(AAPL, clock.now())
    assert model.clock is clock


def test_purity_order_of_calls_does_not_matter() -> None:
    rng = random.Random(3)
    times = [NOW + timedelta(seconds=rng.randrange(-40 * 86400, 86400)) for _ in range(60)]
    forward = _model()
    expected = {(t, i.con_id): forward.quote_at(i, t) for t in times for i in (AAPL, EUR)}
    backward = _model()
    backward.bars(AAPL, end=NOW, duration="1 M", bar_size="1 day")  # warm unrelated caches
    keys = list(expected)
    rng.shuffle(keys)
    for t, con_id in keys:
        inst = DEFAULT_CATALOGUE.by_con_id(con_id)
        assert inst is not None
        assert backward.quote_at(inst, t) == expected[(t, con_id)]


def test_quote_time_is_the_whole_second() -> None:
    tick = _model().quote_at(AAPL, NOW + timedelta(microseconds=900_000))
    assert tick.time == NOW.replace(microsecond=0).astimezone(UTC)
    assert tick.time.utcoffset() == timedelta(0)
    assert _model().quote_at(AAPL, NOW + timedelta(microseconds=900_000)) == _model().quote_at(
        AAPL, NOW
    )


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _model().quote_at(AAPL, datetime(2026, 1, 1))  # noqa: DTZ001


def test_prices_stay_realistic_across_years() -> None:
    model = _model()
    for year in (2000, 2015, 2026, 2040):
        for inst in (AAPL, EUR):
            last = model.quote_at(inst, datetime(year, 6, 3, 15, tzinfo=UTC)).last
            assert inst.base_price / 3 < last < inst.base_price * 3


def test_prices_move_second_to_second_but_not_wildly() -> None:
    model = _model()
    lasts = [model.quote_at(AAPL, NOW + timedelta(seconds=s)).last for s in range(600)]
    assert len(set(lasts)) > 20
    steps = [abs(b - a) for a, b in itertools.pairwise(lasts)]
    assert max(steps) < Decimal("0.5")


def test_stock_day_stats() -> None:
    model = _model()
    tick = model.quote(AAPL)
    assert tick.low <= tick.open <= tick.high
    assert tick.low <= tick.last <= tick.high
    later = model.quote_at(AAPL, NOW + timedelta(minutes=20))
    assert later.volume > tick.volume > 0
    assert later.high >= tick.high and later.low <= tick.low
    assert later.close == tick.close and later.open == tick.open


def test_forex_has_no_trades() -> None:
    tick = _model().quote(EUR)
    assert tick.volume == Decimal(-1)
    assert tick.last_size == 0
    assert tick.bid_size % 1_000_000 == 0 and tick.bid_size > 0


def test_is_open_follows_calendar_only_with_trading_hours() -> None:
    always = _model()
    hours = MarketModel(DEFAULT_CATALOGUE, seed=42, clock=FixedClock(NOW), trading_hours=True)
    saturday = datetime(2026, 11, 28, 12, tzinfo=ET)
    cases = [
        (AAPL, NOW, True),
        (AAPL, datetime(2026, 11, 25, 3, 59, tzinfo=ET), False),
        (AAPL, datetime(2026, 11, 25, 4, 0, tzinfo=ET), True),
        (AAPL, datetime(2026, 11, 25, 19, 59, 59, tzinfo=ET), True),
        (AAPL, datetime(2026, 11, 25, 20, 0, tzinfo=ET), False),
        (AAPL, saturday, False),
        (EUR, saturday, False),
        (EUR, datetime(2026, 11, 29, 17, 14, tzinfo=ET), False),
        (EUR, datetime(2026, 11, 29, 17, 15, tzinfo=ET), True),
        (EUR, datetime(2026, 11, 25, 17, 5, tzinfo=ET), False),  # daily break
        (EUR, datetime(2026, 11, 25, 3, 0, tzinfo=ET), True),
        (EUR, datetime(2026, 11, 27, 17, 0, tzinfo=ET), False),  # Friday close
    ]
    for inst, at, expected in cases:
        assert hours.is_open(inst, at) is expected, (inst.symbol, at)
        assert always.is_open(inst, at) is True


def _assert_tick_invariants(inst: Instrument, at: datetime) -> None:
    tick = SHARED.quote_at(inst, at)
    step = inst.min_tick
    assert tick.bid > 0 and tick.last > 0
    assert tick.bid < tick.ask
    assert 1 <= (tick.ask - tick.bid) / step <= 3
    for price in (tick.bid, tick.ask, tick.last, tick.open, tick.high, tick.low, tick.close):
        assert price > 0
        assert price % step == 0, (price, step)
    assert tick.bid <= tick.last <= tick.ask
    assert tick.low <= tick.last <= tick.high
    assert tick.low <= tick.open <= tick.high
    assert tick.time <= at < tick.time + timedelta(seconds=1)
    mid = SHARED.mid_at(inst, at)
    assert mid == (tick.bid + tick.ask) / 2
    if inst.sec_type == "STK":
        for size in (tick.bid_size, tick.ask_size, tick.last_size):
            assert size > 0 and size % 100 == 0
        assert tick.volume >= 0
    else:
        assert tick.volume == -1
    assert inst.base_price / 4 < tick.last < inst.base_price * 4


@settings(max_examples=250, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(INSTRUMENTS) - 1),
    at=st.datetimes(
        min_value=datetime(2020, 1, 1),  # noqa: DTZ001
        max_value=datetime(2030, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
)
def test_tick_grid_and_spread_invariants(index: int, at: datetime) -> None:
    _assert_tick_invariants(INSTRUMENTS[index], at)


@settings(max_examples=200, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(INSTRUMENTS) - 1),
    offset=st.integers(min_value=0, max_value=7 * 86400),
)
def test_tick_invariants_within_one_week(index: int, offset: int) -> None:
    # Dense times in one week hit session edges, weekends and anchor seconds.
    start = datetime(2026, 11, 22, 12, tzinfo=ET)
    _assert_tick_invariants(INSTRUMENTS[index], start + timedelta(seconds=offset))
