"""Control channel of a running simulator: one JSON line in, one out, over a local Unix socket.

The endpoint is derived from the simulator's API port ``P``: the Unix socket
``<dir>/ibkr-mcp-sim-P.ctl`` where ``<dir>`` is ``SIM_CONTROL_DIR`` (default: the system temp
directory, ``$TMPDIR`` or ``/tmp``). A Unix socket is reachable from this machine only (never
the network) and is created mode 0600 (only the user running the simulator may drive it).

Request: ``{"command": "hang", "args": {"seconds": 5}}``; reply: ``{"ok": true, "message":
"...", "result": {...}}`` or ``{"ok": false, "error": "..."}``. ``ibkr-mcp sim-ctl`` and
``SimControl`` (the Python API for tests) are the two clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loguru import logger

from ibkr_mcp.simulator.faults import DrillError, Drills

#: Longest request line accepted (a command is a few dozen bytes).
MAX_LINE = 64 * 1024
REPLY_TIMEOUT = 5.0


class ControlUnavailableError(ConnectionError):
    """No simulator control channel answers at the derived endpoint."""


def control_path(port: int, directory: str | Path | None = None) -> Path:
    """The control socket of the simulator whose API port is ``port``."""
    base = Path(directory) if directory else Path(tempfile.gettempdir())
    return base / f"ibkr-mcp-sim-{port}.ctl"


def _num(args: dict[str, Any], name: str, kind: type[float] | type[int], default: Any) -> Any:
    value = args.get(name, default)
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise DrillError(f"{name} must be a number, got {value!r}") from None


#: command → what it does with the drills and its (JSON) arguments.
COMMANDS: dict[str, Callable[[Drills, dict[str, Any]], str]] = {
    "hang": lambda d, a: d.hang(_num(a, "seconds", float, None)),
    "drop": lambda d, a: d.drop(),
    "refuse": lambda d, a: d.refuse(_num(a, "seconds", float, None)),
    "latency": lambda d, a: d.latency(_num(a, "ms", float, 0), _num(a, "jitter", float, 0)),
    "error": lambda d, a: d.error(
        _num(a, "code", int, None), a.get("message") or None, _num(a, "req_id", int, -1)
    ),
    "farm-outage": lambda d, a: d.farm_outage(_num(a, "seconds", float, None)),
    "competing-session": lambda d, a: d.competing_session(_num(a, "seconds", float, None)),
    "reject-next": lambda d, a: d.reject_next(_num(a, "n", int, 1), _num(a, "code", int, 201)),
    "reset": lambda d, a: d.reset(_num(a, "refuse_seconds", float, None)),
    "clear": lambda d, a: d.clear(),
}
REQUIRED = {
    "hang": "seconds",
    "refuse": "seconds",
    "error": "code",
    "farm-outage": "seconds",
    "competing-session": "seconds",
}


def execute(drills: Drills, command: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one control command; the reply the channel sends (``ok`` false with the reason)."""
    args = args or {}
    if command == "status":
        return {"ok": True, "message": "status", "result": drills.status()}
    action = COMMANDS.get(command)
    if action is None:
        known = ", ".join(["status", *COMMANDS])
        return {"ok": False, "error": f"unknown command {command!r} (known: {known})"}
    missing = REQUIRED.get(command)
    if missing and args.get(missing) is None:
        return {"ok": False, "error": f"{command} needs {missing}"}
    try:
        message = action(drills, args)
    except DrillError as exc:
        return {"ok": False, "error": str(exc)}
    logger.info("simulator drill {}: {}", command, message)
    return {"ok": True, "message": message, "result": {"faults": drills.active()}}


#: What ``ibkr-mcp sim --fault`` / ``SIM_FAULTS`` accept: NAME[=ARG[:ARG2]].
FAULT_SPECS: dict[str, tuple[str, ...]] = {
    "hang": ("seconds",),
    "refuse": ("seconds",),
    "latency": ("ms", "jitter"),
    "farm-outage": ("seconds",),
    "competing-session": ("seconds",),
    "reject-next": ("n", "code"),
    "error": ("code", "req_id"),
}


def parse_fault(spec: str) -> tuple[str, dict[str, Any]]:
    """Parse one start-up fault (``latency=200:50``, ``reject-next=2:201``, ``hang=5``).

    Raises:
        DrillError: the spec names no known fault or has too many arguments.
    """
    name, _, rest = spec.strip().partition("=")
    name = name.strip().lower()
    names = FAULT_SPECS.get(name)
    if names is None:
        known = ", ".join(FAULT_SPECS)
        raise DrillError(f"unknown fault {spec!r} (known: {known}; form NAME=ARG[:ARG2])")
    values = [v for v in rest.split(":")] if rest else []
    if len(values) > len(names):
        raise DrillError(f"fault {spec!r} takes at most {len(names)} argument(s)")
    return name, dict(zip(names, values, strict=False))


def apply_faults(drills: Drills, specs: Sequence[str]) -> list[str]:
    """Apply start-up faults in order; returns what each did.

    Raises:
        DrillError: a spec is malformed or a drill refused its argument.
    """
    done = []
    for spec in specs:
        command, args = parse_fault(spec)
        reply = execute(drills, command, args)
        if not reply["ok"]:
            raise DrillError(f"fault {spec!r}: {reply['error']}")
        done.append(str(reply["message"]))
    return done


class ControlServer:
    """Serves the control channel of one simulator."""

    def __init__(self, drills: Drills, directory: str | Path | bool | None) -> None:
        """``directory``: where the socket goes (``True`` or ``None``: the system temp dir)."""
        self.drills = drills
        self.directory = directory
        self.path: Path | None = None
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> Path | None:
        """Listen at the endpoint derived from the simulator's port (None: no Unix sockets)."""
        if not hasattr(socket, "AF_UNIX"):
            logger.warning("simulator control channel needs Unix sockets; not available here")
            return None
        directory = None if isinstance(self.directory, bool) else self.directory
        path = control_path(self.drills.sim.port, directory)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a stale socket of a simulator that died on this port
        old_mask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(path), limit=MAX_LINE
            )
        finally:
            os.umask(old_mask)
        self.path = path
        logger.debug("simulator control channel at {}", path)
        return path

    async def stop(self) -> None:
        """Stop serving and remove the socket file."""
        if self._server is not None:
            self._server.close()
            self._server = None
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.path = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), REPLY_TIMEOUT)
            try:
                request = json.loads(line)
                command = str(request["command"])
                args = request.get("args") or {}
                if not isinstance(args, dict):
                    raise TypeError("args must be an object")
            except (ValueError, KeyError, TypeError) as exc:
                reply: dict[str, Any] = {"ok": False, "error": f"bad control request: {exc}"}
            else:
                reply = execute(self.drills, command, args)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError) as exc:
            logger.debug("simulator control request dropped: {}", exc)
        finally:
            writer.close()


def send_command(
    port: int,
    command: str,
    args: dict[str, Any] | None = None,
    *,
    directory: str | Path | None = None,
    timeout: float = REPLY_TIMEOUT,
) -> dict[str, Any]:
    """Send one command to the simulator on ``port`` (blocking); returns its reply.

    Raises:
        ControlUnavailableError: nothing answers at the control endpoint.
    """
    path = control_path(port, directory)
    request = json.dumps({"command": command, "args": args or {}}).encode() + b"\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(request)
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise ControlUnavailableError(
            f"no simulator control channel at {path} (is `ibkr-mcp sim --port {port}` running?)"
        ) from exc
    except OSError as exc:
        raise ControlUnavailableError(f"simulator control channel at {path}: {exc}") from exc
    try:
        reply: dict[str, Any] = json.loads(data)
    except ValueError as exc:
        raise ControlUnavailableError(f"simulator control channel at {path} gave no reply") from exc
    return reply


class SimControl:
    """The control commands as a Python API (for tests and scripts), over the control channel.

    Every method returns the reply's ``message`` (``status`` returns the status object) and
    raises ``DrillError`` when the simulator refused the command.
    """

    def __init__(self, port: int, directory: str | Path | None = None) -> None:
        self.port = port
        self.directory = directory

    async def call(self, command: str, **args: Any) -> dict[str, Any]:
        """Send ``command`` with ``args``; the raw reply."""
        return await asyncio.to_thread(
            send_command, self.port, command, args, directory=self.directory
        )

    async def _ok(self, command: str, **args: Any) -> Any:
        reply = await self.call(command, **args)
        if not reply.get("ok"):
            raise DrillError(str(reply.get("error")))
        return reply["result"] if command == "status" else reply["message"]

    async def status(self) -> dict[str, Any]:
        """Clients, orders, positions and faults."""
        result: dict[str, Any] = await self._ok("status")
        return result

    async def hang(self, seconds: float) -> str:
        """Freeze for ``seconds``, then catch up."""
        return str(await self._ok("hang", seconds=seconds))

    async def drop(self) -> str:
        """Close every client connection."""
        return str(await self._ok("drop"))

    async def refuse(self, seconds: float) -> str:
        """Refuse new connections for ``seconds``."""
        return str(await self._ok("refuse", seconds=seconds))

    async def latency(self, ms: float, jitter: float = 0) -> str:
        """Delay outgoing messages."""
        return str(await self._ok("latency", ms=ms, jitter=jitter))

    async def error(self, code: int, message: str | None = None, req_id: int = -1) -> str:
        """Emit an IB error/notice."""
        return str(await self._ok("error", code=code, message=message, req_id=req_id))

    async def farm_outage(self, seconds: float) -> str:
        """Break the data farms for ``seconds``."""
        return str(await self._ok("farm-outage", seconds=seconds))

    async def competing_session(self, seconds: float) -> str:
        """Start the ``competing-session`` drill (live market data stops with 10197)."""
        return str(await self._ok("competing-session", seconds=seconds))

    async def reject_next(self, n: int, code: int = 201) -> str:
        """Reject the next ``n`` orders."""
        return str(await self._ok("reject-next", n=n, code=code))

    async def reset(self, refuse_seconds: float | None = None) -> str:
        """The nightly restart."""
        return str(await self._ok("reset", refuse_seconds=refuse_seconds))

    async def clear(self) -> str:
        """End every fault."""
        return str(await self._ok("clear"))
