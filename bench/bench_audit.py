"""Audit append throughput and latency: AuditLog vs raw sqlite3 inserts, FULL vs NORMAL.

Run: ``.venv/bin/python bench/bench_audit.py [--n 2000] [--dir /path/on/the/real/disk]``.
Each append is its own transaction (that is what the audit does). Prints a table; asserts
nothing. The directory matters: fsync cost depends on the disk (tmpfs makes FULL look free).
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000, help="appends per measurement")
    parser.add_argument("--dir", type=Path, default=Path("."), help="where to put the files")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.dir))
