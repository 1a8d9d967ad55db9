from datetime import UTC, datetime, timedelta, timezone

import pytest

from ibkr_mcp.simulator.clock import Clock, FixedClock, ManualClock, SystemClock

START = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def test_system_clock_is_aware_utc_and_current() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(UTC)


def test_fixed_clock_returns_its_instant_in_utc() -> None:
    eastern = timezone(timedelta(hours=-5))
    clock = FixedClock(datetime(2026, 11, 25, 10, 0, tzinfo=eastern))
    assert clock.now() == START
    assert clock.now().utcoffset() == timedelta(0)
    assert clock.now() == clock.now()


def test_fixed_and_manual_clocks_reject_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))  # noqa: DTZ001
    clock = ManualClock(START)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2026, 1, 1))  # noqa: DTZ001


def test_manual_clock_advances_and_jumps() -> None:
    clock = ManualClock(START)
    clock.advance(1.5)
    assert clock.now() == START + timedelta(seconds=1.5)
    clock.set(START - timedelta(days=1))
    assert clock.now() == START - timedelta(days=1)
    with pytest.raises(ValueError, match="negative"):
        clock.advance(-1)


def test_clocks_satisfy_the_protocol() -> None:
    for clock in (SystemClock(), FixedClock(START), ManualClock(START)):
        assert isinstance(clock, Clock)
