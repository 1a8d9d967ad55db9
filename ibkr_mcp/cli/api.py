"""``ibkr-mcp start-api``: check the bind address up front, then serve under uvicorn."""

from __future__ import annotations

import socket

import typer

from ibkr_mcp.cli.common import err, settings_or_exit

#: Exit code when the API cannot listen: a usage/settings error (README's exit-code table),
#: like ``ibkr-mcp sim`` on a port in use; never uvicorn's 3, which means a safety refusal here.
EXIT_CANNOT_LISTEN = 2


def _refuse(message: str) -> typer.Exit:
    err.print(f"[red]✗[/red] {message}", soft_wrap=True, markup=True, highlight=False)
    return typer.Exit(EXIT_CANNOT_LISTEN)


def check_can_listen(host: str, port: int) -> None:
    """Bind (and release) ``host:port`` as uvicorn will, or exit 2 naming it.

    Done before the app starts (gateway, audit, simulator), so a port in use costs nothing and
    says so in one line. Sockets get ``SO_REUSEADDR`` as asyncio's ``create_server`` sets it, so
    a port left in TIME_WAIT by a previous run is not mistaken for one in use.

    Raises:
        typer.Exit: With code 2 when the address cannot be resolved or bound.
    """
    where = where_of(host, port)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise _refuse(
            f"Cannot listen on {where}: unknown host ({exc}). Pass another --host."
        ) from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise _refuse(
                    f"Cannot listen on {where}: {reason.lower()}. Pass another --port (or "
                    "API_PORT), or stop what listens there."
                ) from None


def start_api(*, host: str | None, port: int | None, sim: bool) -> None:
    """Serve the REST API (and MCP over HTTP) until interrupted; bad addresses exit 2."""
    settings = settings_or_exit()
    from ibkr_mcp.http_api.security import BindRefusedError, check_bind

    bind_host = host or settings.API_HOST
    bind_port = settings.API_PORT if port is None else port
    try:
        check_bind(bind_host, settings)
    except BindRefusedError as exc:
        raise _refuse(str(exc)) from None
    check_can_listen(bind_host, bind_port)
    from ibkr_mcp.logs import configure_logging, log_startup

    configure_logging(settings)
    log_startup(settings)
    from ibkr_mcp.http_api.server import build_server

    server = build_server(settings, host=bind_host, port=bind_port, sim=sim)
    try:
        server.run()
    except SystemExit as exc:
        # uvicorn exits 3 when start-up fails; 3 means a safety refusal in this CLI. The port
        # taken between the check above and uvicorn's bind is a usage error like any port in
        # use; anything else (the app's start-up failing) is internal, its log line says why.
        if server.started:
            raise
        check_can_listen(bind_host, bind_port)
        err.print(
            f"[red]✗[/red] The API did not start on {where_of(bind_host, bind_port)} "
            f"(uvicorn exit {exc.code}); the log line above says why.",
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


def where_of(host: str, port: int) -> str:
    """``host:port`` (IPv6 hosts bracketed)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
