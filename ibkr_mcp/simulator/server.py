"""The simulated IB Gateway: asyncio TCP server, handshake, dispatch, logs and the market tick."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from types import TracebackType

from loguru import logger

from ibkr_mcp.simulator import outgoing as out
from ibkr_mcp.simulator.accounts import Account
from ibkr_mcp.simulator.catalogue import DEFAULT_CATALOGUE, Catalogue, Instrument
from ibkr_mcp.simulator.clock import Clock, SystemClock
from ibkr_mcp.simulator.contracts import resolve
from ibkr_mcp.simulator.control import ControlServer
from ibkr_mcp.simulator.engine import Engine, OrderEvent, SimOrder
from ibkr_mcp.simulator.expiry import expire_options
from ibkr_mcp.simulator.fanout import AccountFanOut
from ibkr_mcp.simulator.faults import DEFAULT_RESET_REFUSE_SECONDS, Drills
from ibkr_mcp.simulator.incoming import ContractSpec, locate_req_id
from ibkr_mcp.simulator.limits import MESSAGE_RATE, RATE_CODE, RATE_TEXT, GapKind, Limits
from ibkr_mcp.simulator.market import MarketModel
from ibkr_mcp.simulator.msgids import Req, req_name
from ibkr_mcp.simulator.msglog import ReceivedMessage, SentMessage
from ibkr_mcp.simulator.session import Session
from ibkr_mcp.simulator.state import StateStore
from ibkr_mcp.simulator.wire import (
    API_SIGN,
    MalformedMessageError,
    decode_fields,
    encode,
    encode_raw,
    parse_version_range,
    split_frames,
)

#: Highest server version spoken: the last text-only protocol version ib_async supports.
SERVER_VERSION = 178
MIN_CLIENT_VERSION = 100
SIMULATOR_NOTICE_CODE = 2199
SIMULATOR_NOTICE = "IBKR-MCP SIMULATOR: simulated IB Gateway, no real orders or money"
FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
#: IB sends account values and summaries every three minutes (portfolio rows at once).
ACCOUNT_UPDATE_SECONDS = 180.0
#: Re-evaluation period of resting orders and streaming subscriptions (seconds).
TICK_INTERVAL = 0.1
LOG_LIMIT = 200_000


class _Connection(asyncio.Protocol):
    """Socket side of one client: handshake, framing, START_API, then the session."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.stage = "sign"
        self.server_version = SERVER_VERSION
        self.session: Session | None = None
        self.since = sim.clock.now()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.sim._connections.add(self)
        if self.sim._refuse:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.sim._connections.discard(self)
        if self.session is not None:
            self.session.closed = True
            self.session.market_data.close()
            if self.sim._sessions.get(self.session.client_id) is self.session:
                del self.sim._sessions[self.session.client_id]
                self.sim.limits.forget_client(self.session.client_id)

    def write(self, data: bytes) -> None:
        self.sim.drills.send(self, data)

    def write_now(self, data: bytes) -> None:
        """Write to the socket now (the latency drill calls this later)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.sim.drills.hung:
            self.resume()

    def resume(self) -> None:
        """Read and answer everything buffered (also what arrived during a hang drill)."""
        try:
            self._consume()
        except MalformedMessageError as exc:
            logger.warning("simulator: dropping client after bad framing: {}", exc)
            self.close()
        finally:
            self.sim.flush()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _consume(self) -> None:
        if self.stage == "sign":
            if len(self.buffer) < len(API_SIGN):
                return
            if bytes(self.buffer[: len(API_SIGN)]) != API_SIGN:
                raise MalformedMessageError("client did not start with API\\0")
            del self.buffer[: len(API_SIGN)]
            self.stage = "version"
        ready: list[tuple[list[str], int, int | None]] = []
        for frame in split_frames(self.buffer):
            if self.stage == "version":
                self._handshake(frame)
            elif self.stage == "start":
                self._start_api(decode_fields(frame))
            elif self.stage == "ready" and self.session is not None:
                # Log everything one read delivered before answering any of it, so the log
                # shows which requests a client had in flight together.
                ready.append(self.sim._log_request(self.session, decode_fields(frame)))
            if self.stage == "closed":
                return
        for fields, msg_id, req_id in ready:
            if self.session is None:
                break
            verdict = self.sim.limits.message(self.session.client_id)
            if verdict == "ok":
                self.sim._dispatch(self.session, fields, msg_id, req_id)
            elif verdict == "reject":
                self.session.error(-1, RATE_CODE, RATE_TEXT)
            else:  # over the rate for too long: IB drops the client
                self.session.flush()
                self.stage = "closed"
                self.close()
                return

    def _handshake(self, frame: bytes) -> None:
        _low, high, _options = parse_version_range(frame)
        if high < MIN_CLIENT_VERSION:
            raise MalformedMessageError(f"client max version {high} is too old")
        self.server_version = min(high, SERVER_VERSION)
        stamp = self.sim.clock.now().strftime("%Y%m%d %H:%M:%S") + " UTC"
        self.write(encode_raw([str(self.server_version), stamp]))
        self.stage = "start"

    def _start_api(self, fields: list[str]) -> None:
        if not fields or fields[0] != str(int(Req.START_API)) or len(fields) < 3:
            logger.warning("simulator: expected START_API, got {}", fields[:1])
            return
        try:
            client_id = int(fields[2])
        except ValueError:
            client_id = -1
        self.sim.log_received(client_id, int(Req.START_API), "START_API", None)
        if client_id in self.sim._sessions:
            # IB reports the clash and drops the socket; the first client is unaffected.
            text = (
                "Unable to connect as the client id is already in use. "
                "Retry with a unique client id."
            )
            self.write(encode(out.error(-1, 326, text, self.server_version)))
            self.sim.log_sent(client_id, 4, "ERR_MSG", -1)
            self.stage = "closed"
            self.close()
            return
        session = Session(self.sim, client_id, self.server_version, self.write, self.sim.log_sent)
        self.session = session
        self.sim._sessions[client_id] = session
        self.since = self.sim.clock.now()
        self.stage = "ready"
        session.send(out.next_valid_id(self.sim.next_order_id(client_id)))
        session.send(out.managed_accounts(self.sim.accounts))
        for code, text in (*FARM_NOTICES, (SIMULATOR_NOTICE_CODE, SIMULATOR_NOTICE)):
            session.error(-1, code, text)


class Simulator:
    """A protocol-faithful IB Gateway stand-in that unmodified TWS API clients connect to."""

    def __init__(
        self,
        *,
        seed: int = 42,
        accounts: Sequence[str] = ("DU1234567",),
        starting_cash: Decimal = Decimal(1_000_000),
        clock: Clock | None = None,
        trading_hours: bool = False,
        catalogue: Catalogue | None = None,
        master_client_id: int | None = None,
        reject_mkt_remainder: bool = False,
        reset_refuse_seconds: float = DEFAULT_RESET_REFUSE_SECONDS,
        control: bool | str | Path = False,
        pacing: bool = True,
        market_data_lines: int = 100,
        message_rate: int = MESSAGE_RATE,
        monotonic: Callable[[], float] = time.monotonic,
        state_file: str | Path | None = None,
        account_update_seconds: float = ACCOUNT_UPDATE_SECONDS,
        no_live_data: Sequence[str] = (),
        market_data_gaps: Mapping[str, GapKind] | None = None,
        delayed_data: bool = True,
        historical_seconds: float = 0.0,
    ) -> None:
        if not accounts:
            raise ValueError("at least one account is required")
        self.seed = seed
        #: Besides client 0, this client id hears about every client's orders (TWS setting).
        self.master_client_id = master_client_id
        self.accounts: tuple[str, ...] = tuple(accounts)
        self.clock: Clock = clock or SystemClock()
        self.catalogue: Catalogue = catalogue or DEFAULT_CATALOGUE
        self.market = MarketModel(
            self.catalogue, seed=seed, clock=self.clock, trading_hours=trading_hours
        )
        self.host = "127.0.0.1"
        self.port = 0
        self._accounts = {a: Account(a, Decimal(starting_cash)) for a in self.accounts}
        self.engine = Engine(
            market=self.market,
            catalogue=self.catalogue,
            accounts=self._accounts,
            seed=seed,
            on_order=self._on_order,
            on_account=self._on_account,
            reject_mkt_remainder=reject_mkt_remainder,
        )
        self._sessions: dict[int, Session] = {}
        self._fan_out = AccountFanOut(self, lambda: list(self._sessions.values()), self.flush)
        self._connections: set[_Connection] = set()
        self.next_ids: dict[int, int] = {}
        self._seq = 0
        self._received: deque[ReceivedMessage] = deque(maxlen=LOG_LIMIT)
        self._sent: deque[SentMessage] = deque(maxlen=LOG_LIMIT)
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._refuse = False
        self._listening = False
        self._paused = False
        self._pause_on: str | None = None
        self._held: list[tuple[Session, list[str], int, int | None]] = []
        self.drills = Drills(self, reset_refuse_seconds=reset_refuse_seconds)
        self.account_update_seconds = account_update_seconds
        self._last_account_cycle = monotonic()
        self.state: StateStore | None = StateStore(state_file) if state_file else None
        self.limits = Limits(
            pacing,
            market_data_lines,
            message_rate,
            monotonic,
            no_live_data,
            gaps=market_data_gaps,
            delayed_data=delayed_data,
            historical_seconds=historical_seconds,
        )
        self.engine.reject_hook = self.drills.forced_rejection
        #: The control channel (``True``: in the system temp dir; a path: in that directory).
        self.control = None if control is False else ControlServer(self.drills, control)

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0 picks a free port); returns the bound port."""
        if self.state is not None:
            self.state.load(self)  # StateFileError stops start-up, naming the file
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port)
        self.host = host
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._listening = True
        if self.control is not None:
            await self.control.start()
        self._ticker = asyncio.create_task(self._tick_forever(), name="ibkr-sim-tick")
        logger.debug("simulator listening on {}:{}", host, self.port)
        return self.port

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        self.drills.stop()
        if self.control is not None:
            await self.control.stop()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._server is not None:
            self._server.close()
            for conn in list(self._connections):
                conn.close()
            await self._server.wait_closed()
            self._server = None
        self._sessions.clear()
        if self.state is not None:
            self.state.save_if_dirty(self)

    def stop_listening(self) -> None:
        """Refuse new connections (existing ones stay: asyncio's Server.close keeps them)."""
        if self._server is not None and self._listening:
            self._server.close()
            self._listening = False

    async def listen_again(self) -> None:
        """Accept connections again on the same port."""
        if self._server is None or self._listening:
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), self.host, self.port)
        self._listening = True

    def on_reset(self) -> None:
        """The nightly restart forgets sessions and queued requests (accounts/orders stay)."""
        self._held.clear()
        self._paused = False
        self.limits.reset()
        self._changed()  # expired DAY orders

    def sessions(self) -> list[Session]:
        """The connected API sessions."""
        return list(self._sessions.values())

    def connections(self) -> list[_Connection]:
        """Every open client socket (also those still in the handshake)."""
        return list(self._connections)

    def streams_in_use(self) -> int:
        """Streaming market data subscriptions of every client (the lines in use)."""
        return sum(len(s.market_data.streams) for s in self._sessions.values())

    async def __aenter__(self) -> Simulator:
        await self.start(self.host, self.port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def set_connection_refused(self, refused: bool) -> None:
        """While refused, new connections are closed at once (to test reconnect logic)."""
        self._refuse = refused

    def pause(self, paused: bool) -> None:
        """While paused, requests are received and logged but not answered (a hung gateway).

        Resuming answers the held requests in arrival order, as a gateway that froze and then
        caught up would: an order sent during the freeze still arrives.
        """
        self._paused = paused
        if not paused:
            held, self._held = self._held, []
            for session, body, msg_id, req_id in held:
                if session.client_id in self._sessions:
                    self._dispatch(session, body, msg_id, req_id)
            self.flush()

    def pause_on(self, request: str | None) -> None:
        """Pause when the next request named ``request`` (e.g. ``PLACE_ORDER``) arrives.

        That request and everything after it are held until ``pause(False)``: a gateway that
        hangs on exactly that request (the lookups before it were answered).
        """
        self._pause_on = request

    # -- inspection ------------------------------------------------------------------------------
    def orders(self) -> list[SimOrder]:
        """Every order ever received from any client, what-if previews included."""
        return list(self.engine.orders)

    def received(self) -> list[ReceivedMessage]:
        """The request log (shares its sequence numbers with ``sent()``)."""
        return list(self._received)

    def sent(self) -> list[SentMessage]:
        """The sent-message log."""
        return list(self._sent)

    def account(self, account_id: str) -> Account:
        """The simulated account (cash, positions) for inspection."""
        return self._accounts[account_id]

    def tick(self) -> None:
        """Re-evaluate resting orders and stream market/PnL updates at ``clock.now()``."""
        self.expire_options()
        self.engine.evaluate()
        if self.drills.hung:
            return  # a frozen gateway sends nothing; fills queue up and go out on catch-up
        for session in list(self._sessions.values()):
            if not self.drills.data_frozen:
                session.stream_updates()
            session.refresh_pnl()
        if self.limits.now() - self._last_account_cycle >= self.account_update_seconds:
            self.push_account_updates()
        self.flush()

    def push_account_updates(self) -> None:
        """Run IB's account update cycle now: changed account values and summaries go out."""
        self._last_account_cycle = self.limits.now()
        self._fan_out.send_pending()  # the rows of this turn's fills come before the values
        for session in list(self._sessions.values()):
            session.account.account_cycle()
        self.flush()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_INTERVAL)
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the periodic task must survive any bad state
                logger.exception("simulator tick failed")

    def expire_options(self) -> None:
        """Settle option positions whose expiry passed on the simulated clock (``expiry.py``)."""
        expire_options(self._accounts, self.market, self.clock.now(), self._on_account)

    # -- plumbing --------------------------------------------------------------------------------
    def log_received(self, client_id: int, msg_id: int, name: str, req_id: int | None) -> None:
        """Append to the request log."""
        self._seq += 1
        self._received.append(ReceivedMessage(self._seq, client_id, msg_id, name, req_id))

    def log_sent(self, client_id: int, msg_id: int, name: str, req_id: int | None) -> None:
        """Append to the sent log."""
        self._seq += 1
        self._sent.append(SentMessage(self._seq, client_id, msg_id, name, req_id))

    def flush(self) -> None:
        """Write out every session's queued messages (and the state file, if it changed)."""
        if self.state is not None:
            self.state.save_if_dirty(self)
        if self.drills.hung:
            return
        for session in list(self._sessions.values()):
            session.flush()

    def resolve(self, spec: ContractSpec) -> list[Instrument]:
        """Catalogue instruments matching a client contract."""
        return resolve(self.catalogue, spec, self.market)

    def next_order_id(self, client_id: int) -> int:
        """The next valid order id for a client (above every id it used)."""
        return self.next_ids.get(client_id, 1)

    def note_order_id(self, client_id: int, order_id: int) -> None:
        """Remember an order id a client used."""
        self.next_ids[client_id] = max(self.next_ids.get(client_id, 1), order_id + 1)
        self._changed()

    def _changed(self) -> None:
        if self.state is not None:
            self.state.dirty = True

    def _log_request(
        self, session: Session, fields: list[str]
    ) -> tuple[list[str], int, int | None]:
        # isascii(): "²".isdigit() is true but int("²") raises; that must be error 320, not a crash.
        head = fields[0] if fields else ""
        msg_id = int(head) if head.isascii() and head.isdigit() else -1
        body = fields[1:]
        req_id = locate_req_id(msg_id, body)
        name = req_name(msg_id) if msg_id >= 0 else "MALFORMED"
        self.log_received(session.client_id, msg_id, name, req_id)
        return body, msg_id, req_id

    def _dispatch(self, session: Session, body: list[str], msg_id: int, req_id: int | None) -> None:
        if msg_id < 0:
            session.error(-1, 320, "Server error when reading an API client request.")
            return
        if self._pause_on is not None and req_name(msg_id) == self._pause_on:
            self._pause_on = None
            self._paused = True
        if self._paused:
            self._held.append((session, body, msg_id, req_id))
            return
        try:
            self.expire_options()
            self.engine.evaluate()
            session.handle(msg_id, body, req_id)
        except Exception as exc:  # noqa: BLE001 - one bad request must never take the server down
            logger.exception("simulator: request {} failed", req_name(msg_id))
            session.error(-1 if req_id is None else req_id, 320, f"Server error: {exc}")

    def sees_all(self, client_id: int) -> bool:
        """Whether a client sees every client's orders and executions (client 0, the master)."""
        return client_id == 0 or client_id == self.master_client_id

    def _on_order(self, event: OrderEvent) -> None:
        # As at IB: the owner hears everything about its order; client 0 and the master client
        # also receive the order, status and execution messages of other clients' orders, but
        # never their errors.
        # Looked up by id rather than by walking every session: an order event costs the same
        # with 32 clients connected as with one.
        self._changed()
        owner = event.order.client_id
        targets = [owner]
        if event.kind != "error":
            targets += [c for c in (0, self.master_client_id) if c is not None and c != owner]
        for client_id in sorted(set(targets)):
            session = self._sessions.get(client_id)
            if session is not None:
                session.on_order_event(event)

    def _on_account(self, account: str, con_id: int) -> None:
        self._changed()
        self._fan_out.changed(account, con_id)
