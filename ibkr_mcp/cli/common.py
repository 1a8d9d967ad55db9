"""Shared CLI plumbing: consoles, settings loading, the runtime, error output and exit codes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from ibkr_mcp.config import Settings, SettingsError, load_settings
from ibkr_mcp.errors import IbkrMcpError, cli_exit_code

if TYPE_CHECKING:
    from ibkr_mcp.services import Services

T = TypeVar("T")

#: Rich output goes to stdout for CLI commands; never used while serving MCP on stdio.
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

SimOption = Annotated[
    bool, typer.Option("--sim", help="Start the embedded IB Gateway simulator and use it.")
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Machine-readable output: the result as JSON on stdout.")
]


def settings_or_exit(**overrides: Any) -> Settings:
    """Load settings, or print the one-line reason and exit with code 2."""
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        err.print(f"[red]✗[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None


def configure_cli_logging(settings: Settings) -> None:
    """Logs to stderr; the default INFO level is lowered to WARNING so output stays readable."""
    from ibkr_mcp.logs import configure_logging

    if settings.LOG_LEVEL == "INFO":
        settings = settings.model_copy(update={"LOG_LEVEL": "WARNING"})
    configure_logging(settings)


def print_error(exc: IbkrMcpError) -> None:
    """The error's code, message, remedy and correlation id on stderr (never a traceback)."""
    err.print(f"[red]✗ {exc.code}[/red]: {exc.message}", soft_wrap=True, markup=True)
    if exc.remedy:
        err.print(f"  Remedy: {exc.remedy}", soft_wrap=True, markup=False)
    cid = exc.details.get("correlation_id")
    if cid:
        err.print(f"  Correlation id: {cid}", soft_wrap=True, markup=False)


def fail(exc: IbkrMcpError) -> NoReturn:
    """Print ``exc`` and exit with its code from ``errors.cli_exit_code``."""
    print_error(exc)
    raise typer.Exit(cli_exit_code(exc))


def run_async(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``coro_fn()`` on a fresh event loop; every ``IbkrMcpError`` becomes an exit code."""

    async def main() -> T:
        return await coro_fn()

    try:
        return asyncio.run(main())
    except IbkrMcpError as exc:
        fail(exc)
    except KeyboardInterrupt:
        err.print("Interrupted.")
        raise typer.Exit(130) from None
    except (OSError, RuntimeError, ValueError) as exc:
        # Anything else that escapes (a port in use, a broken install) is reported in one
        # line; the full traceback is in the log at DEBUG.
        from loguru import logger

        logger.opt(exception=exc).debug("command failed")
        fail(IbkrMcpError(f"{type(exc).__name__}: {exc}", remedy="Run with LOG_LEVEL=DEBUG."))


async def with_runtime(
    settings: Settings,
    *,
    sim: bool,
    body: Callable[[Services], Awaitable[T]],
    wait_connected: float | None = None,
) -> T:
    """Open the runtime (optionally on the embedded simulator), run ``body``, close it."""
    from ibkr_mcp.runtime import open_runtime

    wait = wait_connected
    if wait is None:
        wait = 5.0 if sim else settings.IBKR_CONNECT_TIMEOUT
    # Never the server's client id: a CLI command next to a running server would otherwise
    # collide with it (IB error 326) or take over its session.
    settings = settings.model_copy(update={"IBKR_CLIENT_ID": settings.cli_client_id})
    async with open_runtime(settings, sim=sim, wait_connected=wait) as services:
        return await body(services)


def write_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (Decimals as strings, datetimes ISO-8601)."""
    import orjson

    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    sys.stdout.flush()
