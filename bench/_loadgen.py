"""A lean closed-loop HTTP/1.1 load generator, run in its own process (``python _loadgen.py``).

Python HTTP clients (httpx, aiohttp) spend more CPU per request than a small FastAPI route:
run in the server's process, or just beside it on a 2-core machine, they make the latency tail
they are meant to measure. This one keeps ``CONNECTIONS`` keep-alive connections over raw
asyncio protocols, each sending its next GET as soon as the previous answer is complete
(closed loop), parses only the status line and ``Content-Length``, and times each request from
the write to the last byte. Requests answered during the warm-up are not counted.

Usage: ``python _loadgen.py HOST PORT CONNECTIONS WARMUP_S SECONDS MAX_REQUESTS PATH...``;
prints one JSON object: ``{"rps", "latencies" (seconds), "errors"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from itertools import count


class _Conn(asyncio.Protocol):
    """One keep-alive connection; requests cycle through ``paths`` (shared counter)."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.started = 0.0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.send()

    def send(self) -> None:
        request = self.run.next_request()
        if request is None or self.transport is None:
            if self.transport is not None:
                self.transport.close()
            return
        self.started = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(self.buf[:head_end]).lower()
            start = head.find(b"content-length:")
            if start < 0:
                raise SystemExit("response without Content-Length")
            end = head.find(b"\r\n", start)
            length = int(head[start + 15 : end if end >= 0 else None])
            total = head_end + 4 + length
            if len(self.buf) < total:
                return
            status = int(head[9:12])
            del self.buf[:total]
            self.run.done(time.perf_counter() - self.started, status)
            self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class _Run:
    """Shared state: the request cycle, the measuring window and what was measured."""

    def __init__(self, host: str, paths: list[str], warmup: float, seconds: float, cap: int):
        self.requests = [
            f"GET {p} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n".encode()
            for p in paths
        ]
        self.issued = count()
        self.measure_from = time.perf_counter() + warmup
        self.deadline = self.measure_from + seconds
        self.cap = cap
        self.latencies: list[float] = []
        self.errors = 0
        self.first = self.last = 0.0

    def next_request(self) -> bytes | None:
        now = time.perf_counter()
        if now >= self.deadline or len(self.latencies) >= self.cap:
            return None
        return self.requests[next(self.issued) % len(self.requests)]

    def done(self, latency: float, status: int) -> None:
        now = time.perf_counter()
        if now < self.measure_from:
            return
        if not self.latencies:
            self.first = now
        self.last = now
        if status != 200:
            self.errors += 1
        self.latencies.append(latency)


async def main(argv: list[str]) -> None:
    """Run the load described by ``argv`` and print the JSON result."""
    host, port, conns, warmup, seconds, cap, *paths = argv
    loop = asyncio.get_running_loop()
    run = _Run(host, paths, float(warmup), float(seconds), int(cap))
    protocols = []
    for _ in range(int(conns)):
        _, proto = await loop.create_connection(lambda: _Conn(run), host, int(port))
        protocols.append(proto)
    await asyncio.gather(*(p.closed for p in protocols))
    span = run.last - run.first
    rps = (len(run.latencies) - 1) / span if span > 0 else float("nan")
    print(json.dumps({"rps": rps, "latencies": run.latencies, "errors": run.errors}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
