"""Audit append throughput and latency: AuditLog vs raw sqlite3 inserts, FULL vs NORMAL.

Run: ``.venv/bin/python bench/bench_audit.py [--n 2000] [--dir /path/on/the/real/disk]``.
The first table awaits each append before the next (one row per transaction: nothing to group).
The second has 50 concurrent callers appending (a loaded server: every HTTP call writes a
tool_call row, every order several order rows), which the writer groups into one transaction per
batch; the baseline is raw sqlite3 with one transaction per row. Prints tables and records the
concurrent figures; asserts nothing. The directory matters: fsync cost depends on the disk
(tmpfs makes FULL look free).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from _results import record

from ibkr_mcp.audit import AuditLog
from ibkr_mcp.audit._codec import utc_now
from ibkr_mcp.audit._store import Writer


@dataclass
class Result:
    name: str
    mode: str
    n: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


async def _time_async(
    name: str, mode: str, n: int, op: Callable[[int], Awaitable[object]]
) -> Result:
    lat: list[float] = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        await op(i)
        lat.append(time.perf_counter() - t)
    return Result(name, mode, n, time.perf_counter() - start, lat)


def _raw_baseline(path: Path, mode: str, n: int, order_row: bool) -> Result:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={mode}")
    conn.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, ts TEXT, a TEXT, b TEXT, c TEXT, d TEXT, e TEXT)"
    )
    lat: list[float] = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO t (ts, a, b, c, d, e) VALUES (?, ?, ?, ?, ?, ?)",
            (
                utc_now().isoformat(),
                f"c{i}",
                "AAPL" if order_row else "get_quote",
                "10",
                "ok",
                "{}",
            ),
        )
        conn.execute("COMMIT")
        lat.append(time.perf_counter() - t)
    seconds = time.perf_counter() - start
    conn.close()
    kind = "raw sqlite3 (order-like)" if order_row else "raw sqlite3 (event-like)"
    return Result(kind, mode, n, seconds, lat)


async def _bench_events(path: Path, mode: str, n: int) -> Result:
    log = AuditLog(path, events_synchronous="FULL" if mode == "FULL" else "NORMAL")
    await log.open()
    try:
        return await _time_async(
            "record_event",
            mode,
            n,
            lambda i: log.record_event(
                correlation_id=f"c{i}",
                kind="tool_call",
                tool="get_quote",
                surface="mcp",
                arguments={"symbol": "AAPL", "i": i},
                outcome="ok",
                duration_ms=1.5,
                safety={"orders_enabled": "false", "trading_mode": "paper"},
            ),
        )
    finally:
        await log.close()


async def _bench_orders(path: Path, mode: str, n: int) -> Result:
    log = AuditLog(path)
    if mode != "FULL":
        # Not offered by the public API on purpose (order rows are always FULL); measured only
        # to show what durability costs.
        log._writer = Writer(
            path,
            clock=utc_now,
            busy_timeout=5.0,
            events_synchronous="NORMAL",
            durable_synchronous="NORMAL",
        )
    await log.open()
    try:
        return await _time_async(
            "record_order_event",
            mode,
            n,
            lambda i: log.record_order_event(
                correlation_id=f"c{i}",
                event="intent",
                idempotency_key=f"k{i}",
                fingerprint="f" * 64,
                account="DU1234567",
                symbol="AAPL",
                con_id=265598,
                side="BUY",
                quantity=Decimal("10"),
                order_type="LMT",
                limit_price=Decimal("190.10"),
                tif="DAY",
                token_id="tok_0123456789abcdef",
            ),
        )
    finally:
        await log.close()


#: Concurrent callers in the second table (bench_http's client count).
CALLERS = 50


async def _bench_concurrent(path: Path, n: int, order_every: int) -> Result:
    """CALLERS tasks append n rows in all; every ``order_every``-th row is a (FULL) order row."""
    log = AuditLog(path)
    await log.open()
    lat: list[float] = []

    async def caller(c: int) -> None:
        for j in range(n // CALLERS):
            i = j * CALLERS + c
            t = time.perf_counter()
            if order_every and i % order_every == 0:
                await log.record_order_event(
                    correlation_id=f"c{i}", event="status", idempotency_key=f"k{c}",
                    order_id=i, status="Submitted", quantity=Decimal("10"),
                )  # fmt: skip
            else:
                await log.record_event(
                    correlation_id=f"c{i}", kind="tool_call", tool="get_quote", surface="http",
                    arguments={"symbol": "AAPL", "i": i}, outcome="ok", duration_ms=1.5,
                )  # fmt: skip
            lat.append(time.perf_counter() - t)

    try:
        start = time.perf_counter()
        await asyncio.gather(*(caller(c) for c in range(CALLERS)))
        seconds = time.perf_counter() - start
    finally:
        await log.close()
    name = f"{CALLERS} callers" + (f", 1/{order_every} order" if order_every else ", events")
    return Result(name, "mixed" if order_every else "NORMAL", len(lat), seconds, lat)


async def main(n: int, base: Path) -> None:
    results: list[tuple[Result, Result]] = []
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        d = Path(tmp)
        for mode in ("NORMAL", "FULL"):
            ev = await _bench_events(d / f"ev_{mode}.db", mode, n)
            results.append((ev, _raw_baseline(d / f"raw_ev_{mode}.db", mode, n, False)))
        for mode in ("FULL", "NORMAL"):
            od = await _bench_orders(d / f"od_{mode}.db", mode, n)
            results.append((od, _raw_baseline(d / f"raw_od_{mode}.db", mode, n, True)))
    header = (
        f"{'operation':<20} {'sync':<7} {'appends/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'raw/s':>10} {'raw p50':>8} {'vs raw':>7}"
    )
    print(f"audit append benchmark: n={n} per row, one transaction per append, dir={base}")
    print(header)
    print("-" * len(header))
    for audit, raw in results:
        default = (audit.name == "record_event" and audit.mode == "NORMAL") or (
            audit.name == "record_order_event" and audit.mode == "FULL"
        )
        print(
            f"{audit.name:<20} {audit.mode + ('*' if default else ''):<7} {audit.rate:>10.0f}"
            f" {audit.pct(0.5):>8.3f} {audit.pct(0.99):>8.3f} {raw.rate:>10.0f}"
            f" {raw.pct(0.5):>8.3f} {audit.rate / raw.rate:>6.0%}"
        )
    print("* = the mode AuditLog uses by default (order rows are always FULL).")
    print(
        "p50 of raw FULL vs NORMAL ≈ fsync cost: "
        f"{statistics.median(results[1][1].latencies) * 1e3:.3f} ms vs "
        f"{statistics.median(results[0][1].latencies) * 1e3:.3f} ms"
    )
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        d = Path(tmp)
        concurrent = [
            (await _bench_concurrent(d / "cc_ev.db", n, 0), results[0][1]),
            (await _bench_concurrent(d / "cc_mix.db", n, 8), results[1][1]),
        ]
    print()
    print(f"concurrent appends: {CALLERS} callers, n={n} rows in all, grouped commits")
    cols = f"{'appends/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'vs raw':>7}"
    print(f"{'callers':<24} {'sync':<7} {cols}")
    for audit, raw in concurrent:
        print(
            f"{audit.name:<24} {audit.mode:<7} {audit.rate:>10.0f} {audit.pct(0.5):>8.3f}"
            f" {audit.pct(0.99):>8.3f} {audit.rate / raw.rate:>6.0%}"
        )
        record(
            f"audit appends/s, {audit.name}",
            audit.rate,
            raw.rate,
            unit="appends/s",
            higher_is_better=True,
            baseline_name=f"raw sqlite3, one {raw.mode} transaction per row",
        )
    print("vs raw: against raw sqlite3 with one transaction per row (events: NORMAL; mixed: FULL)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000, help="appends per measurement")
    parser.add_argument("--dir", type=Path, default=Path("."), help="where to put the files")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.dir))
