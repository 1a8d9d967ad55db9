"""Logging: loguru to stderr only (stdout belongs to MCP stdio), with the correlation id."""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

    from ibkr_mcp.config import Settings

#: The correlation id of the call being served ("-" outside any call).
correlation_id: ContextVar[str] = ContextVar("correlation_id", default="-")

_FORMAT = (
    "<green>{time:YYYY-MM-DDTHH:mm:ss.SSSZ}</green> <level>{level: <7}</level> "
    "<cyan>{extra[correlation_id]}</cyan> <level>{message}</level>"
)


class _RandomPool:
    """``os.urandom`` bytes drawn 4 KiB at a time and handed out 16 at a time.

    ``os.urandom`` releases the GIL for its system call; on a loaded HTTP server (one per
    /api request) every release let the audit writer thread take the GIL, and the event loop
    then waited for it: 41 µs per call under load, measured. One call per 256 ids instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._offset = 0

    def take16(self) -> bytes:
        """16 fresh random bytes (never handed out twice, in this process or a forked one)."""
        with self._lock:
            if self._offset >= len(self._pool):
                self._pool, self._offset = os.urandom(16 * 256), 0
            start, self._offset = self._offset, self._offset + 16
            return self._pool[start : start + 16]

    def reset(self) -> None:
        """Forget the pool (a forked child must not repeat its parent's ids)."""
        self._lock = threading.Lock()
        self._pool, self._offset = b"", 0


_RANDOM = _RandomPool()
os.register_at_fork(after_in_child=_RANDOM.reset)


def new_correlation_id() -> str:
    """A fresh correlation id (UUID4 hex, 32 chars).

    ``uuid.uuid4().hex`` without the ``UUID`` object and without a system call per id (every
    HTTP /api request makes one): the same random bits, version and variant.
    """
    raw = bytearray(_RANDOM.take16())
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


#: Characters that could forge or garble a log line: C0/C1 controls (newline, ESC for ANSI
#: sequences, CR, backspace, ...) and the Unicode line/paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_control(text: str) -> str:
    r"""``text`` with every control character written as a visible escape (``\n``, ``\x1b``).

    One log record is one line whatever a caller put in a symbol, a field name or a URL.
    """
    return _CONTROL.sub(_escape_char, text) if _CONTROL.search(text) else text


def _patch(record: Record) -> None:
    # The one place user-supplied text is escaped before it reaches any sink: every message
    # (ours, and stdlib records of uvicorn, ib_async, fastmcp) and every string in ``extra``.
    extra = record["extra"]
    extra.setdefault("correlation_id", correlation_id.get())
    record["message"] = escape_control(record["message"])
    for key, value in extra.items():
        if isinstance(value, str):
            extra[key] = escape_control(value)
    exception = record["exception"]
    if exception is not None:
        record["exception"] = _escaped_exception(exception)


def _escaped_exception(exception: Any) -> Any:
    """The record's exception with its message escaped (its last traceback line is its text).

    The exception object itself is left alone (a caller may still raise or return it): the log
    gets a stand-in of the same qualified name, chain and traceback, whose text is escaped, and
    so are the texts of its causes and contexts (the traceback prints the whole chain).
    """
    value = exception.value
    if not isinstance(value, BaseException):
        return exception
    stand_in = _stand_in(value, {})
    if stand_in is value:
        return exception
    return exception._replace(type=type(stand_in), value=stand_in)


def _stand_in(value: BaseException, seen: dict[int, BaseException]) -> BaseException:
    """``value``, or a look-alike with escaped text if it or anything it chains to needs one.

    ``seen`` maps each exception already visited to its stand-in: ``raise X from e`` makes ``e``
    both cause and context, and a cyclic chain must end (the traceback module stops there too).
    """
    if id(value) in seen:
        return seen[id(value)]
    seen[id(value)] = value
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the log record
        return value
    cause = None if value.__cause__ is None else _stand_in(value.__cause__, seen)
    context = None if value.__context__ is None else _stand_in(value.__context__, seen)
    if not _CONTROL.search(text) and cause is value.__cause__ and context is value.__context__:
        return value
    original = type(value)
    stand_in_type = type(
        original.__name__,
        (Exception,),
        {"__module__": original.__module__, "__qualname__": original.__qualname__},
    )
    stand_in: BaseException = stand_in_type(escape_control(text))
    stand_in = stand_in.with_traceback(value.__traceback__)
    stand_in.__cause__ = cause
    stand_in.__context__ = context
    stand_in.__suppress_context__ = value.__suppress_context__
    seen[id(value)] = stand_in
    return stand_in


class _InterceptHandler(logging.Handler):
    """Route stdlib logging (ib_async, uvicorn, fastmcp) into loguru, hence to stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def _stderr_sink(message: Any) -> None:
    # Looked up per message, not bound at configuration: a Rich progress bar or status spinner
    # redirects sys.stderr while it runs, and log lines must print above it, not through it.
    sys.stderr.write(message)


def _colors_wanted() -> bool:
    return sys.stderr.isatty() and not os.environ.get("NO_COLOR")


def _quiet_ib_async(record: Record) -> bool:
    """CLI filter: ib_async's own lines (``[ib_async.wrapper] Error 200 …``) stay out of output.

    The gateway translates every one of those into our error with its remedy; the raw line is
    noise next to it. They are still there with ``LOG_LEVEL=DEBUG``.
    """
    return not record["message"].startswith("[ib_async")


def configure_logging(settings: Settings, *, stream: Any = None, cli: bool = False) -> None:
    """Configure loguru once: stderr sink (never stdout), level and format from settings.

    Args:
        settings: The effective settings (``LOG_LEVEL``, ``LOG_FORMAT``, ``LOG_FILE``).
        stream: Where console logs go; defaults to ``sys.stderr`` (tests pass their own).
        cli: A one-shot command: ib_async's raw lines are dropped unless at DEBUG/TRACE.
    """
    logger.remove()
    logger.configure(patcher=_patch)
    as_json = settings.LOG_FORMAT == "json"
    debugging = settings.LOG_LEVEL in ("TRACE", "DEBUG")
    # loguru's serializer: one JSON object per line, correlation id in record.extra.
    fmt: dict[str, Any] = {"serialize": True, "format": "{message}"} if as_json else {}
    if not as_json:
        fmt["format"] = _FORMAT
    logger.add(
        stream if stream is not None else _stderr_sink,
        level=settings.LOG_LEVEL,
        colorize=stream is None and not as_json and _colors_wanted(),
        filter=_quiet_ib_async if (cli and not debugging) else None,
        backtrace=False,
        diagnose=False,
        **fmt,
    )
    log_file = settings.log_file_path
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        logger.add(
            log_file,
            level=settings.LOG_LEVEL,
            rotation="10 MB",
            retention=5,
            backtrace=False,
            diagnose=False,
            enqueue=False,
            **fmt,
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    # ib_async is chatty at INFO (every warning code); keep it at WARNING unless debugging.
    noisy = logging.DEBUG if debugging else logging.WARNING
    for name in ("ib_async", "ib_insync", "httpx", "mcp", "fastmcp", "docket"):
        logging.getLogger(name).setLevel(noisy)
    # One access line per HTTP request, through loguru (correlation id, escaping, format);
    # above INFO, uvicorn's logger drops them itself, before building a record per request.
    shown = access_log_shown(settings)
    access = logging.getLogger("uvicorn.access")
    access.setLevel(logging.DEBUG if debugging else logging.INFO if shown else logging.WARNING)
    access.handlers.clear()
    access.propagate = True
    # fastmcp installs its own Rich handler at import; route it through ours (one format, one
    # correlation id, still stderr): off for a later import, removed if already imported.
    os.environ.setdefault("FASTMCP_LOG_ENABLED", "false")
    for name in ("fastmcp", "FastMCP"):
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True


def access_log_shown(settings: Settings) -> bool:
    """Whether ``LOG_LEVEL`` lets uvicorn's access lines (INFO) through."""
    return settings.LOG_LEVEL in ("TRACE", "DEBUG", "INFO")


def log_startup(settings: Settings) -> None:
    """One line at server start naming the files this process reads and writes."""
    env_file = settings.env_file
    logger.info(
        "config: env file {}; audit DB {}; kill switch {}; data dir {}",
        env_file if env_file is not None else "(none: environment and defaults)",
        settings.audit_db_path,
        settings.kill_switch_path,
        settings.data_dir,
    )
