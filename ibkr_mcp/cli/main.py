"""Command line: one Typer app behind ``ibkr-mcp`` (default: serve MCP) and ``ibkr-gateway``.

Heavy modules (fastmcp, fastapi, ib_async) are imported inside commands so that
``--help`` stays fast; a test enforces it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ibkr_mcp import __version__
from ibkr_mcp.cli.audit import audit_app
from ibkr_mcp.cli.common import (
    JsonOption,
    SimOption,
    err,
    exit_codes_help,
    out,
    settings_or_exit,
)
from ibkr_mcp.cli.control import approvals_app, emergency_stop_command
from ibkr_mcp.cli.install import install_app
from ibkr_mcp.cli.simctl import sim_ctl_app
from ibkr_mcp.cli.tools import register_tool_commands

app = typer.Typer(
    name="ibkr-mcp",
    help="MCP-first agent server for Interactive Brokers (MCP stdio, REST API and CLI).",
    no_args_is_help=False,
    invoke_without_command=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    epilog=exit_codes_help(),
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(audit_app, name="audit")
app.add_typer(install_app, name="install")
app.add_typer(sim_ctl_app, name="sim-ctl")
app.add_typer(approvals_app, name="approvals")
app.command("emergency-stop")(emergency_stop_command)

__all__ = ["SimOption", "app", "err", "main_gateway", "main_mcp", "out", "settings_or_exit"]


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
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file",
            help="Read settings from this file only (default: $IBKR_MCP_ENV_FILE, else the "
            "user config file, else ./.env; see `config show`).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """MCP-first agent server for Interactive Brokers.

    With no command, ``ibkr-mcp`` serves MCP over stdio and ``ibkr-gateway`` prints this help.
    """
    from ibkr_mcp.userdirs import set_cli_env_file

    set_cli_env_file(env_file)
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
    """Show the effective settings, the env file read and where each value came from."""
    settings = settings_or_exit(as_json=as_json)
    values = settings.masked()
    sources = settings.sources
    env_file = str(settings.env_file) if settings.env_file else None
    if as_json:
        import orjson

        data = {"env_file": env_file, "values": values, "sources": sources}
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = Table(title="Effective configuration", show_lines=False)
    table.add_column("Setting", style="bold")
    table.add_column("Value")
    table.add_column("From", style="dim")
    for name, value in values.items():
        table.add_row(name, value, sources[name])
    out.print(table)
    out.print(f"Env file: {env_file or '(none: environment and defaults only)'}", soft_wrap=True)
    from ibkr_mcp.userdirs import ENV_FILE_VAR, user_config_file

    out.print(
        f"Searched, first found wins: --env-file or ${ENV_FILE_VAR}, {user_config_file()}, ./.env",
        soft_wrap=True,
        markup=False,
    )
    out.print("From: env = environment variable, file = the env file, default = built in.")


@app.command()
def serve(sim: SimOption = False) -> None:
    """Serve MCP over stdio (what Claude Desktop / Claude Code run)."""
    from ibkr_mcp.cli.serve import serve_stdio_fast

    serve_stdio_fast(sim=sim)


@app.command("start-api")
def start_api(
    host: Annotated[str | None, typer.Option(help="Bind address (default API_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port, 1-65535 (default API_PORT).")
    ] = None,
    sim: SimOption = False,
) -> None:
    """Serve the REST API (and MCP over streamable HTTP at /mcp) with uvicorn."""
    from ibkr_mcp.cli.api import start_api as run_start_api

    run_start_api(host=host, port=port, sim=sim)


@app.command()
def healthcheck(
    sim: SimOption = False,
    timeout: Annotated[
        float, typer.Option(min=0.5, help="Give up (non-zero exit) after this many seconds.")
    ] = 10.0,
    as_json: JsonOption = False,
) -> None:
    """Check the connection, server time and readiness (exit 0 only when ready)."""
    from ibkr_mcp.cli.health import healthcheck as run_healthcheck

    run_healthcheck(sim=sim, timeout=timeout, as_json=as_json)


@app.command()
def demo(sim: SimOption = False) -> None:
    """A guided tour: connection, quote, bars, account, positions (+ a simulated order)."""
    from ibkr_mcp.cli.demo import demo as run_demo

    run_demo(sim=sim)


@app.command("sim")
def sim_command(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (4002 is IB Gateway's paper port).")] = 4002,
    seed: Annotated[int | None, typer.Option(help="Random seed (default SIM_SEED).")] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="A fault from the start (repeatable): hang=S, refuse=S, latency=MS[:JITTER], "
            "farm-outage=S, competing-session=S, reject-next=N[:CODE], error=CODE (adds to "
            "SIM_FAULTS)."
        ),
    ] = None,
    state_file: Annotated[
        Path | None,
        typer.Option(help="Keep accounts, positions and orders in this file (SIM_STATE_FILE)."),
    ] = None,
) -> None:
    """Run the IB Gateway simulator standalone until Ctrl-C (drive drills with `sim-ctl`)."""
    from ibkr_mcp.cli.sim import run_simulator

    run_simulator(host=host, port=port, seed=seed, faults=fault, state_file=state_file)


register_tool_commands(app)


def _main(default: str, prog_name: str) -> None:
    """Run the app; with ``--json`` a usage error is also the ``{"error": …}`` object on stdout."""
    args = sys.argv[1:]
    if "--json" not in args:
        app(obj={"default": default}, prog_name=prog_name)
        return
    from ibkr_mcp.cli.common import write_json

    try:
        code = app(args=args, obj={"default": default}, prog_name=prog_name, standalone_mode=False)
    except typer.TyperException as exc:  # usage errors (typer vendors click's exceptions)
        write_json(
            {
                "error": {
                    "code": "INVALID_INPUT",
                    "message": exc.format_message(),
                    "remedy": f"See `{prog_name} <command> --help`.",
                    "details": {"source": "usage"},
                }
            }
        )
        err.print(f"[red]✗[/red] {exc.format_message()}", soft_wrap=True, markup=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Abort:
        err.print("Aborted.")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def main_mcp() -> None:
    """Entry point of ``ibkr-mcp``: with no command, serve MCP over stdio."""
    _main("serve", "ibkr-mcp")


def main_gateway() -> None:
    """Entry point of ``ibkr-gateway`` (the seed's name): with no command, print help."""
    _main("help", "ibkr-gateway")
