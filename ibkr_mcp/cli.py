"""Command line: one Typer app behind ``ibkr-mcp`` (default: serve MCP) and ``ibkr-gateway``.

Heavy modules (fastmcp, fastapi, ib_async, sqlite_utils) are imported inside commands so that
``--help`` stays fast; a test enforces it.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ibkr_mcp import __version__
from ibkr_mcp.config import Settings, SettingsError, load_settings

app = typer.Typer(
    name="ibkr-mcp",
    help="MCP-first agent server for Interactive Brokers (MCP stdio, REST API and CLI).",
    no_args_is_help=False,
    invoke_without_command=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

#: Rich output goes to stdout for CLI commands; never used while serving MCP on stdio.
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

SimOption = Annotated[
    bool, typer.Option("--sim", help="Start the embedded IB Gateway simulator and use it.")
]


def settings_or_exit(**overrides: Any) -> Settings:
    """Load settings, or print the one-line reason and exit with code 2."""
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        err.print(f"[red]✗[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"mm-ibkr-gateway {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
) -> None:
    """MCP-first agent server for Interactive Brokers.

    With no command, ``ibkr-mcp`` serves MCP over stdio and ``ibkr-gateway`` prints this help.
    """
    if ctx.invoked_subcommand is not None:
        return
    default = (ctx.obj or {}).get("default", "help")
    if default == "serve":
        ctx.invoke(serve, sim=False)
        return
    out.print(ctx.get_help())
    raise typer.Exit(0)


@config_app.command("show")
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show the effective settings (paths resolved, secrets masked)."""
    settings = settings_or_exit()
    values = settings.masked()
    if as_json:
        import orjson

        sys.stdout.write(orjson.dumps(values, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = Table(title="Effective configuration", show_lines=False)
    table.add_column("Setting", style="bold")
    table.add_column("Value")
    for name, value in values.items():
        table.add_row(name, value)
    out.print(table)


@app.command()
def serve(sim: SimOption = False) -> None:
    """Serve MCP over stdio (what Claude Desktop / Claude Code run)."""
    settings = settings_or_exit()
    from ibkr_mcp.logs import configure_logging

    configure_logging(settings)
    from ibkr_mcp.mcp_server import run_stdio

    run_stdio(settings, sim=sim)


def main_mcp() -> None:
    """Entry point of ``ibkr-mcp``: with no command, serve MCP over stdio."""
    app(obj={"default": "serve"}, prog_name="ibkr-mcp")


def main_gateway() -> None:
    """Entry point of ``ibkr-gateway`` (the seed's name): with no command, print help."""
    app(obj={"default": "help"}, prog_name="ibkr-gateway")
