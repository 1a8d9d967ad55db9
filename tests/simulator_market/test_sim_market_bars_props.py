from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ibkr_mcp.simulator.catalogue import DEFAULT_CATALOGUE
from ibkr_mcp.simulator.clock import FixedClock
from ibkr_mcp.simulator.market import MarketModel

ET = ZoneInfo("America/New_York")
INSTRUMENTS = DEFAULT_CATALOGUE.all()
MODEL = MarketModel(DEFAULT_CATALOGUE, seed=11, clock=FixedClock(datetime(2031, 1, 1, tzinfo=UTC)))
REQUESTS = [
    ("1800 S", "5 secs"),
    ("4 D", "1 min"),
    ("2 D", "15 mins"),
    ("1 W", "1 hour"),
    ("2 W", "4 hours"),
    ("1 M", "1 day"),
    ("3 M", "1 week"),
]


@settings(max_examples=60, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(INSTRUMENTS) - 1),
    end=st.datetimes(
        min_value=datetime(2021, 1, 1),  # noqa: DTZ001
        max_value=datetime(2030, 12, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    request=st.sampled_from(REQUESTS),
    what=st.sampled_from(["TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK"]),
    use_rth=st.booleans(),
)
def test_bar_invariants_anywhere(
    index: int, end: datetime, request: tuple[str, str], what: str, use_rth: bool
) -> None:
    inst = INSTRUMENTS[index]
    if inst.sec_type == "CASH" and what == "TRADES":
        what = "MIDPOINT"
    duration, bar_size = request
    bars = MODEL.bars(
        inst, end=end, duration=duration, bar_size=bar_size, what_to_show=what, use_rth=use_rth
    )
    grid = inst.min_tick / 2 if what == "MIDPOINT" else inst.min_tick
    # Forex trade dates open the evening before, so a daily/weekly bar's date stamp (UTC
    # midnight of the trade date) may lie up to a day after the start of its data.
    long_bars = bar_size in ("1 day", "1 week")
    slack = timedelta(days=1) if inst.sec_type == "CASH" and long_bars else timedelta(0)
    for bar in bars:
        assert bar.time - slack < end
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert bar.low > 0
        assert all(p % grid == 0 for p in (bar.open, bar.high, bar.low, bar.close))
        if what == "TRADES":
            assert bar.volume > 0 and bar.count > 0 and bar.low <= bar.wap <= bar.high
        else:
            assert bar.volume == -1
        if inst.sec_type == "STK" and bar_size not in ("1 day", "1 week"):
            local = bar.time.astimezone(ET)
            assert local.weekday() < 5
            if use_rth:
                assert (9, 30) <= (local.hour, local.minute) < (16, 0)
            else:
                assert 4 <= local.hour < 20
    times = [b.time for b in bars]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_bars_across_the_dst_change() -> None:
    # 2026-11-01 02:00 ET clocks fall back; sessions before and after keep their wall times.
    end = datetime(2026, 11, 4, 21, 0, tzinfo=ET)
    aapl = DEFAULT_CATALOGUE.find("AAPL")[0]
    model = MarketModel(DEFAULT_CATALOGUE, seed=1, clock=FixedClock(end))
    bars = model.bars(aapl, end=end, duration="1 W", bar_size="1 hour", use_rth=True)
    starts = {b.time.astimezone(ET).strftime("%a %H:%M") for b in bars}
    assert {"Fri 09:30", "Mon 09:30", "Mon 15:00", "Wed 15:00"} <= starts
    assert all(b.time.astimezone(ET).minute in (0, 30) for b in bars)
    eur = DEFAULT_CATALOGUE.find("EUR.USD")[0]
    sunday = model.bars(eur, end=end, duration="1 W", bar_size="1 hour", what_to_show="MIDPOINT")
    firsts = [b for b in sunday if b.time.astimezone(ET).weekday() == 6]
    assert firsts and firsts[0].time.astimezone(ET).strftime("%H:%M") == "17:15"
    assert model.quote_at(aapl, end - timedelta(days=3)).close > 0
