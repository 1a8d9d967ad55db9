"""``ibkr-mcp install claude-desktop|claude-code``: client configuration with absolute paths."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ibkr_mcp.cli.common import SimOption, err, out, settings_or_exit
from ibkr_mcp.config import SECRET_FIELDS, Settings
from ibkr_mcp.userdirs import ENV_FILE_VAR, user_config_file

install_app = typer.Typer(
    help="Configure Claude Desktop or Claude Code to start this server.", no_args_is_help=True
)

NameOption = Annotated[str, typer.Option("--name", help="Server name in the client config.")]
WriteOption = Annotated[
    bool, typer.Option("--write", help="Merge into the config file instead of only printing.")
]


#: The PyPI distribution (the name ``ibkr-mcp`` on PyPI is another project).
DISTRIBUTION = "mm-ibkr-gateway"
#: What a client runs when this copy lives in a throwaway uv cache (``uvx``, ``uv run --with``).
STABLE_COMMAND = ("uvx", "--from", DISTRIBUTION, "ibkr-mcp")


def executable() -> Path:
    """Absolute path of this installation's ``ibkr-mcp`` (next to the running interpreter)."""
    # Not resolved: the venv's python is often a symlink to a system interpreter, and the
    # script lives next to the symlink, not next to its target.
    return Path(sys.executable).absolute().with_name("ibkr-mcp")


def uv_cache_dirs() -> list[Path]:
    """Where uv keeps its cache (``UV_CACHE_DIR``, else the platform cache dir ``uv``)."""
    import platformdirs

    dirs = [platformdirs.user_cache_path("uv", appauthor=False)]
    if os.environ.get("UV_CACHE_DIR"):
        dirs.insert(0, Path(os.environ["UV_CACHE_DIR"]))
    return [d.expanduser().absolute() for d in dirs]


def is_ephemeral(exe: Path) -> bool:
    """True when ``exe`` lives in uv's cache: uv may delete it (``uv cache clean``/prune)."""
    for cache in uv_cache_dirs():
        if exe.is_relative_to(cache):
            return True
    # uvx environments are archive-v0/<hash>/bin/...; builds-v0 holds build environments.
    return any(part in ("archive-v0", "builds-v0") for part in exe.parts)


def server_command(exe: Path | None = None) -> list[str]:
    """The command a client runs: this ``ibkr-mcp``, or ``uvx --from mm-ibkr-gateway ibkr-mcp``."""
    exe = exe or executable()
    return list(STABLE_COMMAND) if is_ephemeral(exe) else [str(exe)]


def server_env(settings: Settings) -> dict[str, str]:
    """The environment the client must pass so the server sees what ``config show`` shows.

    The absolute path of the env file that was read (``IBKR_MCP_ENV_FILE``), plus every value
    that came from this shell's environment (paths made absolute; secrets left out: the stdio
    server does not use ``API_TOKEN``, and client configs are often shared).
    """
    env: dict[str, str] = {}
    if settings.env_file is not None:
        env[ENV_FILE_VAR] = str(settings.env_file)
    for name, source in settings.sources.items():
        if source != "env" or name in SECRET_FIELDS:
            continue
        value = getattr(settings, name)
        if name == "DATA_DIR":
            env[name] = str(settings.data_dir)
        elif isinstance(value, Path):
            env[name] = str(settings.resolve(value))
        else:
            env[name] = os.environ[name]
    return env


def server_entry(settings: Settings, *, sim: bool, exe: Path | None = None) -> dict[str, Any]:
    """The ``mcpServers`` entry: command, args and env."""
    command = server_command(exe)
    return {
        "command": command[0],
        "args": [*command[1:], "serve", "--sim"] if sim else [*command[1:], "serve"],
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


def _warn(settings: Settings, entry: dict[str, Any]) -> None:
    """Say what the client will run and read, and what could surprise."""
    if entry["command"] == STABLE_COMMAND[0]:
        err.print(
            f"[yellow]![/yellow] This copy runs from uv's cache ({executable().parent}), which uv "
            f"may delete; the client will run `{shlex.join(STABLE_COMMAND)}` instead.",
            soft_wrap=True,
        )
    elif not executable().exists():
        err.print(f"[yellow]![/yellow] {executable()} does not exist (is the package installed?)")
    if settings.env_file is None:
        err.print(
            f"[yellow]![/yellow] No env file found: the server will use the defaults shown by "
            f"`ibkr-mcp config show`, or {user_config_file()} once you create it.",
            soft_wrap=True,
        )
    else:
        err.print(f"Settings file passed to the client: {settings.env_file}", soft_wrap=True)


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
    _warn(settings, entry)
    if write:
        _merge_and_write(path, name, entry)
        out.print("  Restart Claude Desktop to load it.")
        return
    sys.stdout.write(json.dumps({"mcpServers": {name: entry}}, indent=2) + "\n")
    err.print(f"Merge this into {path} (or run again with --write).", soft_wrap=True)


def claude_code_command(name: str, entry: dict[str, Any]) -> list[str]:
    """The ``claude mcp add --scope local`` command line for ``entry`` (as argv)."""
    parts = ["claude", "mcp", "add", "--scope", "local", name]
    for key, value in entry["env"].items():
        parts += ["-e", f"{key}={value}"]
    return [*parts, "--", entry["command"], *entry["args"]]


@install_app.command("claude-code")
def claude_code(
    sim: SimOption = False,
    write: WriteOption = False,
    name: NameOption = "ibkr",
) -> None:
    """Print the ``claude mcp add --scope local`` command (or with --write run it).

    The local scope is private to you and this project (kept in your ~/.claude.json), never a
    project-shared ``.mcp.json``: the entry holds paths of this machine.
    """
    settings = settings_or_exit()
    entry = server_entry(settings, sim=sim)
    _warn(settings, entry)
    argv = claude_code_command(name, entry)
    if not write:
        sys.stdout.write(shlex.join(argv) + "\n")
        return
    claude = shutil.which("claude")
    if claude is None:
        err.print(
            "[red]✗[/red] The `claude` command is not on PATH; install Claude Code, or run:",
            soft_wrap=True,
        )
        sys.stdout.write(shlex.join(argv) + "\n")
        raise typer.Exit(1)
    # `mcp add` refuses a name that exists in the scope: replace ours, touch nothing else.
    subprocess.run(
        [claude, "mcp", "remove", "--scope", "local", name],
        capture_output=True,
        check=False,
    )
    done = subprocess.run([claude, *argv[1:]], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        err.print(f"[red]✗[/red] claude mcp add failed: {done.stderr.strip()}", soft_wrap=True)
        raise typer.Exit(1)
    out.print(f"[green]✓[/green] Added server {name!r} to Claude Code (local scope)")
