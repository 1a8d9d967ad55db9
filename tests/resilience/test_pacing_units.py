"""Pure units: IB's historical pacing plan and the market-data limiter, on an injected clock."""

from __future__ import annotations

from typing import Any

import pytest

from ibkr_mcp.errors import OverloadedError
from ibkr_mcp.gateway import pacing
from ibkr_mcp.gateway.bar_params import bar_seconds
from ibkr_mcp.gateway.load import MarketDataLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_identical_small_request_waits_15_seconds() -> None:
    clock = Clock()
    pacer = pacing.HistoricalPacer(clock=clock)
    assert pacer.plan("k", "s", small=True) == 0
    pacer.reserve("k", "s", small=True, wait=0)
    clock.now += 4
    assert pacer.plan("k", "s", small=True) == pytest.approx(11)
    clock.now += 11
    assert pacer.plan("k", "s", small=True) == 0


def test_sixth_request_for_one_series_in_two_seconds_waits() -> None:
    clock = Clock()
    pacer = pacing.HistoricalPacer(clock=clock)
    for i in range(5):
        assert pacer.plan(i, "AAPL/TRADES", small=True) == 0
        pacer.reserve(i, "AAPL/TRADES", small=True, wait=0)
        clock.now += 0.1
    assert pacer.plan(5, "AAPL/TRADES", small=True) == pytest.approx(1.5)
    assert pacer.plan(5, "MSFT/TRADES", small=True) == 0  # another contract is unaffected


def test_sixty_per_ten_minutes() -> None:
    clock = Clock()
    pacer = pacing.HistoricalPacer(clock=clock)
    for i in range(60):
        pacer.reserve(i, i, small=True, wait=0)
        clock.now += 1
    assert pacer.plan("61st", "x", small=True) == pytest.approx(600 - 60)


def test_large_bars_are_not_paced() -> None:
    clock = Clock()
    pacer = pacing.HistoricalPacer(clock=clock)
    for _ in range(100):
        assert pacer.plan("same", "s", small=False) == 0
        pacer.reserve("same", "s", small=False, wait=0)


def test_bar_seconds() -> None:
    assert (bar_seconds("30 secs"), bar_seconds("1 min"), bar_seconds("1 day")) == (30, 60, 86400)
    assert bar_seconds("1 week") is None


def test_limiter_sheds_at_once_with_retry_after() -> None:
    clock = Clock()
    limiter = MarketDataLimiter(rate=10, max_inflight=5, clock=clock)
    limiter.waiting = 100  # 100 ahead at 10 per second: ~10 s, over a 2 s timeout
    with pytest.raises(OverloadedError) as info:
        limiter.admit(2.0, "quote for AAPL")
    assert info.value.details["retry_after_seconds"] >= 9
    assert limiter.shed == 1
    limiter.waiting = 3
    limiter.admit(2.0, "quote for AAPL")  # a short queue is admitted


async def test_limiter_keeps_the_message_rate() -> None:
    clock = Clock()
    limiter = MarketDataLimiter(rate=3, max_inflight=10, clock=clock)
    for _ in range(3):
        async with limiter.slot(10, "q"):
            pass
    assert limiter.estimate_wait() == pytest.approx(1 / 3)  # the window is full
    clock.now += 1.01
    assert limiter.estimate_wait() == 0


async def test_limiter_caps_market_data_calls_in_the_process() -> None:
    from ibkr_mcp.gateway.load import market_data_call

    limiter = MarketDataLimiter(rate=40, max_inflight=50, max_calls=2, clock=Clock())
    with market_data_call():
        async with limiter.caller(10, "q"), limiter.caller(10, "q"):
            with pytest.raises(OverloadedError):
                async with limiter.caller(10, "q"):
                    pass
        async with limiter.caller(10, "q"):  # room again once they finish
            pass
    # An urgent (non-market-data) caller is never counted or refused.
    limiter.callers = 5
    async with limiter.caller(10, "order's quote"):
        pass


def test_liveness_setting_accepts_any_value_from_one(tmp_path: Any) -> None:
    from ibkr_mcp.config import SettingsError, load_settings

    for ok in (1, 1.5, 86_400 * 7):
        assert load_settings(_env_file=None, IBKR_LIVENESS_SECONDS=ok).IBKR_LIVENESS_SECONDS == ok
    for bad in (0.5, 0, -1, float("inf")):
        with pytest.raises(SettingsError):
            load_settings(_env_file=None, IBKR_LIVENESS_SECONDS=bad)
