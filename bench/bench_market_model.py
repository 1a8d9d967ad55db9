"""Micro-benchmark of the simulator market model: quote() and bars() timings (no assertions).

Run: .venv/bin/python bench/bench_market_model.py
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ibkr_mcp.simulator.catalogue import DEFAULT_CATALOGUE, Instrument
from ibkr_mcp.simulator.clock import FixedClock, ManualClock
from ibkr_mcp.simulator.market import MarketModel

ET = ZoneInfo("America/New_York")
START = datetime(2026, 11, 25, 10, 0, tzinfo=ET)
AFTER_CLOSE = datetime(2026, 11, 25, 21, 0, tzinfo=ET)


def _timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _report(name: str, samples: list[float], unit: float, label: str) -> None:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) / unit
    p95 = ordered[int(len(ordered) * 0.95) - 1] / unit
    print(f"{name:<46} p50 {p50:9.2f} {label}   p95 {p95:9.2f} {label}   n={len(samples)}")


def bench_quotes() -> None:
    clock = ManualClock(START)
    model = MarketModel(DEFAULT_CATALOGUE, seed=42, clock=clock)
    aapl = DEFAULT_CATALOGUE.find("AAPL")[0]
    eur = DEFAULT_CATALOGUE.find("EUR.USD")[0]
    model.quote(aapl)  # first call builds the session's caches
    model.quote(eur)

    def live() -> None:
        clock.advance(0.25)
        model.quote(aapl)

    _report("quote() AAPL, live clock (+250 ms a call)", _timed(live, 20_000), 1e-6, "us")
    _report("quote() EUR.USD, same instant", _timed(lambda: model.quote(eur), 20_000), 1e-6, "us")
    _report("mid_at() AAPL", _timed(lambda: model.mid_at(aapl, clock.now()), 20_000), 1e-6, "us")
    everything = DEFAULT_CATALOGUE.all()

    def sweep() -> None:
        clock.advance(1)
        for inst in everything:
            model.quote(inst)

    _report(f"quote() x{len(everything)} instruments", _timed(sweep, 200), 1e-3, "ms")


def _count_bars(model: MarketModel, inst: Instrument, **kwargs: Any) -> int:
    return len(model.bars(inst, **kwargs))


def bench_bars() -> None:
    aapl = DEFAULT_CATALOGUE.find("AAPL")[0]
    eur = DEFAULT_CATALOGUE.find("EUR.USD")[0]
    cases = [
        (aapl, "1 D", "1 min", "TRADES", False),
        (aapl, "1 D", "1 min", "TRADES", True),
        (aapl, "3600 S", "5 secs", "TRADES", False),
        (aapl, "1 W", "1 hour", "TRADES", False),
        (aapl, "1 Y", "1 day", "TRADES", False),
        (eur, "1 D", "1 min", "MIDPOINT", False),
        (eur, "1 D", "1 min", "BID_ASK", False),
    ]
    midday = datetime(2026, 11, 25, 15, 0, tzinfo=ET)
    for inst, duration, bar_size, what, rth in cases:
        # Second-based durations count calendar time, so end those inside the session.
        end = midday if duration.endswith("S") else AFTER_CLOSE
        cold: list[float] = []
        warm: list[float] = []
        count = 0
        for seed in range(5):
            model = MarketModel(DEFAULT_CATALOGUE, seed=seed, clock=FixedClock(AFTER_CLOSE))

            run = functools.partial(
                _count_bars,
                model,
                inst,
                end=end,
                duration=duration,
                bar_size=bar_size,
                what_to_show=what,
                use_rth=rth,
            )
            t0 = time.perf_counter()
            count = run()
            cold.append(time.perf_counter() - t0)
            warm.extend(_timed(run, 3))
        name = f"bars() {inst.local_symbol} {duration}/{bar_size} {what}{' RTH' if rth else ''}"
        _report(f"{name} cold ({count} bars)", cold, 1e-3, "ms")
        _report(f"{name} warm", warm, 1e-3, "ms")


if __name__ == "__main__":
    bench_quotes()
    bench_bars()
