"""Logging: loguru to stderr only (stdout belongs to MCP stdio), with the correlation id."""

from __future__ import annotations

import logging
import os
import sys
import uuid
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


def new_correlation_id() -> str:
    """A fresh correlation id (UUID4 hex, 32 chars)."""
    return uuid.uuid4().hex


def _patch(record: Record) -> None:
    record["extra"].setdefault("correlation_id", correlation_id.get())


class _InterceptHandler(logging.Handler):
    """Route stdlib logging (ib_async, uvicorn, fastmcp) into loguru, hence to stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def configure_logging(settings: Settings, *, stream: Any = None) -> None:
    """Configure loguru once: stderr sink (never stdout), level from settings, optional file.

    Args:
        settings: The effective settings (``LOG_LEVEL``, ``LOG_FILE``).
        stream: Where console logs go; defaults to ``sys.stderr`` (tests pass their own).
    """
    logger.remove()
    logger.configure(patcher=_patch)
    logger.add(
        stream if stream is not None else sys.stderr,
        level=settings.LOG_LEVEL,
        format=_FORMAT,
        colorize=False if stream is not None else None,
        backtrace=False,
        diagnose=False,
    )
    log_file = settings.log_file_path
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        logger.add(
            log_file,
            level=settings.LOG_LEVEL,
            format=_FORMAT,
            rotation="10 MB",
            retention=5,
            backtrace=False,
            diagnose=False,
            enqueue=False,
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    # ib_async is chatty at INFO (every warning code); keep it at WARNING unless debugging.
    noisy = logging.DEBUG if settings.LOG_LEVEL in ("TRACE", "DEBUG") else logging.WARNING
    for name in ("ib_async", "ib_insync", "uvicorn.access", "httpx", "mcp", "fastmcp", "docket"):
        logging.getLogger(name).setLevel(noisy)
    # fastmcp installs its own Rich handler at import; route it through ours (one format, one
    # correlation id, still stderr): off for a later import, removed if already imported.
    os.environ.setdefault("FASTMCP_LOG_ENABLED", "false")
    for name in ("fastmcp", "FastMCP"):
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True
