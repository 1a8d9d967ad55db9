"""Error codes are stable and mapped once; logs go to stderr with the correlation id."""

from __future__ import annotations

import io
import subprocess
import sys

from ibkr_mcp import errors
from ibkr_mcp.config import load_settings
from ibkr_mcp.logs import configure_logging, correlation_id


def test_every_error_has_a_unique_code_and_mappings() -> None:
    codes = [cls.code for cls in errors.ALL_ERRORS]
    assert len(codes) == len(set(codes))
    for code in codes:
        assert code in errors.HTTP_STATUS, code
        assert code in errors.CLI_EXIT_CODE, code
    assert errors.http_status(errors.GateRefusedError("x")) == 403
    assert errors.http_status(errors.GatewayUnavailableError("x")) == 503
    assert errors.http_status(errors.ContractNotFoundError("x")) == 404
    assert errors.http_status(errors.InvalidInputError("x")) == 422
    assert errors.cli_exit_code(errors.GatewayUnavailableError("x")) != 0


def test_error_to_dict_and_str() -> None:
    exc = errors.GateRefusedError("too big", remedy="smaller", details={"gate": "risk"})
    assert exc.to_dict() == {
        "code": "GATE_REFUSED",
        "message": "too big",
        "remedy": "smaller",
        "details": {"gate": "risk"},
    }
    assert str(exc) == "GATE_REFUSED: too big Remedy: smaller"


def test_log_records_carry_correlation_id() -> None:
    from loguru import logger

    buf = io.StringIO()
    configure_logging(load_settings(LOG_LEVEL="DEBUG"), stream=buf)
    token = correlation_id.set("abc123")
    try:
        logger.info("hello")
    finally:
        correlation_id.reset(token)
    logger.info("outside")
    lines = buf.getvalue().splitlines()
    assert "abc123" in lines[0] and "hello" in lines[0]
    assert " - outside" in lines[1]


def test_logs_go_to_stderr_never_stdout() -> None:
    code = (
        "from loguru import logger\n"
        "import logging\n"
        "from ibkr_mcp.config import load_settings\n"
        "from ibkr_mcp.logs import configure_logging\n"
        "configure_logging(load_settings())\n"
        "logger.warning('loguru-line')\n"
        "logging.getLogger('ib_async.client').error('stdlib-line')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout == ""
    assert "loguru-line" in proc.stderr
    assert "stdlib-line" in proc.stderr


def test_control_characters_are_escaped_in_every_record() -> None:
    import logging

    from loguru import logger

    from ibkr_mcp.logs import escape_control

    raw = "a\nb\r\x1b[2J\x00\u2028\x85\tz"
    assert escape_control(raw) == "a\\nb\\r\\x1b[2J\\x00\\u2028\\x85\\tz"
    assert escape_control("plain ünïcode ✓") == "plain ünïcode ✓"
    buf = io.StringIO()
    configure_logging(load_settings(LOG_LEVEL="DEBUG"), stream=buf)
    logger.info("symbol {}", "AAPL\n2026-01-01 CRITICAL forged")
    logging.getLogger("uvicorn.error").warning("stdlib %s", "a\nb")
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("symbol AAPL\\n2026-01-01 CRITICAL forged")
    assert lines[1].endswith("stdlib a\\nb")


def test_json_log_format_carries_the_correlation_id() -> None:
    import json

    from loguru import logger

    buf = io.StringIO()
    configure_logging(load_settings(LOG_FORMAT="json"), stream=buf)
    token = correlation_id.set("cid-42")
    try:
        logger.bind(user="x\x1b[31m").warning("two\nlines")
    finally:
        correlation_id.reset(token)
    (line,) = buf.getvalue().splitlines()
    record = json.loads(line)["record"]
    assert record["extra"]["correlation_id"] == "cid-42"
    assert record["message"] == "two\\nlines"
    assert record["extra"]["user"] == "x\\x1b[31m"
    assert record["level"]["name"] == "WARNING"


def test_cli_logging_drops_ib_async_lines_unless_debugging() -> None:
    from loguru import logger

    for level, kept in (("WARNING", False), ("DEBUG", True)):
        buf = io.StringIO()
        configure_logging(load_settings(LOG_LEVEL=level), stream=buf, cli=True)
        # What gateway/connection.py forwards for ib_async's "Error 200" line.
        logger.warning("[ib_async.wrapper] Error 200, reqId 5: No security definition")
        logger.warning("our own warning")
        text = buf.getvalue()
        assert ("Error 200" in text) is kept, text
        assert "our own warning" in text


def test_exception_text_is_escaped_and_the_exception_untouched() -> None:
    from loguru import logger

    buf = io.StringIO()
    configure_logging(load_settings(), stream=buf)
    error = ValueError("bad symbol AAPL\n2026-01-01T00:00:00.000+00:00 CRITICAL forged\x1b[2J")
    try:
        raise error
    except ValueError:
        logger.exception("call failed")
    text = buf.getvalue()
    assert "\x1b" not in text
    assert not any(line.startswith("2026-01-01") for line in text.splitlines()), text
    assert "ValueError: bad symbol AAPL\\n2026-01-01T00:00:00.000+00:00 CRITICAL forged" in text
    assert str(error).count("\n") == 1  # the caller's exception keeps its text


def test_chained_exception_causes_are_escaped_too() -> None:
    from loguru import logger

    buf = io.StringIO()
    configure_logging(load_settings(), stream=buf)
    cause = ValueError("x\n2026-01-01T00:00:00.000+00:00 CRITICAL forged-cause\x1b[2J")
    context = OSError("y\r\n2026-01-01T00:00:00.000+00:00 CRITICAL forged-context")
    try:
        try:
            try:
                raise context
            except OSError as inner:
                raise cause from inner
        except ValueError as exc:
            raise RuntimeError("plain outer text") from exc
    except RuntimeError:
        logger.exception("call failed")
    text = buf.getvalue()
    assert "\x1b" not in text and "\r" not in text
    assert not any(line.startswith("2026-01-01") for line in text.splitlines()), text
    assert "forged-cause" in text and "forged-context" in text  # the chain is still shown
    assert "RuntimeError: plain outer text" in text
    assert str(cause).count("\n") == 1  # the caller's exceptions keep their text
