"""Shared CLI plumbing: consoles, settings loading, the runtime, error output and exit codes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from ibkr_mcp.config import Settings, SettingsError, load_settings
from ibkr_mcp.errors import CLI_EXIT_CODE, IbkrMcpError, InvalidInputError, cli_exit_code

if TYPE_CHECKING:
    from ibkr_mcp.services import Services

T = TypeVar("T")

#: Rich output goes to stdout for CLI commands; never used while serving MCP on stdio.
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

#: Exit code after Ctrl-C (128 + SIGINT, the shell convention).
EXIT_INTERRUPTED = 130


def exit_codes_help() -> str:
    """The exit codes, for ``--help`` and the README: 0, Typer's 2, each error code's, 130."""
    by_exit: dict[int, list[str]] = {}
    for code, number in CLI_EXIT_CODE.items():
        by_exit.setdefault(number, []).append(code)
    by_exit.setdefault(2, []).insert(0, "usage or settings error")
    lines = ["0 success"]
    lines += [f"{n} {', '.join(names)}" for n, names in sorted(by_exit.items())]
    lines.append(f"{EXIT_INTERRUPTED} interrupted (Ctrl-C)")
    return "Exit codes: " + "; ".join(lines) + "."


SimOption = Annotated[
    bool, typer.Option("--sim", help="Start the embedded IB Gateway simulator and use it.")
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Machine-readable output: the result as JSON on stdout.")
]


def settings_or_exit(*, as_json: bool = False, **overrides: Any) -> Settings:
    """Load settings, or print the one-line reason and exit with code 2.

    With ``as_json`` the reason is also the ``{"error": …}`` object on stdout (INVALID_INPUT).
    """
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        if as_json:
            error = InvalidInputError(
                str(exc),
                remedy="Fix the setting in the environment or in the env file "
                "(`ibkr-mcp config show` names it).",
                details={"source": "settings"},
            )
            write_json({"error": error.to_dict()})
        err.print(f"[red]✗[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None


def confirm(yes: bool, as_json: bool, question: str, *, declined: str, remedy: str) -> None:
    """Ask ``question`` on stderr (unless ``--yes``); anything but yes raises ``ConfirmationError``.

    Every prompt of the CLI declines the same way: CONFIRMATION_REQUIRED (exit 3) with a
    message saying what was not done. With ``--json`` nothing is asked (stdout is for the
    result): ``--yes`` is needed.

    Args:
        yes: ``--yes`` was given.
        as_json: ``--json`` was given.
        question: The yes/no question.
        declined: What not confirming leaves undone ("nothing was sent.").
        remedy: How to confirm up front.
    """
    from ibkr_mcp.errors import ConfirmationError

    if yes:
        return
    try:
        confirmed = not as_json and typer.confirm(question, default=False, err=True)
    except typer.Abort:  # end of input or Ctrl-C at the prompt: not a yes
        confirmed = False
    if not confirmed:
        if as_json:
            remedy = "With --json nothing is asked: pass --yes to confirm up front."
        raise ConfirmationError(f"Not confirmed: {declined}", remedy=remedy)


def configure_cli_logging(settings: Settings) -> None:
    """Logs to stderr; the default INFO level is lowered to WARNING so output stays readable.

    ib_async's raw lines (``Error 200 …``) are dropped unless ``LOG_LEVEL`` is DEBUG/TRACE: the
    command reports the translated error itself.
    """
    from ibkr_mcp.logs import configure_logging

    if settings.LOG_LEVEL == "INFO":
        settings = settings.model_copy(update={"LOG_LEVEL": "WARNING"})
    configure_logging(settings, cli=True)


def print_error(exc: IbkrMcpError) -> None:
    """The error's code, message, remedy and correlation id on stderr (never a traceback)."""
    err.print(f"[red]✗ {exc.code}[/red]: {exc.message}", soft_wrap=True, markup=True)
    if exc.remedy:
        err.print(f"  Remedy: {exc.remedy}", soft_wrap=True, markup=False)
    cid = exc.details.get("correlation_id")
    if cid:
        err.print(f"  Correlation id: {cid}", soft_wrap=True, markup=False)


def fail(exc: IbkrMcpError, *, as_json: bool = False) -> NoReturn:
    """Print ``exc`` and exit with its code from ``errors.cli_exit_code``.

    With ``as_json`` stdout gets the same ``{"error": {code, message, remedy, details}}``
    object the HTTP API returns, so a script reading stdout always gets JSON.
    """
    if as_json:
        write_json({"error": exc.to_dict()})
    print_error(exc)
    raise typer.Exit(cli_exit_code(exc))


def run_async(coro_fn: Callable[[], Awaitable[T]], *, as_json: bool = False) -> T:
    """Run ``coro_fn()`` on a fresh event loop; every ``IbkrMcpError`` becomes an exit code."""

    async def main() -> T:
        return await coro_fn()

    try:
        return asyncio.run(main())
    except IbkrMcpError as exc:
        fail(exc, as_json=as_json)
    except KeyboardInterrupt:
        if as_json:
            write_json({"error": {"code": "INTERRUPTED", "message": "Interrupted."}})
        err.print("Interrupted.")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (OSError, RuntimeError, ValueError) as exc:
        # Anything else that escapes (a port in use, a broken install) is reported in one
        # line; the full traceback is in the log at DEBUG.
        from loguru import logger

        logger.opt(exception=exc).debug("command failed")
        fail(
            IbkrMcpError(f"{type(exc).__name__}: {exc}", remedy="Run with LOG_LEVEL=DEBUG."),
            as_json=as_json,
        )


async def with_runtime(
    settings: Settings,
    *,
    sim: bool,
    body: Callable[[Services], Awaitable[T]],
    wait_connected: float | None = None,
) -> T:
    """Open the runtime (optionally on the embedded simulator), run ``body``, close it."""
    from contextlib import AsyncExitStack

    from ibkr_mcp.runtime import open_runtime

    wait = wait_connected
    if wait is None:
        wait = 5.0 if sim else settings.IBKR_CONNECT_TIMEOUT
    # Never the server's client id: a CLI command next to a running server would otherwise
    # collide with it (IB error 326) or take over its session.
    settings = settings.model_copy(update={"IBKR_CLIENT_ID": settings.cli_client_id})
    async with AsyncExitStack() as stack:
        # The spinner stops before the body runs: its progress bar or prompt owns the terminal.
        with connecting_status(settings, sim=sim):
            services = await stack.enter_async_context(
                open_runtime(settings, sim=sim, wait_connected=wait)
            )
        return await body(services)


def connecting_status(settings: Settings, *, sim: bool) -> Any:
    """A Rich spinner on stderr while connecting (shown on a terminal only, then erased)."""
    where = "the embedded simulator" if sim else f"{settings.IBKR_HOST}:{settings.IBKR_PORT}"
    return err.status(f"Connecting to {where}…", spinner="dots")


def write_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (Decimals as strings, datetimes ISO-8601)."""
    import orjson

    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    sys.stdout.flush()
