"""``ibkr-mcp install claude-desktop|claude-code``: client configuration with absolute paths."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ibkr_mcp.cli.common import SimOption, err, out, settings_or_exit
from ibkr_mcp.config import Settings

install_app = typer.Typer(
    help="Configure Claude Desktop or Claude Code to start this server.", no_args_is_help=True
)

NameOption = Annotated[str, typer.Option("--name", help="Server name in the client config.")]
WriteOption = Annotated[
    bool, typer.Option("--write", help="Merge into the config file instead of only printing.")
]


def executable() -> Path:
    """Absolute path of this installation's ``ibkr-mcp`` (next to the running interpreter)."""
    # Not resolved: the venv's python is often a symlink to a system interpreter, and the
    # script lives next to the symlink, not next to its target.
    return Path(sys.executable).absolute().with_name("ibkr-mcp")


def server_env(settings: Settings) -> dict[str, str]:
    """The environment the client must pass: absolute DATA_DIR plus the connection settings."""
    return {
        "DATA_DIR": str(settings.DATA_DIR.expanduser().resolve()),
        "IBKR_HOST": settings.IBKR_HOST,
        "IBKR_PORT": str(settings.IBKR_PORT),
        "IBKR_CLIENT_ID": str(settings.IBKR_CLIENT_ID),
        "TRADING_MODE": settings.TRADING_MODE,
        "ORDERS_ENABLED": str(settings.ORDERS_ENABLED).lower(),
    }


def server_entry(settings: Settings, *, sim: bool) -> dict[str, Any]:
    """The ``mcpServers`` entry: command, args and env."""
    return {
        "command": str(executable()),
        "args": ["serve", "--sim"] if sim else ["serve"],
        "env": server_env(settings),
    }


def desktop_config_path() -> Path:
    """Claude Desktop's config file for this platform."""
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library/Application Support/Claude/claude_desktop_config.json"
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", home)) / "Claude/claude_desktop_config.json"
    return home / ".config/Claude/claude_desktop_config.json"


def merge_config(path: Path, name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Read ``path`` (if any), set ``mcpServers[name] = entry``, keep everything else.

    Raises:
        ValueError: If the existing file is not a JSON object (it is then left untouched).
    """
    data: dict[str, Any] = {}
    if path.exists() and path.read_text(encoding="utf-8").strip():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}); fix or move it first") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{path} does not hold a JSON object; fix or move it first")
        data = loaded
    servers = data.get("mcpServers")
    if not isinstance(servers, dict):
        servers = {}
    data["mcpServers"] = {**servers, name: entry}
    return data


def write_config(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` atomically, keeping the previous file as ``<name>.bak``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Client configs hold other servers' secrets: never loosen the file's mode (default 0600).
    mode = (path.stat().st_mode & 0o777) if path.exists() else 0o600
    if path.exists():
        _write_private(path.with_name(path.name + ".bak"), path.read_bytes(), mode)
    tmp = path.with_name(path.name + ".tmp")
    _write_private(tmp, (json.dumps(data, indent=2) + "\n").encode(), mode)
    tmp.replace(path)


def _write_private(path: Path, content: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, content)
    finally:
        os.close(fd)


def _merge_and_write(path: Path, name: str, entry: dict[str, Any]) -> None:
    try:
        data = merge_config(path, name, entry)
    except ValueError as exc:
        err.print(f"[red]✗[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    write_config(path, data)
    others = sorted(k for k in data["mcpServers"] if k != name)
    out.print(f"[green]✓[/green] Wrote server {name!r} to {path}", soft_wrap=True)
    if others:
        out.print(f"  Kept the other servers: {', '.join(others)}", soft_wrap=True)


def _warn_missing() -> None:
    if not executable().exists():
        err.print(f"[yellow]![/yellow] {executable()} does not exist (is the package installed?)")


@install_app.command("claude-desktop")
def claude_desktop(
    sim: SimOption = False,
    write: WriteOption = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="Config file (default: Claude Desktop's).")
    ] = None,
    name: NameOption = "ibkr",
) -> None:
    """Print (or with --write merge) the Claude Desktop configuration for this server."""
    settings = settings_or_exit()
    entry = server_entry(settings, sim=sim)
    path = config or desktop_config_path()
    _warn_missing()
    if write:
        _merge_and_write(path, name, entry)
        out.print("  Restart Claude Desktop to load it.")
        return
    sys.stdout.write(json.dumps({"mcpServers": {name: entry}}, indent=2) + "\n")
    err.print(f"Merge this into {path} (or run again with --write).", soft_wrap=True)


def claude_code_command(name: str, entry: dict[str, Any]) -> str:
    """The ``claude mcp add`` command line for ``entry``."""
    parts = ["claude", "mcp", "add", name]
    for key, value in entry["env"].items():
        parts += ["-e", f"{key}={value}"]
    parts += ["--", entry["command"], *entry["args"]]
    return shlex.join(parts)


@install_app.command("claude-code")
def claude_code(
    sim: SimOption = False,
    write: WriteOption = False,
    name: NameOption = "ibkr",
) -> None:
    """Print the ``claude mcp add`` command (or with --write merge into ./.mcp.json)."""
    settings = settings_or_exit()
    entry = server_entry(settings, sim=sim)
    _warn_missing()
    if write:
        _merge_and_write(Path.cwd() / ".mcp.json", name, {"type": "stdio", **entry})
        return
    sys.stdout.write(claude_code_command(name, entry) + "\n")
