"""Fault drills on a running simulator: hang, drop, refuse, latency, IB errors, farm outages, reset.

Every drill returns at once with a one-line description of what it did; timed drills end on
their own on the simulator's event loop (``loop.call_later``), so they work the same from the
control channel (``ibkr-mcp sim-ctl``), from ``ibkr-mcp sim --fault`` and from tests.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from loguru import logger

from ibkr_mcp.simulator._error_texts import ib_text

if TYPE_CHECKING:
    from ibkr_mcp.simulator.drill_host import DrillConnection, DrillHost
    from ibkr_mcp.simulator.engine import SimOrder

#: How long ``reset`` refuses connections unless told otherwise (IB Gateway takes about a
#: minute to restart; a few seconds keeps drills short).
DEFAULT_RESET_REFUSE_SECONDS = 3.0
#: Codes whose emission changes the simulated data connection, as at IB.
DATA_LOST, DATA_RESTORED_LOST, DATA_RESTORED_KEPT = 1100, 1101, 1102
FARM_BROKEN = (2103, 2105)
FARM_OK = (2104, 2106)
COMPETING_SESSION = 10197
#: Rejection text used by ``reject-next`` (IB's 201 prefix plus a reason naming the drill).
DRILL_REJECT_REASON = "Order rejected - reason:Rejected by a simulator drill (reject-next)"


class DrillError(ValueError):
    """A drill was asked for something it cannot do (bad argument, unknown code)."""


@dataclass
class _Timed:
    """One running timed fault."""

    until: float
    handle: asyncio.TimerHandle


class Drills:
    """The fault state of one simulator and the drills that change it."""

    def __init__(
        self, sim: DrillHost, *, reset_refuse_seconds: float = DEFAULT_RESET_REFUSE_SECONDS
    ) -> None:
        self.sim = sim
        self.reset_refuse_seconds = reset_refuse_seconds
        self.hung = False
        self.refusing = False
        self.data_frozen = False
        self.latency_ms = 0.0
        self.jitter_ms = 0.0
        self.reject_remaining = 0
        self.reject_code = 201
        self._timed: dict[str, _Timed] = {}
        self._rng = random.Random(sim.seed)
        self._due: weakref.WeakKeyDictionary[DrillConnection, float] = weakref.WeakKeyDictionary()

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def _schedule(self, name: str, seconds: float, end: Any) -> None:
        self._cancel(name)
        loop = self._loop()

        def fire() -> None:
            self._timed.pop(name, None)
            try:
                end()
            except Exception:  # noqa: BLE001 - a drill's end must never kill the loop
                logger.exception("simulator drill {} failed to end", name)

        self._timed[name] = _Timed(loop.time() + seconds, loop.call_later(seconds, fire))

    def _cancel(self, name: str) -> None:
        timed = self._timed.pop(name, None)
        if timed is not None:
            timed.handle.cancel()

    @staticmethod
    def _seconds(value: float, what: str) -> float:
        if not value >= 0 or value > 86_400:
            raise DrillError(f"{what} must be between 0 and 86400 seconds, got {value}")
        return float(value)

    def _broadcast(self, code: int, text: str, req_id: int = -1) -> int:
        sessions = self.sim.sessions()
        for session in sessions:
            session.error(req_id, code, text)
        self.sim.flush()
        return len(sessions)

    # -- drills ------------------------------------------------------------------------------------
    def hang(self, seconds: float) -> str:
        """Keep every socket open but read and answer nothing for ``seconds``, then catch up."""
        seconds = self._seconds(seconds, "hang")
        self.hung = True
        self._schedule("hang", seconds, self.end_hang)
        return f"hanging for {seconds:g} s: sockets stay open, nothing is read or answered"

    def end_hang(self) -> str:
        """Stop hanging: read what arrived meanwhile, answer it in order and send what queued."""
        self._cancel("hang")
        if not self.hung:
            return "not hanging"
        self.hung = False
        for conn in self.sim.connections():
            conn.resume()
        self.sim.flush()
        return "hang ended: caught up"

    def drop(self) -> str:
        """Close every client connection at once (the gateway process died)."""
        conns = self.sim.connections()
        for conn in conns:
            conn.close()
        return f"dropped {len(conns)} connection(s)"

    def refuse(self, seconds: float) -> str:
        """Stop listening for ``seconds`` (new connections are refused; existing ones stay)."""
        seconds = self._seconds(seconds, "refuse")
        self.refusing = True
        self.sim.stop_listening()
        self._schedule("refuse", seconds, self._end_refuse)
        return f"refusing new connections on port {self.sim.port} for {seconds:g} s"

    def _end_refuse(self) -> None:
        self.refusing = False
        task = asyncio.ensure_future(self.sim.listen_again())
        task.add_done_callback(_log_failure)

    def latency(self, ms: float, jitter: float = 0.0) -> str:
        """Delay every outgoing message by ``ms`` ± ``jitter`` milliseconds (0 turns it off)."""
        if not 0 <= ms <= 60_000 or not 0 <= jitter <= 60_000:
            raise DrillError("latency and jitter must be between 0 and 60000 ms")
        self.latency_ms, self.jitter_ms = float(ms), float(jitter)
        if ms == 0 and jitter == 0:
            return "latency off"
        return f"delaying every outgoing message by {ms:g} ms (jitter {jitter:g} ms)"

    def send(self, conn: DrillConnection, data: bytes) -> None:
        """Write ``data`` to ``conn`` now, or later under a latency drill (never reordered)."""
        loop_due = self._due.get(conn)
        if self.latency_ms <= 0 and self.jitter_ms <= 0 and loop_due is None:
            conn.write_now(data)
            return
        loop = self._loop()
        now = loop.time()
        delay = max(0.0, self.latency_ms + self._rng.uniform(-self.jitter_ms, self.jitter_ms))
        due = max(now + delay / 1000, loop_due or 0.0)
        self._due[conn] = due

        def deliver() -> None:
            if self._due.get(conn) == due:
                del self._due[conn]
            conn.write_now(data)

        loop.call_at(due, deliver)

    def error(self, code: int, message: str | None = None, req_id: int = -1) -> str:
        """Send IB error/notice ``code`` to every client, with IB's text unless one is given.

        As at IB, 1100 freezes market data, 1102 resumes it and 1101 resumes the connection
        with every existing market data subscription dead until the client re-requests it;
        2103/2105 freeze data and 2104/2106 resume it.
        """
        text = message if message else ib_text(code)
        if text is None:
            raise DrillError(f"no IB default text for code {code}; pass a message")
        if code in (DATA_LOST, *FARM_BROKEN):
            self.data_frozen = True
        elif code in (DATA_RESTORED_KEPT, *FARM_OK):
            self.data_frozen = False
        elif code == DATA_RESTORED_LOST:
            self.data_frozen = False
            self.kill_subscriptions()
        count = self._broadcast(code, text, req_id)
        return f"sent error {code} (reqId {req_id}) to {count} client(s): {text}"

    def kill_subscriptions(self) -> int:
        """Forget every streaming market data subscription (IB's "data lost")."""
        killed = 0
        for session in self.sim.sessions():
            streams = session.market_data.streams
            killed += len(streams)
            streams.clear()
        return killed

    def farm_outage(self, seconds: float) -> str:
        """2103/2105 now, market data frozen for ``seconds``, then 2104/2106 and data resumes."""
        seconds = self._seconds(seconds, "farm-outage")
        for code in FARM_BROKEN:
            self._broadcast(code, ib_text(code) or "")
        self.data_frozen = True
        self._schedule("farm-outage", seconds, self._end_farm_outage)
        return f"data farms broken (2103, 2105) for {seconds:g} s; market data frozen"

    def _end_farm_outage(self) -> None:
        self.data_frozen = False
        for code in FARM_OK:
            self._broadcast(code, ib_text(code) or "")

    def competing_session(self, seconds: float) -> str:
        """The same user logs in live elsewhere for ``seconds``: live data stops with 10197.

        Every live streaming subscription gets 10197 and ends (IB sends no more ticks for it);
        new live requests get 10197 and nothing; delayed data is unaffected. When the other
        session ends, live requests are served again (old ones must be re-requested).
        """
        seconds = self._seconds(seconds, "competing-session")
        limits = self.sim.limits
        limits.competing_session = True
        text = ib_text(COMPETING_SESSION) or ""
        for session in self.sim.sessions():
            streams = session.market_data.streams
            for req_id in [r for r, sub in streams.items() if sub.data_type in (1, 2)]:
                del streams[req_id]
                session.error(req_id, COMPETING_SESSION, text)
        self.sim.flush()
        self._schedule("competing-session", seconds, self._end_competing)
        return f"competing live session for {seconds:g} s: live market data stops (10197)"

    def _end_competing(self) -> None:
        self.sim.limits.competing_session = False

    def reject_next(self, n: int, code: int = 201) -> str:
        """Reject the next ``n`` orders (what-ifs excluded) with IB error ``code``."""
        if not 0 <= n <= 1_000_000:
            raise DrillError(f"reject-next count must be between 0 and 1000000, got {n}")
        if code != 201 and ib_text(code) is None:
            raise DrillError(f"no IB default text for code {code}")
        self.reject_remaining, self.reject_code = int(n), int(code)
        return f"rejecting the next {n} order(s) with error {code}"

    def forced_rejection(self, order: SimOrder) -> tuple[int, str] | None:
        """The engine's hook: the rejection this order gets from ``reject-next``, if any."""
        if self.reject_remaining <= 0:
            return None
        self.reject_remaining -= 1
        code = self.reject_code
        return code, DRILL_REJECT_REASON if code == 201 else (ib_text(code) or "")

    def reset(self, refuse_seconds: float | None = None) -> str:
        """IB Gateway's nightly restart: faults off, DAY orders expired, everyone dropped.

        Connections are refused for a few seconds, then the same accounts, GTC orders and
        positions are back.
        """
        seconds = self._seconds(
            self.reset_refuse_seconds if refuse_seconds is None else refuse_seconds, "reset"
        )
        self.clear()
        expired = 0
        engine = self.sim.engine
        for order in engine.live_orders():
            if order.fields.tif == "DAY":
                engine._finish(order, "Cancelled")
                expired += 1
        self.sim.on_reset()
        dropped = self.drop()
        self.refusing = True
        self.sim.stop_listening()
        self._schedule("refuse", seconds, self._end_refuse)
        return (
            f"reset: {dropped}; {expired} DAY order(s) expired; refusing connections for "
            f"{seconds:g} s, then accounts, GTC orders and positions are back"
        )

    def clear(self) -> str:
        """End every active fault now (a hang catches up, refused connections are accepted)."""
        if self.hung:
            self.end_hang()
        if self.refusing:
            self._cancel("refuse")
            self._end_refuse()
        for name in list(self._timed):
            self._cancel(name)
        self.data_frozen = False
        self.sim.limits.competing_session = False
        self.latency_ms = self.jitter_ms = 0.0
        self.reject_remaining, self.reject_code = 0, 201
        return "all faults cleared"

    def stop(self) -> None:
        """Cancel every timer (the simulator is stopping)."""
        for name in list(self._timed):
            self._cancel(name)

    # -- inspection ------------------------------------------------------------------------------
    def active(self) -> dict[str, Any]:
        """The active faults (an empty dict when none)."""
        now = self._loop().time() if self._timed else 0.0
        left = {name: round(max(0.0, t.until - now), 3) for name, t in self._timed.items()}
        faults: dict[str, Any] = {}
        if self.hung:
            faults["hang"] = {"remaining_s": left.get("hang")}
        if self.refusing:
            faults["refuse"] = {"remaining_s": left.get("refuse")}
        if self.latency_ms or self.jitter_ms:
            faults["latency"] = {"ms": self.latency_ms, "jitter_ms": self.jitter_ms}
        if self.data_frozen:
            faults["market_data_frozen"] = {"remaining_s": left.get("farm-outage")}
        if self.sim.limits.competing_session:
            faults["competing_session"] = {"remaining_s": left.get("competing-session")}
        if self.reject_remaining:
            faults["reject_next"] = {"count": self.reject_remaining, "code": self.reject_code}
        return faults

    def status(self) -> dict[str, Any]:
        """Clients, working orders, positions per account and active faults (JSON-ready)."""
        clients = [
            {"client_id": conn.session.client_id, "since": conn.since.isoformat()}
            for conn in sorted(self.sim.connections(), key=lambda c: c.since)
            if conn.session is not None and not conn.session.closed
        ]
        orders = [
            {
                "order_id": o.order_id,
                "client_id": o.client_id,
                "perm_id": o.perm_id,
                "account": o.account,
                "symbol": o.instrument.symbol if o.instrument else o.fields.contract.symbol,
                "action": o.action,
                "quantity": _num(o.fields.total_quantity),
                "order_type": o.fields.order_type,
                "tif": o.fields.tif,
                "status": o.status,
                "filled": _num(o.filled),
            }
            for o in self.sim.engine.live_orders()
        ]
        positions = {
            account: [
                {
                    "con_id": con_id,
                    "symbol": pos.instrument.symbol,
                    "sec_type": pos.instrument.sec_type,
                    "quantity": _num(pos.quantity),
                    "avg_cost": _num(pos.avg_cost),
                }
                for con_id, pos in sorted(acct.positions.items())
                if pos.quantity
            ]
            for account, acct in self.sim.engine.accounts.items()
        }
        return {"clients": clients, "orders": orders, "positions": positions,
                "faults": self.active()}  # fmt: skip


def _num(value: Decimal) -> int | float:
    # JSON numbers: integral quantities stay integers; float repr keeps short decimals exact.
    return int(value) if value == value.to_integral_value() else float(value)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("simulator could not listen again: {}", task.exception())
