"""ib_async's stdlib logging routed to loguru (stderr), quiet unless LOG_LEVEL asks."""

from __future__ import annotations

import logging

from loguru import logger


class _LoguruHandler(logging.Handler):
    """Forwards ib_async's stdlib log records to loguru (stderr)."""

    def emit(self, record: logging.LogRecord) -> None:
        # ib_async logs every request error at ERROR; we translate and report those ourselves,
        # and its connect failures repeat on every backoff attempt (we log one line per outage).
        if record.name == "ib_async.client":
            level = "DEBUG"
        elif record.levelno >= logging.ERROR:
            level = "WARNING"
        else:
            level = record.levelname
        if level == "WARN":
            level = "WARNING"
        text = record.getMessage()
        logger.opt(exception=record.exc_info).log(level, "[{}] {}", record.name, text)


def configure_ib_logging(log_level: str) -> None:
    """Keep ib_async quiet (WARNING) unless ``LOG_LEVEL`` is DEBUG/TRACE; route it to loguru."""
    ib_logger = logging.getLogger("ib_async")
    ib_logger.setLevel(logging.DEBUG if log_level in ("DEBUG", "TRACE") else logging.WARNING)
    if not any(isinstance(h, _LoguruHandler) for h in ib_logger.handlers):
        ib_logger.addHandler(_LoguruHandler())
    ib_logger.propagate = False
